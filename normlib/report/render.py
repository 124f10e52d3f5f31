"""The report's page: an executed summary notebook (normlib.execute.summary) converted to one self-contained HTML page
without code: nbconvert's `basic` template (the outputs, no styles or scripts) inside a small page with report.css."""
import html
import os
from pathlib import Path

from .. import records
from .sections import TITLE

CSS = Path(__file__).with_name("report.css")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"  # the browser fetches nothing outside the page


def write_page(executed: Path, name: str) -> Path:
    """<folder>/report.html beside the executed summary notebook of grid `name`, written atomically."""
    import nbformat
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    html_path = executed.with_name("report.html")
    tmp = html_path.with_name(f".report.html.tmp{os.getpid()}")
    try:
        tmp.write_text(page(body, f"{TITLE}: grid {name}"))
    except OSError as e:  # a full disk: no partial page stays, and the error names the file
        tmp.unlink(missing_ok=True)
        raise records.named(e, tmp) from None
    os.replace(tmp, html_path)
    print(f"report: {html_path}")
    return html_path


def page(body: str, title: str) -> str:
    """A standalone HTML page around nbconvert's body: its title, report.css, and a policy that loads nothing else."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{html.escape(title)}</title>
<style>
{CSS.read_text()}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""
