"""The report's page: the sections' items as the summary notebook displays them (Page: markdown, numbered tables and
figures), and the executed notebook (normlib.sweep.execute.summary) converted to one self-contained HTML page without
code: nbconvert's `basic` template (the outputs, no styles or scripts) inside a small page with report.css."""
import html
import re
from pathlib import Path

import pandas as pd

from ..store import records
from .plots import FIGURE, Figure, svg_uri
from .sections import TITLE
from .tables import Table
from .text import minus

CSS = Path(__file__).with_name("report.css")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"  # the browser fetches nothing outside the page
NUMBER = r"[-+]?\d[\d.,]*(e[-+]?\d+)?|—"  # a table cell that is one number (or a dash for none)


class Page:
    """Displays sections' items in order, numbering tables and figures across the whole report: a string as markdown,
    a Table under its numbered caption, a Figure as an SVG image over its numbered caption (also its alt text). A
    bare DataFrame is refused: every table has a number and a caption. In a string, text.NEXT_FIGURE.format(k) becomes
    the number of the k-th figure after it."""

    def __init__(self):
        self.tables = self.figures = 0

    def show(self, items) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import HTML, Markdown, display
        for item in items:
            if isinstance(item, Table):
                self.tables += 1
                cells = markdown_table(item.frame).replace(" ± ", "\u00a0±\u00a0")  # a value never splits at ±
                display(Markdown(minus(f"**Table {self.tables}.** {item.caption}\n\n{cells}")))
            elif isinstance(item, Figure):
                self.figures += 1
                caption = f"Figure {self.figures}. {item.caption}"
                wide = item.fig.get_figwidth() > FIGURE[0]  # panels side by side: on a phone it scrolls (report.css)
                display(HTML(f'<figure{" class=wide" if wide else ""}><img src="{svg_uri(item.fig)}" '
                             f'alt="{html.escape(caption.replace("`", ""))}">'
                             f"<figcaption><b>Figure {self.figures}.</b> {minus(code_spans(item.caption))}</figcaption>"
                             f"</figure>"))
                plt.close(item.fig)
            elif isinstance(item, str):
                display(Markdown(minus(re.sub(r"\[\[figure\+(\d+)\]\]",
                                              lambda m: f"Figure {self.figures + int(m[1])}", item))))
            elif isinstance(item, pd.DataFrame):
                raise TypeError("a table without a caption: every table is numbered and captioned, give it as "
                                "Table(frame, caption)")
            else:
                raise TypeError(f"section item of type {type(item).__name__}: allowed str, Table, Figure")


def markdown_table(frame: pd.DataFrame) -> str:
    """Cells exactly as the sections wrote them (tabulate would reparse '22.60' as 22.6 and a hash like '1e5' as a
    number); numeric columns right-aligned."""
    if not len(frame):
        return "(empty table)"
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) or frame[c].astype(str).str.fullmatch(NUMBER).all()
               for c in frame.columns]
    return frame.to_markdown(index=False, disable_numparse=True,
                             colalign=["right" if n else "left" for n in numeric])


def code_spans(text: str) -> str:
    """Plain text with `code` spans as HTML (a caption's only markup)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def heading(nb) -> str:
    """The page's title: the report's heading (sections.report_title) as the executed notebook shows it; TITLE for a
    notebook that shows none."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/markdown", "")
            if text.startswith("# "):
                return text[2:].split("\n", 1)[0]
    return TITLE


def write_page(executed: Path, name: str) -> Path:
    """<folder>/report.html beside the executed summary notebook of grid `name`, written atomically."""
    import nbformat
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    nb = nbformat.read(executed, as_version=4)
    body, _ = exporter.from_notebook_node(nb)
    html_path = executed.with_name("report.html")
    with records.atomically(html_path) as tmp:
        tmp.write_text(page(body, f"{heading(nb)}: grid {name}"))
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
