"""The report's page from an executed summary notebook: its outputs without code, the title, and a policy that loads
nothing from outside the page."""
import nbformat

from normlib.report import TITLE, render


def test_the_page_shows_outputs_not_code(tmp_path):
    cell = nbformat.v4.new_code_cell("secret_code()", outputs=[
        nbformat.v4.new_output("display_data", data={"text/markdown": "## A section\n\nThe table."})])
    executed = tmp_path / "summary.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), executed)
    page = render.write_page(executed, "g").read_text()
    assert f"<title>{TITLE}: grid g</title>" in page and f'content="{render.CSP}"' in page
    assert "A section" in page and "secret_code" not in page
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # written via a temporary file
