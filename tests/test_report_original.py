"""The original study: its table's spreads, and its outcome rules on constructed cases and on its own table."""
import numpy as np
import pandas as pd
import pytest

from helpers.constructed import runs_frame, summary, write_records
from normlib.report import load, original, rules, sections
from normlib.report.rules import base
from normlib.report.original import PAIR
from normlib.report.stats import compare, spread

BS = [2, 4, 8, 16, 32, 64, 128]


def test_spread_reproduces_the_original_average_std_as_sensitivity_to_batch_size():
    sp = spread(original.original_stats()).set_index("norm")
    assert round(sp.loc["batch", "across_bs"], 2) == 3.54 and round(sp.loc["group", "across_bs"], 2) == 1.55
    assert sp.loc["batch", "run_to_run"] == pytest.approx(np.mean([2.21, 1.07, .76, .54, 1.01, 1.23, .85]))
    assert sp.loc["group", "range"] == pytest.approx(71.97 - 67.77)


GN = [70.0, 71.0, 72.0, 71.0, 70.0]


def case(bn_shift: dict, gn=GN, sizes=BS) -> pd.DataFrame:
    """GroupNorm = gn at every batch size; BatchNorm = gn + bn_shift[bs] (0 where not given)."""
    cells = {}
    for b in sizes:
        cells[("group", b)] = gn
        cells[("batch", b)] = [a + bn_shift.get(b, 0.0) for a in gn[::-1]]  # same values, other seed order
    return summary(cells)


def test_threshold_on_a_constructed_threshold():
    n, poor = base.threshold(compare(case({2: -10, 4: -5}), *PAIR))
    assert (n, poor) == (8, [2, 4])
    o = rules.outcomes(case({2: -10, 4: -5}))
    assert o[0].verdict == "holds" and "N = 8" in o[0].evidence
    assert o[2].verdict == "holds"  # BatchNorm equals GroupNorm from 8 on


def test_no_difference_is_not_significant():
    s = case({})  # BatchNorm and GroupNorm: the same accuracies
    c = compare(s, *PAIR)
    assert (c["diff"] == 0).all() and (c.p_holm == 1).all() and (c.p_less_holm >= 0.5).all()
    n, poor = base.threshold(c)
    assert (n, poor) == (2, [])
    o = rules.outcomes(s)
    assert o[0].verdict == "does not hold" and "no threshold" in o[0].evidence
    assert [o[1].verdict, o[2].verdict] == ["holds", "holds"]


def test_no_difference_with_noise_is_not_significant():
    rng = np.random.default_rng(1)  # both norms drawn from one distribution at every batch size
    cells = {(n, b): rng.normal(70, 1.5, 5) for n in ("batch", "group") for b in BS}
    c = compare(summary(cells), *PAIR)
    assert (c.p_holm >= 0.05).all() and (c.p_less_holm >= 0.05).all()
    assert rules.outcomes(summary(cells))[0].verdict == "does not hold"


def test_poor_at_the_largest_batch_size_has_no_threshold():
    o = rules.outcomes(case({128: -10}))
    assert base.threshold(compare(case({128: -10}), *PAIR))[0] is None
    assert o[0].verdict == "does not hold" and o[2].verdict == "cannot be evaluated"


def test_outcome_2_and_3_tolerances():
    drift = {("group", b): [v - 0.5 * i for v in GN] for i, b in enumerate(BS)}  # GN range 3.0
    cells = {**drift, **{("batch", b): [v + 2.5 for v in vs] for (_, b), vs in drift.items()}}
    o = rules.outcomes(summary(cells), tol=3.0)
    assert o[1].verdict == "not shown" and "range 3.00" in o[1].evidence  # 2 vs 128: 3.00 apart, not inside ± 3
    assert "batch size 2 − 128: +3.00, 90% CI" in o[1].evidence
    assert o[0].verdict == "does not hold"  # never below GN, and shown within 3 points of it or above everywhere
    assert "shown to be no more than 3 points below GroupNorm at every one" in o[0].evidence
    assert o[2].verdict == "not shown"  # a gap of 2.5 <= 3, but its 90% CI (± 1.1) crosses 3: not shown within
    assert "N is the smallest tested, 2" in o[2].evidence and "The widest 90% CI is ±" in o[2].evidence
    assert rules.outcomes(summary(cells), tol=4.0)[2].verdict == "holds"  # every 90% CI inside ± 4
    assert rules.outcomes(summary(cells), tol=5.0)[1].verdict == "holds"  # every pair's 90% CI inside ± 5


