"""Statistics over seeds: confidence intervals, paired and Welch t-tests, equivalence tests (TOST), Holm's correction
over a family of tests, trends and spreads of accuracy."""
import numpy as np
import pandas as pd
from scipy import stats as st
from scipy.optimize import brentq

ALPHA = 0.05  # significance level; tests repeated over batch sizes are Holm-corrected across them
Q95 = 0.975  # t quantile of a two-sided 95% confidence interval
POWER = 0.8  # the power at which the report states the smallest detectable difference and the seeds a claim needs


def ci95(std, n) -> float:
    """Half-width of the 95% t confidence interval of a mean of n values with sample std `std`; nan below 2 values."""
    return st.t.ppf(Q95, n - 1) * std / np.sqrt(n) if n > 1 else np.nan


def t_result(diff, se, df) -> dict:
    """A difference with its standard error and degrees of freedom: the 95% CI half-width, the two-sided p and the
    one-sided p for diff < 0. se = 0 means the difference is exact (both samples constant)."""
    if se == 0:
        return {"diff": diff, "se": 0.0, "df": df, "ci95": 0.0, "p": float(diff == 0),
                "p_less": 0.5 if diff == 0 else float(diff > 0)}
    t_value = diff / se
    return {"diff": diff, "se": float(se), "df": float(df), "ci95": float(st.t.ppf(Q95, df) * se),
            "p": float(2 * st.t.sf(abs(t_value), df)), "p_less": float(st.t.cdf(t_value, df))}


def no_test(diff) -> dict:
    return {"diff": diff, "se": np.nan, "df": np.nan, "ci95": np.nan, "p": np.nan, "p_less": np.nan}


def paired_stats(d) -> dict:
    """Paired t-test on differences d (nan left out): t_result of their mean; no test below 2 differences."""
    d = np.asarray(d, float)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        return no_test(d.mean() if len(d) else np.nan)
    return t_result(d.mean(), d.std(ddof=1) / np.sqrt(len(d)), len(d) - 1)


def paired(d) -> tuple:
    """Mean of paired differences (nan left out) and its 95% CI half-width."""
    r = paired_stats(d)
    return r["diff"], r["ci95"]


