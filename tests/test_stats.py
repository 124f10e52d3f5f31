"""Statistics over seeds against hand-computed values and scipy, and the seed's outcome rules on constructed cases."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from normlib import stats

BS = [2, 4, 8, 16, 32, 64, 128]


def runs_frame(cells: dict) -> pd.DataFrame:
    """{(norm, batch_size): [accuracy per seed]} -> a runs DataFrame like report.load's."""
    return pd.DataFrame([{"norm": n, "batch_size": b, "seed": i, "status": "ok", "final_acc": float(a)}
                         for (n, b), accs in cells.items() for i, a in enumerate(accs)])


def summary(cells: dict) -> pd.DataFrame:
    return stats.stats(runs_frame(cells))


# ---------------------------------------------------------------- statistics

def test_stats_mean_std_ci_by_hand():
    s = summary({("batch", 2): [60, 62, 64], ("group", 2): [70, 70]})
    b = s[s.norm == "batch"].iloc[0]
    assert (b.n, b["mean"], b["std"]) == (3, 62.0, 2.0)
    assert b.ci95 == pytest.approx(4.302652729 * 2 / math.sqrt(3))  # t(0.975, 2 df) * s / sqrt(n)
    g = s[s.norm == "group"].iloc[0]
    assert (g["std"], g.ci95) == (0.0, 0.0)


def test_stats_leaves_out_failed_runs_and_single_run_has_no_ci():
    r = runs_frame({("batch", 2): [60, 62], ("group", 2): [70]})
    r.loc[1, "status"] = "failed"
    s = stats.stats(r)
    assert list(s.n) == [1, 1] and s.ci95.isna().all()


def test_welch_by_hand_and_against_scipy():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3  # 1.6667/4, 4/3
    se, df = math.sqrt(va + vb), (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2)
    assert se == pytest.approx(math.sqrt(1.75)) and df == pytest.approx(3.0625 / 0.946759, rel=1e-5)
    r = stats.welch_stats(2.5, np.std(a, ddof=1), 4, 4.0, np.std(b, ddof=1), 3)
    assert r["diff"] == -1.5 and r["df"] == pytest.approx(df)
    assert r["p"] == pytest.approx(2 * st.t.sf(1.5 / se, df))
    assert r["p"] == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue)
    assert r["p_less"] == pytest.approx(st.ttest_ind(a, b, equal_var=False, alternative="less").pvalue)
    assert r["ci95"] == pytest.approx(st.t.ppf(0.975, df) * se)
    assert stats.welch(a, b) == pytest.approx((-1.5, r["p"]))


def test_welch_edge_cases():
    assert np.isnan(stats.welch_stats(1, np.nan, 1, 2, 1.0, 5)["p"])  # one run: no test
    same = stats.welch_stats(70, 0.0, 3, 70, 0.0, 3)  # identical constant samples: no difference at all
    assert (same["p"], same["p_less"]) == (1.0, 0.5)
    assert stats.welch_stats(60, 0.0, 3, 70, 0.0, 3)["p_less"] == 0.0


def test_paired_by_hand():
    d, h = stats.paired([1.0, 2.0, 3.0, np.nan])  # nan left out
    assert d == 2.0 and h == pytest.approx(4.302652729 / math.sqrt(3))  # t(0.975, 2 df) * s / sqrt(n), s = 1
    one = stats.paired([5.0])
    assert one[0] == 5.0 and np.isnan(one[1])


def test_holm_by_hand():
    got = stats.holm([0.01, 0.04, 0.03, np.nan])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, np.nan])  # 3*.01; max(2*.03, 1*.04) twice; nan left out


def test_trend_from_summary_equals_regression_over_runs():
    rng = np.random.default_rng(0)
    cells = {("group", b): 72 - 0.7 * math.log2(b) + rng.normal(0, 1, 4) for b in BS}
    t = stats.trend(summary(cells))
    x = [math.log2(b) for (_, b), v in cells.items() for _ in v]
    y = [a for v in cells.values() for a in v]
    lr = st.linregress(x, y)
    assert t["slope"] == pytest.approx(lr.slope) and t["p"] == pytest.approx(lr.pvalue)
    assert t["ci95"] == pytest.approx(st.t.ppf(0.975, len(x) - 2) * lr.stderr)