def test_outcome_2_is_decided_on_intervals_not_on_the_range():
    steep = {("group", b): [v - 3 * i for v in GN] for i, b in enumerate(BS)}  # 3 points per doubling
    cells = {**steep, **{("batch", b): vs for (_, b), vs in steep.items()}}
    o = rules.outcomes(summary(cells))
    assert o[1].verdict == "does not hold" and "range 18.00" in o[1].evidence and "→ beyond" in o[1].evidence
    noisy = {("group", 2): [60.0, 66.0, 72.0], ("group", 128): [62.0, 68.0, 74.0]}  # 2 points apart, std 6
    o = rules.outcomes(summary({**noisy, **{("batch", b): vs for (_, b), vs in noisy.items()}}))
    assert o[1].verdict == "not shown"  # the range (2.00) is within 3, but the interval is far wider: not shown
    assert "wider than the ±3 band itself" in o[1].evidence


def test_a_non_significant_deficit_is_not_shown_with_its_power():
    rng = np.random.default_rng(5)
    cells = {(n, b): 70 + rng.normal(0, 4, 3) - (4 if (n, b) == ("batch", 2) else 0) for n in PAIR for b in BS}
    o = rules.outcomes(summary(cells))
    assert o[0].verdict == "not shown" and "neither a threshold nor its absence is shown" in o[0].evidence
    assert "Power: with 3 runs per cell, a one-sided test at 0.00714" in o[0].evidence
    assert ("the original's -4.14 there is" in o[0].evidence
            and "seeds per cell at this run-to-run spread" in o[0].evidence)


def test_an_interval_beyond_the_tolerance_decides_what_is_printed():
    o = rules.outcomes(case({b: 8.0 for b in BS}))  # BatchNorm 8 points above at every batch size, std ~0.8
    assert o[2].verdict == "does not hold"
    assert all(f"batch size {b}: +8.00, 90% CI" in o[2].evidence for b in BS)
    assert ("simultaneous 98.6% CI" in o[2].evidence and "→ beyond" in o[2].evidence
            and "→ not shown" not in o[2].evidence)


def test_one_run_per_cell_cannot_be_evaluated():
    o = rules.outcomes(summary({(n, b): [70.0] for n in ("batch", "group") for b in (2, 16)}))
    assert [x.verdict for x in o] == ["cannot be evaluated"] * 3  # one seed describes, never decides
    assert "one run per cell describes, never decides" in o[1].evidence


def test_outcomes_on_the_original_table():
    o = rules.outcomes(original.original_stats())
    assert o[0].verdict == "holds" and "N = 4" in o[0].evidence  # bs 2: one-sided p 0.0068, Holm x7 = 0.047
    assert o[1].verdict == "not shown" and "range 4.20" in o[1].evidence  # 2 − 128: +4.20, simultaneous CI crosses 0
    assert o[2].verdict == "does not hold" and "batch size 32: +6.40" in o[2].evidence
    assert o[0].alt == "holds"  # below its own best (16) only at 2; 128's fall lies above the best


def without(s: pd.DataFrame, norm: str, bs: int) -> pd.DataFrame:
    return s[~((s.norm == norm) & (s.batch_size == bs))]


def test_a_missing_cell_is_named_and_cannot_flip_a_verdict():
    table = original.original_stats()
    o = rules.outcomes(without(table, "group", 128))  # GroupNorm's range without 128: 2.26 <= 3
    assert [x.verdict for x in o] == ["cannot be evaluated"] * 3
    assert all("(GroupNorm, 128): no successful run" in x.evidence for x in o)
    assert "left out: 128" in o[0].evidence
    o = rules.outcomes(without(table, "group", 2))  # nothing is shown beyond without GroupNorm at 2
    assert o[1].verdict == "cannot be evaluated" and "Missing (GroupNorm, 2): no successful run" in o[1].evidence
    steep = case({}, sizes=[2, 16, 128]).assign(mean=lambda s: s["mean"] - 4 * (s.batch_size == 128))
    o = rules.outcomes(without(steep, "group", 2), batch_sizes=[2, 16, 128])  # 16 − 128: +4 ± 0.8, beyond 3
    assert o[1].verdict == "does not hold" and "which could only add pairs" in o[1].evidence
    both_gone = table[table.batch_size != 128]  # a batch size not tested by either norm: named only when expected
    assert rules.outcomes(both_gone)[1].verdict == "not shown"
    assert rules.outcomes(both_gone, batch_sizes=BS)[1].verdict == "cannot be evaluated"
    one_run = summary({("batch", 2): [60, 61], ("group", 2): [70, 71], ("batch", 16): [70], ("group", 16): [70, 70]})
    assert "(BatchNorm, 16): only 1 run" in rules.outcomes(one_run)[0].evidence


