"""The epoch-by-epoch section on constructed records: the original's printed runs placed in our spread, the
verdicts after each epoch, the step budget, and no section outside the original's data regime."""
import json

import numpy as np
import pytest
from helpers.constructed import pair_grid
from scipy import stats as st

from normlib.report import epochs, load
from normlib.report.tables import Table


def all_images(folder):
    """Mark a constructed grid's records as trained on all 50,000 images, with the steps that gives 2 epochs."""
    for path in (folder / "runs").glob("*.json"):
        rec = json.loads(path.read_text())
        rec["images"]["train"] = 50_000
        rec["steps"] = 2 * -(-50_000 // rec["params"]["batch_size"])
        path.write_text(json.dumps(rec))
    return load.load(folder)


def test_the_prediction_interval_is_the_t_interval_of_one_further_run():
    v = [50.0, 52.0, 57.0]
    half = st.t.ppf(0.975, 2) * np.std(v, ddof=1) * np.sqrt(1 + 1 / 3)
    assert epochs.prediction_interval(v) == pytest.approx((np.mean(v) - half, np.mean(v) + half))
    assert np.isnan(epochs.prediction_interval([50.0])).all()
    assert epochs.where(90.0, v).startswith("above our 95% prediction interval")
    assert "inside" in epochs.where(53.0, v) and "within our runs' range" in epochs.where(53.0, v)
    assert epochs.where(49.0, [50.0]) == "below our one run (no interval)"


def test_the_original_log_sits_beside_our_epochs_in_the_printed_cells(tmp_path):
    pair_grid(tmp_path / "g", (2, 4, 16))
    grid = all_images(tmp_path / "g")
    table = epochs.log_table(grid.epochs)
    assert list(table.cell.unique()) == ["BatchNorm, batch size 2", "GroupNorm, batch size 2",
                                         "BatchNorm, batch size 4"]
    row = table[(table.cell == "BatchNorm, batch size 4") & (table.epoch == 2)].iloc[0]
    ours = grid.epochs[(grid.epochs.norm == "batch") & (grid.epochs.batch_size == 4) & (grid.epochs.epoch == 2)]
    assert row["the original's run (%)"] == "60.45"
    assert row["ours − the original's"] == f"{ours.test_acc.mean() - 60.45:+.2f}".replace("-", "−")
    assert row["where the original's run falls"] == epochs.where(60.45, ours.test_acc.to_list())


def test_verdicts_are_decided_again_after_each_epoch_on_that_epochs_accuracy(tmp_path):
    pair_grid(tmp_path / "g", (2, 4, 16))
    grid = all_images(tmp_path / "g")
    one = epochs.at_epoch(grid, 1, "final_acc")
    first = grid.epochs[grid.epochs.epoch == 1].set_index("run_id").test_acc
    assert (one.runs.set_index("run_id").final_acc == first.loc[one.runs.run_id].to_numpy()).all()
    table = epochs.verdicts_by_epoch(grid, "final_acc")
    assert list(table.columns) == ["expected outcome", "after epoch 1", "after epoch 2",
                                   "the original's table (best of 10 epochs)"] and len(table) == 3
    assert table.iloc[:, -1].str.startswith(("holds", "not shown", "does not hold")).tolist() == [True] * 3
    assert table.iloc[0, -1] == "holds (below its own best: holds)"  # rule 1 on the original's own table


def test_the_section_names_the_step_budget_and_appears_only_on_all_images(tmp_path):
    pair_grid(tmp_path / "small", (2, 128))
    assert epochs.epochs_section(load.load(tmp_path / "small"), "final_acc") == []
    pair_grid(tmp_path / "g", (2, 128))
    items = epochs.epochs_section(all_images(tmp_path / "g"), "final_acc")
    assert sum(isinstance(i, Table) for i in items) == 2
    assert items[-1].startswith("**Equal epochs are not equal budgets.** Unequal optimizer steps per run")
    assert "(batch size: steps) — 2: 50,000; 128: 782." in items[-1]
    assert "Batch size 2 took 63.9x the steps of batch size 128" in items[-1]


def test_the_printed_runs_placed_together_are_tested_against_exchangeability():
    import pandas as pd
    from scipy.stats import binom
    rows = []
    for (norm, bs), log in epochs.ORIGINAL_LOG.items():
        for epoch in (1, 2):
            offsets = (-4, -3, -2, -1, -0.5) if (norm, bs, epoch) != ("batch", 4, 2) else (-1, 0, 1, 2, 3)
            rows += [{"norm": norm, "batch_size": bs, "epoch": epoch, "test_acc": log[epoch - 1] + o} for o in offsets]
    t = epochs.placement(pd.DataFrame(rows))
    assert (t["n"], t["above"], t["runs"], t["runs_above"], t["k"]) == (6, 5, 3, 2, [5])
    assert t["p_values"] == pytest.approx(binom.sf(4, 6, 1 / 6)) and t["p_runs"] == pytest.approx(binom.sf(1, 3, 1 / 6))
    assert t["over_mean"] == 5  # batch size 4, epoch 2: the printed value is below our mean (+1)
    text = epochs.placement_text(pd.DataFrame(rows))
    from normlib.report.text import pval
    assert "5 above all 5 of our runs" in text
    assert f"would happen with probability {pval(binom.sf(4, 6, 1 / 6))};" in text
