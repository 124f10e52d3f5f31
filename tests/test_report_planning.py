"""The seeds that would decide a band verdict left 'not shown': the number the report names decides it when the
measured means and spreads recur at that many seeds, and is absent where no number can."""
import re

import pandas as pd

from normlib.report import rules
from normlib.report.stats import ci95

SIZES = (2, 4, 8, 16, 32, 64, 128)


def table(gn: dict, bn: dict, n: int, std: float) -> pd.DataFrame:
    """A stats() frame (no per-seed records, so Welch tests): the given means, one std, n runs in every cell."""
    return pd.DataFrame([{"batch_size": b, "norm": norm, "n": n, "mean": means[b], "std": std, "ci95": ci95(std, n)}
                         for norm, means in (("batch", bn), ("group", gn)) for b in SIZES])


def named(outcome) -> int:
    """The seeds per cell an outcome's evidence names; its short line says the same."""
    m = int(re.search(r"takes about (\d+) seeds per cell", outcome.evidence).group(1))
    assert f"about {m} seeds per cell would show it" in outcome.short
    return m


def test_the_seeds_named_for_groupnorm_within_the_band_decide_it():
    gn = dict(zip(SIZES, [70.0, 70.5, 71.0, 70.2, 69.8, 69.5, 69.0]))  # every pair within 2 points
    bn = {b: 75.0 for b in SIZES}
    before = rules.outcomes(table(gn, bn, 3, 1.5))[1]
    assert before.verdict == "not shown" and "to show every difference within ±3" in before.evidence
    m = named(before)
    assert m > 3
    assert rules.outcomes(table(gn, bn, m, 1.5))[1].verdict == "holds"


def test_the_seeds_named_for_groupnorm_beyond_the_band_decide_it():
    gn = dict(zip(SIZES, [74.0, 72.0, 71.0, 71.0, 70.0, 70.0, 69.0]))  # 2 − 128: 5 points
    bn = {b: 75.0 for b in SIZES}
    before = rules.outcomes(table(gn, bn, 3, 3.0))[1]
    assert before.verdict == "not shown" and "batch size 2 − 128 (+5.00) beyond ±3" in before.evidence
    assert rules.outcomes(table(gn, bn, named(before), 3.0))[1].verdict == "does not hold"


def test_rule_3_names_the_seeds_for_its_average_or_says_none_decide_it():
    gn = {b: 70.0 for b in SIZES}
    wide = rules.outcomes(table(gn, {b: 74.5 for b in SIZES}, 2, 4.0))[2]  # the average +4.5, beyond +3
    assert wide.verdict == "not shown" and "to show the average (+4.50) beyond ±3" in wide.evidence
    assert rules.outcomes(table(gn, {b: 74.5 for b in SIZES}, named(wide), 4.0))[2].verdict == "does not hold"
    mixed = {**{b: 71.0 for b in SIZES}, 8: 75.0}  # batch size 8 beyond +3, the average +1.57 inside
    shut = rules.outcomes(table(gn, mixed, 2, 4.0))[2]
    assert shut.verdict == "not shown" and "no number of seeds decides it: batch size 8 (+5.00)" in shut.evidence
    assert "no number of seeds would decide it" in shut.short


def test_the_seeds_are_also_given_over_a_range_of_true_differences_and_agree_with_the_measured_one():
    gn = dict(zip(SIZES, [74.0, 72.0, 71.0, 71.0, 70.0, 70.0, 69.0]))  # 2 − 128: 5 points, the largest
    before = rules.outcomes(table(gn, {b: 75.0 for b in SIZES}, 3, 3.0))[1]
    grid = re.search(r"seeds per cell if the true difference is 3.2 / 3.5 / 4 / 5 points: ([\d,]+) / ([\d,]+) / "
                     r"([\d,]+) / ([\d,]+)", before.short)
    counts = [int(c.replace(",", "")) for c in grid.groups()]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    assert counts[-1] == named(before)  # the true difference 5 is the one measured
    assert grid.group(0) in before.evidence
