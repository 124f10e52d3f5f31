"""The sections: what triggers them, the notebook's defaults, a render without torch, and one render of the summary
notebook on the smoke grid's records plus constructed extra grids."""
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest

from constructed import EXTRA, constructed
from normlib import records, report, runner
from normlib.grid import load_grid
from normlib.report import load, render, sections


def test_batch_size_section_needs_both_norms(tmp_path):
    fixed, grid = EXTRA["c_depth"]
    constructed(tmp_path / "c_depth", fixed, grid)
    assert sections.batch_size_section(load.load(tmp_path / "c_depth"), "final_acc") == []


def test_summary_parameters_mirror_the_report_defaults():
    nb = nbformat.read(render.SUMMARY_NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params = {}
    exec(cell.source, {}, params)
    assert (params["k"], params["alpha"], params["tol"]) == (report.K, report.ALPHA, report.TOL)
    assert params["metric"] in report.METRICS


def test_report_renders_every_section_without_torch(tmp_path):
    """The report package and every section it renders import neither torch nor the executor (a fresh process)."""
    for name, (fixed, grid) in EXTRA.items():
        constructed(tmp_path / name, fixed, grid)
    code = textwrap.dedent(f"""
        import sys
        import matplotlib
        matplotlib.use("Agg")
        from normlib import report
        grids = report.load_all({str(tmp_path)!r}, "c_norms", "c_lr,c_groups,c_depth")
        main = grids[0]
        items = (report.header_section(grids, "final_acc") + report.batch_size_section(main, "final_acc")
                 + report.outcomes_section(main, "final_acc") + report.original_section(main, "final_acc")
                 + report.metrics_section(main, "final_acc") + report.bn_diagnostics_section(main)
                 + report.control_section(main, grids[1], "final_acc") + report.provenance_section(grids))
        for g in grids:
            items += (report.groups_section(g, "final_acc") + report.norms_section(g, "final_acc")
                      + report.depth_section(g, "final_acc"))
        assert len(items) > 40, len(items)
        leaked = [m for m in ("torch", "normlib.sweep", "normlib.train", "normlib.runner") if m in sys.modules]
        assert not leaked, leaked
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="session")
def reports_root(tmp_path_factory):
    """The smoke grid run in-process (one record per run, as the sweep writes them) and constructed extra grids."""
    root = tmp_path_factory.mktemp("reports")
    grid = load_grid(render.ROOT / "params" / "smoke.yaml")
    folder = root / grid["name"]
    records.write_json(folder / "grid.json", {"name": grid["name"], "description": grid["description"],
                                              "runs": [{"run_id": i, "params": p} for i, p in grid["runs"]]})
    with ThreadPoolExecutor(2) as pool:  # two single-threaded runs at a time, as the sweep's two jobs
        list(pool.map(lambda r: runner.run({**r[1], "threads": 1, "out": str(folder / "runs" / f"{r[0]}.json")}),
                      grid["runs"]))
    for name, (fixed, g) in EXTRA.items():
        constructed(root / name, fixed, g)
    return root


def test_summary_notebook_renders_every_section(reports_root):
    import papermill as pm
    out = reports_root / "summary.ipynb"
    pm.execute_notebook(str(render.SUMMARY_NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                        parameters={"grid": "smoke", "reports": str(reports_root), "extra": ",".join(EXTRA)})
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells for o in c.get("outputs", []))
    for title in ("BatchNorm vs GroupNorm across batch sizes", "The original's expected outcomes",
                  "Comparison with the original", "Choice of metric", "BatchNorm diagnostics",
                  "Control: learning rate scaled linearly", "GroupNorm: number of groups", "All normalizations",
                  "Depth", "Provenance"):
        assert f"## {title}" in text, title
    assert "67.83 ± 2.21" in text  # the original's published table, side by side
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert figures >= 10
