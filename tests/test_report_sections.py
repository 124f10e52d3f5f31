"""The sections: what triggers them, the notebook's defaults, a render without torch, and the summary notebook as
the smoke report (conftest) executed it."""
import re
import subprocess
import sys
import textwrap

import nbformat
import pytest

from helpers.constructed import EXTRA, constructed
from normlib import report
from normlib.sweep import execute
from normlib.report import load, sections


def test_batch_size_section_needs_both_norms(tmp_path):
    fixed, grid = EXTRA["c_depth"]
    constructed(tmp_path / "c_depth", fixed, grid)
    assert sections.batch_size_section(load.load(tmp_path / "c_depth"), "final_acc") == []


def test_summary_parameters_mirror_the_report_defaults():
    nb = nbformat.read(execute.SUMMARY_NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params = {}
    exec(cell.source, {}, params)
    assert (params["k"], params["alpha"], params["tol"]) == (report.K, report.ALPHA, report.TOL)
    assert params["metric"] in report.METRICS


def test_the_package_names_what_the_summary_notebook_calls_and_its_defaults():
    nb = nbformat.read(execute.SUMMARY_NOTEBOOK, as_version=4)
    code = "\n".join(line.split("#")[0] for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines())
    called = set(re.findall(r"\breport\.(\w+)", code))
    assert called == {"load_all", "REPORTS", "Page", "SECTIONS"}
    assert set(report.__all__) == called | {"K", "METRICS", "ALPHA", "TOL"}  # the parameters' defaults, tested above


def test_report_renders_every_section_without_torch(tmp_path):
    """The report package and every section it renders import neither torch, nor notebook execution, nor the sweep
    (a fresh process)."""
    for name, (fixed, grid) in EXTRA.items():
        constructed(tmp_path / name, fixed, grid)
    code = textwrap.dedent(f"""
        import sys
        import matplotlib
        matplotlib.use("Agg")
        from normlib import report
        from normlib.report import render
        grids = report.load_all({str(tmp_path)!r}, "c_norms", "c_lr,c_groups,c_depth")
        items = [item for section in report.SECTIONS for item in section(grids, "final_acc", report.TOL, report.ALPHA)]
        assert len(items) > 40, len(items)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "papermill")
                        or m.startswith(("normlib.run", "normlib.sweep", "normlib.execute")))
        assert not leaked, leaked
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_summary_notebook_renders_every_section(smoke_report):
    nb = nbformat.read(smoke_report.with_name("summary.ipynb"), as_version=4)
    outputs = [o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])]
    # tables keep ± with its value
    text = "\n".join(o.get("text/markdown", "") for o in outputs).replace("\u00a0", " ")
    for title in ("BatchNorm vs GroupNorm across batch sizes", "The original's expected outcomes",
                  "Comparison with the original", "Choice of metric", "BatchNorm diagnostics",
                  "Control: learning rate scaled linearly", "GroupNorm: number of groups", "All normalizations",
                  "Depth", "Methods", "Provenance"):
        assert f"## {title}" in text, title
    assert "67.83 ± 2.21" in text  # the original's published table, side by side
    figures = [o["text/html"] for o in outputs if "<figure" in o.get("text/html", "")]  # <figure class="wide"> too
    assert len(figures) >= 9
    assert all(f"<b>Figure {i}.</b>" in f and "data:image/svg+xml;base64," in f for i, f in enumerate(figures, 1))