def holm(p) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (nan entries are left out of the family)."""
    p = np.asarray(p, float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    running = 0.0
    for rank, j in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (len(idx) - rank) * p[j]))
        out[j] = running
    return out


def welch_stats(m1, s1, n1, m2, s2, n2) -> dict:
    """Welch's unequal-variance t-test from summary statistics: t_result of diff = m1 - m2. No test when a side has
    fewer than 2 runs."""
    if n1 < 2 or n2 < 2 or np.isnan(s1) or np.isnan(s2):
        return no_test(m1 - m2)
    v1, v2 = s1 ** 2 / n1, s2 ** 2 / n2
    df = (v1 + v2) ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1)) if v1 + v2 > 0 else np.nan
    return t_result(m1 - m2, np.sqrt(v1 + v2), df)


def welch_rows(a, b) -> dict:
    """welch_stats of two stats() rows: a - b."""
    return welch_stats(a["mean"], a["std"], a.n, b["mean"], b["std"], b.n)


def cell_test(a, b, xa=None, xb=None) -> dict:
    """a - b for two stats() rows: a paired t-test on the per-unit differences when both sides' values (xa, xb: Series
    indexed by the pairing unit, e.g. the seed) have the same >= 2 units, each once; Welch's t-test otherwise. The
    result names the test."""
    if (xa is not None and xb is not None and len(xa) > 1 and xa.index.is_unique and xb.index.is_unique
            and set(xa.index) == set(xb.index)):
        return {**paired_stats(xa - xb.reindex(xa.index)), "test": "paired"}
    return {**welch_rows(a, b), "test": "Welch"}


def equivalence(diff, se, df, tol: float, alpha: float = ALPHA) -> dict:
    """Is |difference| within tol? Two one-sided tests (TOST): p_tost < alpha exactly when the (1 - 2 alpha) CI
    [lo, hi] lies inside (-tol, tol). p_beyond is the one-sided p of |difference| > tol (on the observed side)."""
    if np.isnan(se):
        return {"lo": np.nan, "hi": np.nan, "p_tost": np.nan, "p_beyond": np.nan}
    if se == 0:
        return {"lo": diff, "hi": diff, "p_tost": float(abs(diff) >= tol), "p_beyond": float(abs(diff) <= tol)}
    half = st.t.ppf(1 - alpha, df) * se
    return {"lo": diff - half, "hi": diff + half,
            "p_tost": float(max(st.t.sf((diff + tol) / se, df), st.t.cdf((diff - tol) / se, df))),
            "p_beyond": float(st.t.sf((abs(diff) - tol) / se, df))}


def noninferior(diff, se, df, margin: float) -> float:
    """One-sided p of 'a is below b by margin or more' (diff = a - b <= -margin); p < alpha shows a within margin of b
    or above it."""
    if np.isnan(se):
        return np.nan
    if se == 0:
        return float(diff <= -margin)
    return float(st.t.sf((diff + margin) / se, df))


def bands(rows: pd.DataFrame, tol: float, alpha: float = ALPHA) -> pd.DataFrame:
    """Each difference (columns diff, se, df) judged against +-tol on the intervals the report prints: `lo`/`hi`, its
    (1 - 2 alpha) CI, inside (-tol, tol) exactly when TOST shows it within (no correction: 'all within' is one claim);
    `slo`/`shi`, the simultaneous (1 - 2 alpha / m) CI over the m rows (Bonferroni), entirely beyond +-tol exactly when
    a one-sided test at alpha / m shows it beyond. label: within | beyond | not shown (nan se: no test)."""
    m = max(int(rows.se.notna().sum()), 1)
    out = pd.DataFrame(index=rows.index, columns=["lo", "hi", "slo", "shi", "label"], dtype=object)
    for i, r in rows.iterrows():
        if np.isnan(r.se):
            out.loc[i] = [np.nan] * 4 + ["no test"]
            continue
        half = st.t.ppf(1 - alpha, r.df) * r.se if r.se else 0.0
        shalf = st.t.ppf(1 - alpha / m, r.df) * r.se if r.se else 0.0
        lo, hi, slo, shi = r["diff"] - half, r["diff"] + half, r["diff"] - shalf, r["diff"] + shalf
        label = "within" if -tol < lo and hi < tol else "beyond" if slo > tol or shi < -tol else "not shown"
        out.loc[i] = [lo, hi, slo, shi, label]
    return out.assign(level=1 - 2 * alpha, slevel=1 - 2 * alpha / m)


def detectable(se, df, alpha: float, power: float = POWER) -> float:
    """The smallest true difference that a one-sided t-test at level alpha detects with the given power, for a
    difference measured with standard error se and df degrees of freedom: exact, by the noncentral t (the central-t
    shortcut t(1 - alpha) + t(power) understates it at few degrees of freedom)."""
    if np.isnan(se) or np.isnan(df):
        return np.nan
    if se == 0:
        return 0.0
    crit = st.t.ppf(1 - alpha, df)
    gap = lambda nc: st.nct.sf(crit, df, nc) - power
    hi = crit + st.norm.ppf(power) + 1.0
    while gap(hi) < 0:
        hi *= 2
    return float(brentq(gap, 0.0, hi, xtol=1e-10) * se)


def runs_needed(effect: float, se, n: int, paired: bool, alpha: float, power: float = POWER, most: int = 1000,
                far: float = None):
    """Runs per cell for a one-sided t-test at level alpha to detect a true difference `effect` with the given power,
    when n runs per cell measure the difference with standard error se (se shrinks as 1 / sqrt(runs)); None when more
    than `most` would be needed. With `far`, an equivalence test (TOST) whose bounds lie `effect` and `far` beyond
    the true difference: both one-sided tests must reject, with power at least the sum of theirs less 1."""
    def enough(m: int) -> bool:
        s, df = se * np.sqrt(n / m), (m - 1 if paired else 2 * (m - 1))
        if s == 0:
            return True
        crit = st.t.ppf(1 - alpha, df)
        got = st.nct.sf(crit, df, abs(effect) / s) + (0 if far is None else st.nct.sf(crit, df, abs(far) / s) - 1)
        return got >= power

    if not enough(most):
        return None
    low, high = 1, most  # power grows with the runs: bisect for the fewest that are enough
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return max(high, 2)


def ok_runs(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The successful runs that have the metric."""
    return runs[(runs.status == "ok") & runs[metric].notna()] if "status" in runs else runs[runs[metric].notna()]