def test_paired_runs_find_what_welch_misses():
    rng = np.random.default_rng(3)
    seed_effect = rng.normal(0, 3, 5)  # large run-to-run spread shared by both norms of a seed
    cells = {}
    for b in (2, 16, 128):
        cells[("group", b)] = 70 + seed_effect
        cells[("batch", b)] = 70 + seed_effect + (-1.5 if b == 2 else 0) + rng.normal(0, 0.2, 5)
    runs = runs_frame(cells)
    welch, paired = rules.outcomes(summary(cells)), rules.outcomes(summary(cells), runs=runs)
    assert welch[0].verdict == "not shown" and "Welch t-tests" in welch[0].evidence  # the seed spread hides it
    assert paired[0].verdict == "holds" and "N = 16" in paired[0].evidence
    assert "paired t-tests over seeds" in paired[0].evidence
    assert paired[2].verdict == "holds"  # from 16 on, paired 90% CIs of BN - GN well inside ± 3


def test_rule_3_gatekeeping_the_average_first_then_each_batch_size():
    o = rules.outcomes(case({2: -10, 4: -5, 8: 5, 16: 5}))  # beyond +3 at 8 and 16, but the average is +2
    assert o[2].verdict == "not shown"
    assert "averaged over batch sizes 8, 16, 32, 64, 128 (from the cells' means, Welch): +2.00, 90% CI [+1.60, " \
           "+2.40] → not beyond ±3. Step 2 is not reached" in o[2].evidence
    assert "+2.00, 90% CI [+1.60, +2.40], not beyond ±3" in o[2].short  # the interval that decided it
    o = rules.outcomes(case({2: -10, 4: -5, 8: 6, 16: 6, 32: 6}))  # the average, +3.6, is beyond: step 2 runs
    assert o[2].verdict == "does not hold" and "+3.60, 90% CI [+3.20, +4.00], beyond ±3" in o[2].short
    assert "Step 2, each batch size (simultaneous CIs, Bonferroni over 5)" in o[2].evidence
    assert ("batch size 32: +6.00, 90% CI [+5.02, +6.98], simultaneous 98.0% CI [+4.47, +7.53] → beyond"
            in o[2].evidence)
    assert ("batch size 64: +0.00, 90% CI [-0.98, +0.98], simultaneous 98.0% CI [-1.53, +1.53] → within"
            in o[2].evidence)
    assert "Beyond ±3 on its own: 8, 16, 32." in o[2].evidence


def test_rule_3_average_is_paired_per_seed_and_leaves_out_borrowed_cells():
    cells = {("group", b): GN for b in (2, 16, 128)}
    cells.update({("batch", b): [a + d for a in GN] for b, d in ((2, 4.0), (16, 0.0), (128, 4.0))})
    runs = runs_frame(cells)
    o = rules.outcomes(summary(cells), runs=runs)
    assert o[2].verdict == "not shown"  # per seed the average is +2.67 exactly, within 3: the gate stays closed
    assert ("averaged over batch sizes 2, 16, 128 (per seed over 5 seeds with every cell, paired): +2.67"
            in o[2].evidence)
    o = rules.outcomes(summary(cells), runs=runs, borrowed=[16])  # 16 is another grid's: out of the average
    assert o[2].verdict == "does not hold"
    assert "averaged over batch sizes 2, 128 (per seed over 5 seeds with every cell, paired): +4.00" in o[2].evidence
    assert "batch size 16 left out of the average: their runs are another grid's" in o[2].evidence


