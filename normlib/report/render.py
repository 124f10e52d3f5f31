"""The report: the summary notebook executed on a grid's records, then converted to one self-contained HTML page
without code: nbconvert's `basic` template (the outputs, no styles or scripts) inside a small page with report.css."""
import html
import os
from pathlib import Path

from ..execute import KERNEL_ARGS, ROOT, RenderError, failure_reason
from .sections import TITLE

SUMMARY_NOTEBOOK = ROOT / "notebooks" / "summary.ipynb"
CSS = Path(__file__).with_name("report.css")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"  # the browser fetches nothing outside the page


def render(name: str, folder: Path, extra: str = "") -> Path:
    """Execute the summary notebook on a grid's records (and the `extra` grids beside it, comma-separated) and
    convert it to HTML without code inputs."""
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter
    executed = folder / "summary.ipynb"
    tmp = folder / f".summary.tmp{os.getpid()}.ipynb"
    try:
        pm.execute_notebook(str(SUMMARY_NOTEBOOK), str(tmp),
                            parameters={"grid": name, "reports": str(folder.parent), "extra": extra},
                            progress_bar=False, kernel_name="python3", extra_arguments=KERNEL_ARGS)
    except Exception as e:
        if tmp.exists():
            os.replace(tmp, executed)
        raise RenderError(f"{failure_reason(e, 0)}  (notebook: {executed})") from None
    os.replace(tmp, executed)
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    html_path = folder / "report.html"
    tmp_html = folder / f".report.html.tmp{os.getpid()}"
    tmp_html.write_text(page(body, f"{TITLE}: grid {name}"))
    os.replace(tmp_html, html_path)
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
