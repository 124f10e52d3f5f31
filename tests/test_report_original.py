"""The original study: its table's spreads, and its outcome rules on constructed cases and on its own table."""
import numpy as np
import pandas as pd
import pytest

from constructed import summary
from normlib.report import original
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
    n, poor = original.threshold(compare(case({2: -10, 4: -5}), *PAIR))
    assert (n, poor) == (8, [2, 4])
    o = original.outcomes(case({2: -10, 4: -5}))
    assert o[0].verdict == "holds" and "N = 8" in o[0].evidence
    assert o[2].verdict == "holds"  # BatchNorm equals GroupNorm from 8 on


def test_no_difference_is_not_significant():
    s = case({})  # BatchNorm and GroupNorm: the same accuracies
    c = compare(s, *PAIR)
    assert (c["diff"] == 0).all() and (c.p_holm == 1).all() and (c.p_less_holm >= 0.5).all()
    n, poor = original.threshold(c)
    assert (n, poor) == (2, [])
    o = original.outcomes(s)
    assert o[0].verdict == "does not hold" and "no threshold" in o[0].evidence
    assert [o[1].verdict, o[2].verdict] == ["holds", "holds"]


def test_no_difference_with_noise_is_not_significant():
    rng = np.random.default_rng(1)  # both norms drawn from one distribution at every batch size
    cells = {(n, b): rng.normal(70, 1.5, 5) for n in ("batch", "group") for b in BS}
    c = compare(summary(cells), *PAIR)
    assert (c.p_holm >= 0.05).all() and (c.p_less_holm >= 0.05).all()
    assert original.outcomes(summary(cells))[0].verdict == "does not hold"


def test_poor_at_the_largest_batch_size_has_no_threshold():
    o = original.outcomes(case({128: -10}))
    assert original.threshold(compare(case({128: -10}), *PAIR))[0] is None
    assert o[0].verdict == "does not hold" and o[2].verdict == "cannot be evaluated"


def test_outcome_2_and_3_tolerances():
    drift = {("group", b): [v - 0.5 * i for v in GN] for i, b in enumerate(BS)}  # GN range 3.0
    cells = {**drift, **{("batch", b): [v + 2.5 for v in vs] for (_, b), vs in drift.items()}}
    o = original.outcomes(summary(cells), tol=3.0)
    assert o[1].verdict == "holds" and "range 3.00" in o[1].evidence
    assert o[0].verdict == "does not hold" and o[2].verdict == "holds"  # never below GN: N = 2, gap 2.5 <= 3
    assert original.outcomes(summary(cells), tol=2.0)[1].verdict == "does not hold"


def test_one_run_per_cell_cannot_be_evaluated():
    o = original.outcomes(summary({(n, b): [70.0] for n in ("batch", "group") for b in (2, 16)}))
    assert [x.verdict for x in o] == ["cannot be evaluated", "holds", "cannot be evaluated"]


def test_outcomes_on_the_original_table():
    o = original.outcomes(original.original_stats())
    assert o[0].verdict == "holds" and "N = 4" in o[0].evidence  # bs 2: one-sided p 0.0068, Holm x7 = 0.047
    assert o[1].verdict == "does not hold" and "range 4.20" in o[1].evidence
    assert o[2].verdict == "does not hold" and "6.40" in o[2].evidence and "batch size 32" in o[2].evidence