def samples(runs, metric: str, by, unit: str = "seed") -> dict:
    """Per group of successful runs (a tuple of the `by` values): its metric values indexed by the pairing unit. {} for
    no runs."""
    if runs is None:
        return {}
    return {(k if isinstance(k, tuple) else (k,)): g.set_index(unit)[metric]
            for k, g in ok_runs(runs, metric).groupby(list(by))}


def stats(runs: pd.DataFrame, metric: str = "final_acc", by=("batch_size", "norm")) -> pd.DataFrame:
    """Per group of successful runs: n, mean, std (sample, over seeds) and the 95% t confidence half-width."""
    out = ok_runs(runs, metric).groupby(list(by))[metric].agg(n="count", mean="mean", std="std").reset_index()
    out["ci95"] = [ci95(s, n) for n, s in zip(out.n, out["std"])]
    return out


TEST_COLUMNS = ["diff", "se", "df", "ci95", "p", "p_less", "test"]


def compare(s: pd.DataFrame, a: str, b: str, key: str = "batch_size", side: str = "norm", runs=None,
            metric: str = "final_acc", unit: str = "seed") -> pd.DataFrame:
    """Per value of `key` where both a and b were run: both sides' n/mean/std, diff = a - b with its 95% CI by
    cell_test (paired over `unit` when `runs` are given and both sides have the same units, Welch otherwise), p
    two-sided and one-sided (a < b), each also Holm-corrected across the values of `key`; beside them Welch's p of
    the same difference (welch, welch_less and their Holm), which a paired test can differ from."""
    x = samples(runs, metric, (key, side), unit)
    rows = []
    for value, cell in s.groupby(key):
        ra, rb = cell[cell[side] == a], cell[cell[side] == b]
        if ra.empty or rb.empty:
            continue
        ra, rb = ra.iloc[0], rb.iloc[0]
        welch = welch_rows(ra, rb)
        rows.append({key: value, "n_a": ra.n, "mean_a": ra["mean"], "std_a": ra["std"], "n_b": rb.n,
                     "mean_b": rb["mean"], "std_b": rb["std"],
                     **cell_test(ra, rb, x.get((value, a)), x.get((value, b))),
                     "welch": welch["p"], "welch_less": welch["p_less"]})
    out = pd.DataFrame(rows, columns=[key, "n_a", "mean_a", "std_a", "n_b", "mean_b", "std_b", *TEST_COLUMNS,
                                      "welch", "welch_less"])
    out["p_holm"], out["p_less_holm"] = holm(out.p), holm(out.p_less)
    out["welch_holm"], out["welch_less_holm"] = holm(out.welch), holm(out.welch_less)
    return out


def pairwise(s: pd.DataFrame, key: str, within=None, runs=None, metric: str = "final_acc",
             unit: str = "seed") -> pd.DataFrame:
    """Every pair of values of `key` (within each value of `within`, if given): diff = a - b by cell_test, the
    two-sided p Holm-corrected over all the pairs of the frame (one family), so that a pair picked afterwards (the
    best vs another) needs no further correction."""
    by = [within, key] if within else [key]
    x = samples(runs, metric, by, unit)
    rows = []
    for group, cells in (s.groupby(within) if within else [(None, s)]):
        pre = (group,) if within else ()
        cells = [r for _, r in cells.sort_values(key).iterrows()]
        for i, ra in enumerate(cells):
            for rb in cells[i + 1:]:
                rows.append({**({within: group} if within else {}), "a": ra[key], "b": rb[key],
                             "n_a": ra.n, "n_b": rb.n, "mean_a": ra["mean"], "mean_b": rb["mean"],
                             **cell_test(ra, rb, x.get(pre + (ra[key],)), x.get(pre + (rb[key],)))})
    out = pd.DataFrame(rows, columns=[*([within] if within else []), "a", "b", "n_a", "n_b", "mean_a", "mean_b",
                                      *TEST_COLUMNS])
    out["p_holm"] = holm(out.p)
    return out


