"""The report's page from an executed summary notebook: its outputs without code, the title, and a policy that loads
nothing from outside the page."""
import nbformat

from normlib.report import render
from normlib.report.sections import TITLE


def test_the_page_shows_outputs_not_code(tmp_path):
    cell = nbformat.v4.new_code_cell("secret_code()", outputs=[
        nbformat.v4.new_output("display_data", data={"text/markdown": "## A section\n\nThe table."})])
    executed = tmp_path / "summary.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), executed)
    page = render.write_page(executed, "g").read_text()
    assert f"<title>{TITLE}: grid g</title>" in page and f'content="{render.CSP}"' in page
    assert "A section" in page and "secret_code" not in page
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # written via a temporary file


def test_a_page_on_a_full_disk_is_one_render_error_naming_the_file_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    import errno
    import os
    import pathlib

    from normlib.sweep import execute, loop as sweep
    folder = tmp_path / "g"
    (folder / "runs").mkdir(parents=True)
    executed = folder / "summary.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), executed)
    monkeypatch.setattr(execute, "summary", lambda name, folder, extra="", stop=None, metric="": executed)

    def write_text(self, text):
        open(self, "w").write(text[:100])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    params = tmp_path / "g.yaml"
    params.write_bytes(b"grid:\n  seed: [0]\n")
    assert sweep.main([str(params), "--out", str(tmp_path), "--report-only"]) == 1
    tmp = folder / f".report.html.tmp{os.getpid()}"
    assert capsys.readouterr().err == f"REPORT FAILED: OSError: [Errno 28] No space left on device: '{tmp}'\n"
    assert sorted(p.name for p in folder.iterdir()) == ["runs", "summary.ipynb"]
