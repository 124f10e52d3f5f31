"""Loading records into frames: per-run metrics, failed runs, the metric check, a grid without records."""
import pytest

from helpers.constructed import write_records
from normlib.store import records
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


def test_a_diverged_run_is_marked_and_left_out_of_every_result(tmp_path):
    """Judged from the history alone, as records an older commit writes (no flag) are: a final training loss that is
    not finite or above the stated bound makes the run diverged, listed with its reason, outside `ok`."""
    g = tmp_path / "g"
    write_records(g, {f"r{i}": ({"norm": "group", "seed": i}, [50, 10]) for i in range(4)})
    for rid, loss in (("r1", 1e28), ("r2", float("nan")), ("r3", records.DIVERGED_LOSS)):  # r3: at the bound, kept
        rec = records.read(g / "runs" / f"{rid}.json")
        rec["history"][-1]["train_loss"] = loss
        records.write_json(g / "runs" / f"{rid}.json", rec)
    grid = load.load(g)
    assert sorted(grid.ok.run_id) == ["r0", "r3"]
    table = tables.status_table(grid.runs, grid.expected).set_index("run_id")
    assert list(table.status) == ["diverged", "diverged"]
    assert table.loc["r1", "reason"].startswith("diverged: final train loss 1e+28; allowed a finite loss <= 23.0")
    assert "final train loss nan" in table.loc["r2", "reason"]
