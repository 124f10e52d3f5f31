"""The verdicts under the final and the best epoch side by side, on constructed records where the two metrics
disagree: one BatchNorm run whose final epoch collapsed below its best."""
import json

from helpers.constructed import pair_grid

from normlib.report import by_metric, findings, load, sections
from normlib.report.tables import Table


def collapsed(tmp_path, by=30.0):
    """BatchNorm − GroupNorm +2, +8, +14 points at batch sizes 2, 16, 128 (beyond ±3 on average), but run
    batch_bs16_seed0's final epoch falls `by` points below its first, its best."""
    pair_grid(tmp_path / "main", [2, 16, 128])
    path = tmp_path / "main" / "runs" / "batch_bs16_seed0.json"
    rec = json.loads(path.read_text())
    best = rec["final_acc"]
    rec["history"][0]["test_acc"], rec["history"][-1]["test_acc"] = best, best - by
    rec["final_acc"], rec["best_acc"] = best - by, best
    path.write_text(json.dumps(rec))
    return load.load(tmp_path / "main")


def test_a_verdict_that_changes_with_the_metric_names_the_run_that_makes_the_difference(tmp_path):
    grid = collapsed(tmp_path)
    split = by_metric.splits(sections.pair_runs(grid), sections.tested_sizes(grid))
    assert [s.verdicts for s in split][2] == {"final_acc": "not shown", "best_acc": "does not hold"}
    assert list(split[2].runs.run_id) == ["batch_bs16_seed0"] and not split[1].differ
    text = findings.key_findings([grid], "final_acc")
    three = text.split("\n3. ")[1].split("\n")[0]
    assert ("**It changes with the metric**: under the final epoch it is not shown, under the best epoch (the "
            "original's metric) it does not hold; the difference is made by batch_bs16_seed0 (final_acc ") in three
    assert ("Under the best epoch (the original's metric) expectation 3 does not hold instead (batch_bs16_seed0 "
            "makes the difference)") in text
    assert "The same under the best epoch (the original's metric)." in text.split("\n2. ")[1].split("\n")[0]


def test_the_outcomes_table_gives_both_metrics_side_by_side_and_says_where_they_differ(tmp_path):
    items = sections.outcomes_section(collapsed(tmp_path), "final_acc")
    table = next(i.frame for i in items if isinstance(i, Table))
    assert list(table.columns[1:3]) == ["ours (final_acc)", "ours (best_acc)"]
    assert [v.split(" (")[0] for v in table["ours (best_acc)"]][2] == "does not hold"
    assert [v.split(" (")[0] for v in table["ours (final_acc)"]][2] == "not shown"
    assert any("Expectation 3 changes with the metric" in i for i in items if isinstance(i, str))


def test_where_the_metrics_agree_the_report_says_so(tmp_path):
    grid = collapsed(tmp_path, by=0.0)
    assert not any(s.differ for s in by_metric.splits(sections.pair_runs(grid), sections.tested_sizes(grid)))
    items = sections.outcomes_section(grid, "final_acc")
    assert any("Every expectation has the same verdict under both." in i for i in items if isinstance(i, str))