def test_poor_against_its_own_best_counts_only_the_batch_sizes_below_it():
    o = rules.outcomes(case({2: -10, 4: -5, 128: -4}))  # BatchNorm falls at 128 too, while GN is level
    assert o[0].verdict == "does not hold"  # below GroupNorm at the largest batch size: no N
    assert o[0].alt == "holds" and "N = 8; significantly below it at batch size 2" in o[0].evidence  # 128 is above
    assert "comparing only the batch sizes below it; two-sided, Holm over all 21 pairs" in o[0].evidence
    o = rules.outcomes(case({b: -3.0 * i for i, b in enumerate(BS)}))  # best at the smallest: nothing below
    assert o[0].alt == "not shown" and "nothing lies below it" in o[0].evidence


def test_the_original_table_as_records_gives_a_threshold_and_a_gap_beyond_3_points(tmp_path):
    z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) / np.sqrt(2.5)  # mean 0, sample std 1: each cell's mean and std exact
    runs = {}
    for bs, cells in original.ORIGINAL_TABLE.items():
        for i, (norm, (mean, std)) in enumerate(zip(PAIR, cells)):
            for j, a in enumerate(mean + std * z):  # the table has no pairing: each norm its own seeds (Welch)
                runs[f"{norm}_bs{bs}_seed{5 * i + j}"] = ({"norm": norm, "batch_size": bs, "seed": 5 * i + j,
                                                           "epochs": 1}, [float(a)])
    write_records(tmp_path / "orig", runs)
    grid = load.load(tmp_path / "orig")
    o = sections.grid_outcomes(grid, "final_acc")
    assert o[0].verdict == "holds" and "N = 4" in o[0].evidence  # BatchNorm below GroupNorm at 2 only
    assert o[0].alt == "holds"  # below its best, 16, at 2; 128's decline lies above the best and does not count
    assert o[2].verdict == "does not hold"
    assert "averaged over batch sizes 4, 8, 16, 32, 64, 128 (from the cells' means, Welch): +5.60, 90% CI " \
           "[+5.20, +5.99] → beyond ±3" in o[2].evidence


def test_every_verdict_states_the_optimizer_steps():
    steps = {b: [10 * 256 // b] for b in BS}
    for x in rules.outcomes(case({2: -10, 4: -5}), steps=steps):
        assert "Caveat: unequal steps (1,280 per run at batch size 2, 20 at 128: 64.0x)" in x.evidence
    assert "Batch size 2 took 64.0x the steps of batch size 128" in base.steps_note(steps)  # the full note
    for x in rules.outcomes(case({}), steps={b: [500] for b in BS}):
        assert "Every batch size ran 500 optimizer steps per run (equal steps)" in x.evidence
    assert base.steps_note({2: [250_000, 250_000]}) == "Only batch size 2 has runs: 250,000 optimizer steps per run."
    assert original.original_steps()[2] == [250_000] and original.original_steps()[128] == [3_910]


def test_protocol_differences_name_data_precision_split_and_metric():
    same = pd.DataFrame([{**original.ORIGINAL_PROTOCOL, "prov_data_source": "/data/cifar-10-batches-py"}])
    assert original.protocol_differences(same, "best_acc", 5) == []
    ours = same.assign(prov_data_source="/work/shared/data/cifar10-jpeg.tar.xz", precision="bf16", val_size=5000,
                       train_size=2000)
    diff = " | ".join(original.protocol_differences(ours, "final_acc", 5))
    assert "image-folder JPEG copy of CIFAR-10 (`cifar10-jpeg.tar.xz`), not the original's python pickles" in diff
    assert "measured by the data-copy control" in diff
    assert "precision bf16 (original: fp32)" in diff and "validation split 5000 (original: none)" in diff
    assert "training images 2000 (original: all)" in diff
    assert "metric final_acc" in diff and "picked on the test set" in diff


def test_the_regime_differs_only_in_images_or_epochs_and_says_which():
    same = pd.DataFrame({"train_images": [50_000] * 2, "epochs_run": [10, 10]})
    assert original.regime_text(same) == ""  # another data source or metric is no other regime
    assert original.regime_text(same.assign(epochs_run=3)) == "3 epochs against the original's 10"
    assert original.regime_text(same.assign(train_images=6_000, epochs_run=3)) == (
        "6,000 training images and 3 epochs against the original's 50,000 and 10")