def versus_best(s: pd.DataFrame, key: str, within=None, runs=None, metric: str = "final_acc",
                unit: str = "seed") -> pd.DataFrame:
    """Per value of `within` (or once): the value of `key` with the best mean, and every other value against it:
    diff = other - best with its 95% CI and two-sided p, Holm-corrected over all pairs (pairwise), since the best is
    picked on the same runs. `family` is the number of pairs corrected for."""
    pw = pairwise(s, key, within, runs, metric, unit)
    rows = []
    for group, cells in (s.groupby(within) if within else [(None, s)]):
        best = cells.loc[cells["mean"].idxmax(), key]
        pairs = pw[pw[within] == group] if within else pw
        for r in pairs[(pairs.a == best) | (pairs.b == best)].itertuples(index=False):
            sign = 1 if r.b == best else -1  # diff is a - b: other - best when b is the best
            rows.append({**({within: group} if within else {}), key: r.b if sign < 0 else r.a, "best": best,
                         "diff": sign * r.diff, "se": r.se, "df": r.df, "ci95": r.ci95, "p": r.p, "p_holm": r.p_holm,
                         "test": r.test})
    return pd.DataFrame(rows, columns=[*([within] if within else []), key, "best", "diff", "se", "df", "ci95", "p",
                                       "p_holm", "test"]).assign(family=len(pw))


def holm_detectable(se, df, family: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true difference, either way, that a two-sided test at Holm's first step (alpha / family) detects
    with the given power: what a difference 'not shown' could have been shown at best."""
    return detectable(se, df, alpha / family / 2, power)


def trend(s: pd.DataFrame, key: str = "batch_size") -> dict:
    """Least-squares slope of accuracy per doubling of `key`, fitted to every run (computed exactly from the per-group
    n, mean and std, so it also works on a published table): slope, its 95% CI half-width and two-sided p."""
    s = s[s.n > 0]
    x, n, m = np.log2(s[key].to_numpy(float)), s.n.to_numpy(float), s["mean"].to_numpy(float)
    sd = np.nan_to_num(s["std"].to_numpy(float))
    if len(s) < 2:
        return {"slope": np.nan, "ci95": np.nan, "p": np.nan}
    total, xbar = n.sum(), (n * x).sum() / n.sum()
    sxx = (n * (x - xbar) ** 2).sum()
    if sxx == 0:
        return {"slope": np.nan, "ci95": np.nan, "p": np.nan}
    slope = (n * (x - xbar) * (m - (n * m).sum() / total)).sum() / sxx
    fit = (n * m).sum() / total + slope * (x - xbar)
    rss = ((n - 1) * sd ** 2).sum() + (n * (m - fit) ** 2).sum()
    dof = total - 2
    if dof < 1:
        return {"slope": slope, "ci95": np.nan, "p": np.nan}
    se = np.sqrt(rss / dof / sxx)
    p = float(2 * st.t.sf(abs(slope / se), dof)) if se > 0 else float(slope == 0)
    return {"slope": float(slope), "ci95": float(st.t.ppf(Q95, dof) * se), "p": p}


def seed_slopes(runs: pd.DataFrame, x: str, value: str, unit: str = "seed") -> dict:
    """The least-squares slope of `value` per doubling of `x` fitted within each unit (the seed) alone, and the mean
    of those slopes tested over the units: one slope per seed, so the seed is the unit of replication (df = units with
    a slope − 1). t_result of the mean slope (p_less: slope < 0), with n runs and the number of units; no test with
    fewer than 2 units in which x varies."""
    r = runs[[unit, x, value]].dropna()
    slopes = [np.polyfit(np.log2(g[x].to_numpy(float)), g[value].to_numpy(float), 1)[0]
              for _, g in r.groupby(unit) if g[x].nunique() > 1]
    return {**paired_stats(slopes), "n": len(r), "units": len(slopes)}


def spread(s: pd.DataFrame, by: str = "norm") -> pd.DataFrame:
    """Two standard deviations that are easily conflated (the original reports only the second), per norm:
    run-to-run spread (std over seeds, averaged over batch sizes) and sensitivity to batch size (sample std across
    batch sizes of the per-batch-size means), with the range of the means and where it ends."""
    rows = []
    for value, per_bs in s.groupby(by):
        per_bs = per_bs.sort_values("batch_size")
        means = per_bs["mean"]
        rows.append({by: value, "run_to_run": per_bs["std"].mean(), "across_bs": means.std(ddof=1),
                     "range": means.max() - means.min(), "best_bs": per_bs.batch_size.iloc[means.argmax()],
                     "best": means.max(), "worst_bs": per_bs.batch_size.iloc[means.argmin()],
                     "worst": means.min(), "batch_sizes": len(per_bs)})
    return pd.DataFrame(rows)
