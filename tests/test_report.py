"""Loading records, section triggers, the notebook's defaults, and one render of the summary notebook on the smoke
grid's records plus constructed extra grids (the statistics are in test_stats.py, the further sections in
test_studies.py)."""
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest

from constructed import EXTRA, constructed, write_grid
from normlib import records, report, runner, stats, sweep


# ---------------------------------------------------------------- records

def test_load_metrics_failed_runs_and_status(tmp_path):
    g = tmp_path / "g"
    write_grid(g, {"a": ({"norm": "group", "seed": 0}, [50, 70, 60, 65], [40, 55, 50, 45]),
                   "b": ({"norm": "group", "seed": 1}, [52, 54, 58, 57], [41, 42, 60, 43])})
    records.write_json(g / "runs" / "c.json", {"schema": 1, "status": "failed", "error": "boom",
                                               "params": {"seed": 2}, "history": [], "provenance": {}})
    grid = report.load(g, k=3)
    r = grid.runs.set_index("run_id")
    assert r.loc["a", "median_last_k"] == 65 and r.loc["b", "median_last_k"] == 57
    assert r.loc["a", "val_selected_acc"] == 70 and r.loc["b", "val_selected_acc"] == 58
    assert r.loc["c", "status"] == "failed" and r.loc["c", "norm"] == "batch"  # defaults filled in
    assert len(grid.ok) == 2 and grid.has_val
    missing = report.status_table(grid.runs, grid.expected)
    assert missing.empty  # c is not in grid.json's run list
    report.check_metric([grid], "val_selected_acc")
    with pytest.raises(ValueError, match="metric='bogus': allowed final_acc"):
        report.check_metric([grid], "bogus")


def test_val_selected_metric_needs_a_validation_split(tmp_path):
    write_grid(tmp_path / "g", {"a": ({}, [50, 60])})
    with pytest.raises(ValueError, match="val_size=0"):
        report.check_metric([report.load(tmp_path / "g")], "val_selected_acc")


def test_load_without_records_names_the_grid(tmp_path):
    with pytest.raises(FileNotFoundError, match="grid='nothing'"):
        report.load(tmp_path / "nothing")


# ---------------------------------------------------------------- sections and the render

def test_batch_size_section_needs_both_norms(tmp_path):
    fixed, grid = EXTRA["c_depth"]
    constructed(tmp_path / "c_depth", fixed, grid)
    assert report.batch_size_section(report.load(tmp_path / "c_depth"), "final_acc") == []


def test_summary_parameters_mirror_the_report_defaults():
    nb = nbformat.read(sweep.SUMMARY_NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params = {}
    exec(cell.source, {}, params)
    assert (params["k"], params["alpha"], params["tol"]) == (report.K, stats.ALPHA, stats.TOL)
    assert params["metric"] in report.METRICS


@pytest.fixture(scope="session")
def reports_root(tmp_path_factory):
    """The smoke grid run in-process (one record per run, as the sweep writes them) and constructed extra grids."""
    root = tmp_path_factory.mktemp("reports")
    grid = sweep.load_grid(sweep.ROOT / "params" / "smoke.yaml")
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
    pm.execute_notebook(str(sweep.SUMMARY_NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                        parameters={"grid": "smoke", "reports": str(reports_root), "extra": ",".join(EXTRA)})
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells for o in c.get("outputs", []))
    for title in ("BatchNorm vs GroupNorm across batch sizes", "The seed's expected outcomes",
                  "Comparison with the seed", "Choice of metric", "BatchNorm diagnostics",
                  "Control: learning rate scaled linearly", "GroupNorm: number of groups", "All normalizations",
                  "Depth", "Provenance"):
        assert f"## {title}" in text, title
    assert "67.83 ± 2.21" in text  # the seed's published table, side by side
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert figures >= 10