def test_spread_reproduces_the_seed_average_std_as_sensitivity_to_batch_size():
    sp = stats.spread(stats.seed_stats()).set_index("norm")
    assert round(sp.loc["batch", "across_bs"], 2) == 3.54 and round(sp.loc["group", "across_bs"], 2) == 1.55
    assert sp.loc["batch", "run_to_run"] == pytest.approx(np.mean([2.21, 1.07, .76, .54, 1.01, 1.23, .85]))
    assert sp.loc["group", "range"] == pytest.approx(71.97 - 67.77)


# ---------------------------------------------------------------- the seed's outcomes

GN = [70.0, 71.0, 72.0, 71.0, 70.0]


def case(bn_shift: dict, gn=GN, sizes=BS) -> pd.DataFrame:
    """GroupNorm = gn at every batch size; BatchNorm = gn + bn_shift[bs] (0 where not given)."""
    cells = {}
    for b in sizes:
        cells[("group", b)] = gn
        cells[("batch", b)] = [a + bn_shift.get(b, 0.0) for a in gn[::-1]]  # same values, other seed order
    return summary(cells)


def test_threshold_on_a_constructed_threshold():
    n, poor = stats.threshold(stats.compare(case({2: -10, 4: -5})))
    assert (n, poor) == (8, [2, 4])
    o = stats.outcomes(case({2: -10, 4: -5}))
    assert o[0].verdict == "holds" and "N = 8" in o[0].evidence
    assert o[2].verdict == "holds"  # BatchNorm equals GroupNorm from 8 on


def test_no_difference_is_not_significant():
    s = case({})  # BatchNorm and GroupNorm: the same accuracies
    c = stats.compare(s)
    assert (c["diff"] == 0).all() and (c.p_holm == 1).all() and (c.p_less_holm >= 0.5).all()
    n, poor = stats.threshold(c)
    assert (n, poor) == (2, [])
    o = stats.outcomes(s)
    assert o[0].verdict == "does not hold" and "no threshold" in o[0].evidence
    assert [o[1].verdict, o[2].verdict] == ["holds", "holds"]


def test_no_difference_with_noise_is_not_significant():
    rng = np.random.default_rng(1)  # both norms drawn from one distribution at every batch size
    cells = {(n, b): rng.normal(70, 1.5, 5) for n in ("batch", "group") for b in BS}
    c = stats.compare(summary(cells))
    assert (c.p_holm >= 0.05).all() and (c.p_less_holm >= 0.05).all()
    assert stats.outcomes(summary(cells))[0].verdict == "does not hold"


def test_poor_at_the_largest_batch_size_has_no_threshold():
    o = stats.outcomes(case({128: -10}))
    assert stats.threshold(stats.compare(case({128: -10})))[0] is None
    assert o[0].verdict == "does not hold" and o[2].verdict == "cannot be evaluated"


def test_outcome_2_and_3_tolerances():
    drift = {("group", b): [v - 0.5 * i for v in GN] for i, b in enumerate(BS)}  # GN range 3.0
    cells = {**drift, **{("batch", b): [v + 2.5 for v in vs] for (_, b), vs in drift.items()}}
    o = stats.outcomes(summary(cells), tol=3.0)
    assert o[1].verdict == "holds" and "range 3.00" in o[1].evidence
    assert o[0].verdict == "does not hold" and o[2].verdict == "holds"  # never below GN: N = 2, gap 2.5 <= 3
    assert stats.outcomes(summary(cells), tol=2.0)[1].verdict == "does not hold"


def test_one_run_per_cell_cannot_be_evaluated():
    o = stats.outcomes(summary({(n, b): [70.0] for n in ("batch", "group") for b in (2, 16)}))
    assert [x.verdict for x in o] == ["cannot be evaluated", "holds", "cannot be evaluated"]


def test_outcomes_on_the_seed_table():
    o = stats.outcomes(stats.seed_stats())
    assert o[0].verdict == "holds" and "N = 4" in o[0].evidence  # bs 2: one-sided p 0.0068, Holm x7 = 0.047
    assert o[1].verdict == "does not hold" and "range 4.20" in o[1].evidence
    assert o[2].verdict == "does not hold" and "6.40" in o[2].evidence and "batch size 32" in o[2].evidence
