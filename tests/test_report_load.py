"""Loading records into frames: per-run metrics, failed runs, the metric check, a grid without records."""
import pytest

from constructed import write_records
from normlib import records
from normlib.report import load, tables


def test_load_metrics_failed_runs_and_status(tmp_path):
    g = tmp_path / "g"
    write_records(g, {"a": ({"norm": "group", "seed": 0}, [50, 70, 60, 65], [40, 55, 50, 45]),
                      "b": ({"norm": "group", "seed": 1}, [52, 54, 58, 57], [41, 42, 60, 43])})
    records.write_json(g / "runs" / "c.json", {"schema": 1, "status": "failed", "error": "boom",
                                               "params": {"seed": 2}, "history": [], "provenance": {}})
    grid = load.load(g, k=3)
    r = grid.runs.set_index("run_id")
    assert r.loc["a", "median_last_k"] == 65 and r.loc["b", "median_last_k"] == 57
    assert r.loc["a", "val_selected_acc"] == 70 and r.loc["b", "val_selected_acc"] == 58
    assert r.loc["c", "status"] == "failed" and r.loc["c", "norm"] == "batch"  # defaults filled in
    assert len(grid.ok) == 2 and grid.has_val
    missing = tables.status_table(grid.runs, grid.expected)
    assert missing.empty  # c is not in grid.json's run list
    load.check_metric([grid], "val_selected_acc")
    with pytest.raises(ValueError, match="metric='bogus': allowed final_acc"):
        load.check_metric([grid], "bogus")


def test_val_selected_metric_needs_a_validation_split(tmp_path):
    write_records(tmp_path / "g", {"a": ({}, [50, 60])})
    with pytest.raises(ValueError, match="val_size=0"):
        load.check_metric([load.load(tmp_path / "g")], "val_selected_acc")


def test_load_without_records_names_the_grid(tmp_path):
    with pytest.raises(FileNotFoundError, match="grid='nothing'"):
        load.load(tmp_path / "nothing")
