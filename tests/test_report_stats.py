"""Statistics over seeds against hand-computed values and scipy."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from helpers.constructed import runs_frame, summary
from normlib.report import stats

BS = [2, 4, 8, 16, 32, 64, 128]


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


def test_paired_against_scipy_and_welch_when_seeds_differ():
    a, b = [70.0, 72.0, 71.5, 69.0], [68.0, 71.0, 70.0, 66.5]  # per seed 0..3
    r = stats.paired_stats(np.subtract(a, b))
    ref = st.ttest_rel(a, b)
    assert r["p"] == pytest.approx(ref.pvalue) and r["df"] == 3
    assert r["p_less"] == pytest.approx(st.ttest_rel(a, b, alternative="less").pvalue)
    runs = runs_frame({("batch", 2): a, ("group", 2): b, ("batch", 4): a, ("group", 4): b[:3]})
    c = stats.compare(stats.stats(runs), "batch", "group", runs=runs).set_index("batch_size")
    assert c.loc[2, "test"] == "paired" and c.loc[2, "p"] == pytest.approx(ref.pvalue)
    assert c.loc[4, "test"] == "Welch"  # seed 3 has no GroupNorm run at batch size 4
    assert c.loc[4, "p"] == pytest.approx(st.ttest_ind(a, b[:3], equal_var=False).pvalue)
    assert (stats.compare(stats.stats(runs), "batch", "group").test == "Welch").all()  # no runs: summaries only


def test_equivalence_is_the_90_percent_ci_inside_the_band():
    d = np.array([0.5, 1.5, 1.0, 0.8, 1.2])
    r = stats.paired_stats(d)
    e = stats.equivalence(r["diff"], r["se"], r["df"], tol=3.0, alpha=0.05)
    lo, hi = st.t.interval(0.90, 4, loc=d.mean(), scale=r["se"])
    assert (e["lo"], e["hi"]) == pytest.approx((lo, hi))
    upper = st.ttest_1samp(d, 3.0, alternative="less").pvalue  # H0 diff >= 3
    lower = st.ttest_1samp(d, -3.0, alternative="greater").pvalue  # H0 diff <= -3
    assert e["p_tost"] == pytest.approx(max(upper, lower)) and e["p_tost"] < 0.05 and -3 < lo < hi < 3
    wide = stats.equivalence(2.0, 1.0, 4, tol=3.0)  # CI crosses +3: not shown to be within
    assert wide["hi"] > 3 and wide["p_tost"] > 0.05 and wide["p_beyond"] > 0.05
    far = stats.equivalence(6.0, 0.5, 8, tol=3.0)  # CI entirely above +3
    assert far["p_beyond"] == pytest.approx(st.t.sf(6.0, 8)) and far["lo"] > 3
    assert np.isnan(stats.equivalence(1.0, np.nan, np.nan, tol=3.0)["p_tost"])


def test_pairwise_holm_over_all_pairs_and_versus_best():
    cells = {("group", g): [70 + 3 * (g == 4) + e for e in (0.1, -0.4, 0.3, 0.0)] for g in (1, 4, 16)}
    runs = runs_frame(cells).rename(columns={"batch_size": "groups"})
    s = stats.stats(runs, by=("groups",))
    pw = stats.pairwise(s, "groups", runs=runs)
    assert len(pw) == 3 and (pw.test == "paired").all()
    np.testing.assert_allclose(pw.p_holm, stats.holm(pw.p))
    vb = stats.versus_best(s, "groups", runs=runs).set_index("groups")
    assert (vb.best == 4).all() and list(vb.index) == [1, 16] and (vb.family == 3).all()
    assert vb.loc[1, "diff"] == pytest.approx(-3.0) and vb.loc[16, "diff"] == pytest.approx(-3.0)
    assert set(vb.p_holm) <= set(pw.p_holm)


def test_bands_print_the_intervals_they_decide_on():
    rows = pd.DataFrame({"diff": [0.0, 8.0, 2.5, 1.0], "se": [0.5, 0.5, 0.5, np.nan], "df": [4.0, 4.0, 4.0, np.nan]})
    b = stats.bands(rows, tol=3.0)
    assert list(b.label) == ["within", "beyond", "not shown", "no test"]
    m = 3  # the rows with a test
    half = st.t.ppf(1 - 0.05 / m, 4) * 0.5
    assert b.slo[1] == pytest.approx(8 - half) and b.shi[1] == pytest.approx(8 + half)
    assert b.lo[0] == pytest.approx(-st.t.ppf(0.95, 4) * 0.5) and b.slevel[0] == pytest.approx(1 - 0.1 / m)
    for r in b.itertuples():  # beyond exactly when the printed simultaneous interval lies outside +-3
        assert (r.label == "beyond") == (r.slo > 3 or r.shi < -3)


def test_noninferiority_and_power():
    assert stats.noninferior(0.0, 0.5, 4, 3.0) < 0.01 and stats.noninferior(-3.0, 0.5, 4, 3.0) == pytest.approx(0.5)
    for df, alpha in ((9, 0.05), (2, 0.05 / 7), (1, 0.05)):  # exact: the noncentral t reaches 80% power there
        mde = stats.detectable(1.0, df, alpha)
        assert st.nct.sf(st.t.ppf(1 - alpha, df), df, mde) == pytest.approx(0.8, abs=1e-6)
        if df < 3:  # the central-t shortcut understates it at few degrees of freedom
            assert mde > 1.05 * (st.t.ppf(1 - alpha, df) + st.t.ppf(0.8, df))
    assert stats.detectable(0.0, 4, 0.05) == 0.0 and np.isnan(stats.detectable(np.nan, 4, 0.05))
    need = stats.runs_needed(4.0, se=2.0, n=3, paired=True, alpha=0.05)
    s = 2.0 * np.sqrt(3 / need)  # the standard error at `need` runs: power reached there and not one run before
    assert st.nct.sf(st.t.ppf(0.95, need - 1), need - 1, 4.0 / s) >= 0.8
    s1 = 2.0 * np.sqrt(3 / (need - 1))
    assert need == 2 or st.nct.sf(st.t.ppf(0.95, need - 2), need - 2, 4.0 / s1) < 0.8
    assert stats.runs_needed(0.001, se=5.0, n=3, paired=True, alpha=0.05, most=50) is None


def test_runs_needed_for_an_equivalence_test_reach_its_power():
    """Within ±3 of a true difference of 0.5 (2.5 and 3.5 to the edges): both one-sided tests must reject, so TOST
    needs more runs than its nearer side alone, and at that many a simulated paired TOST reaches 80%."""
    one = stats.runs_needed(2.5, se=2.0, n=3, paired=True, alpha=0.05)
    m = stats.runs_needed(2.5, se=2.0, n=3, paired=True, alpha=0.05, far=3.5)
    assert m > one
    sd = 2.0 * np.sqrt(3)  # the spread of one seed's difference
    d = np.random.default_rng(0).normal(0.5, sd, size=(20000, m))
    mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / np.sqrt(m)
    crit = st.t.ppf(0.95, m - 1)
    assert ((mean + crit * se < 3) & (mean - crit * se > -3)).mean() >= 0.79


def test_seed_slopes_fit_one_slope_per_seed_and_test_their_mean_over_the_seeds():
    rng = np.random.default_rng(1)
    rows = [{"seed": seed, "num_blocks": b, "y": 10 * seed - (1.5 + 0.2 * seed) * np.log2(b) + rng.normal(0, 0.3)}
            for seed in range(3) for b in (1, 2, 4, 8, 16)]
    runs = pd.DataFrame(rows)
    t = stats.seed_slopes(runs, "num_blocks", "y")
    per = [st.linregress(np.log2(g.num_blocks), g.y).slope for _, g in runs.groupby("seed")]
    one = st.ttest_1samp(per, 0.0)
    assert t["diff"] == pytest.approx(np.mean(per)) and t["df"] == 2 and t["n"] == 15 and t["units"] == 3
    assert t["p"] == pytest.approx(one.pvalue) and t["p_less"] < 0.05
    assert np.isnan(stats.seed_slopes(runs[runs.seed == 0], "num_blocks", "y")["p"])  # one seed: no test
