"""Statistics over seeds: confidence intervals, Welch's t-test, Holm's correction, trends and spreads of accuracy."""
import numpy as np
import pandas as pd
from scipy import stats as st

ALPHA = 0.05  # significance level; tests repeated over batch sizes are Holm-corrected across them
Q95 = 0.975  # t quantile of a two-sided 95% confidence interval


def ci95(std, n) -> float:
    """Half-width of the 95% t confidence interval of a mean of n values with sample std `std`; nan below 2 values."""
    return st.t.ppf(Q95, n - 1) * std / np.sqrt(n) if n > 1 else np.nan


def paired(d) -> tuple:
    """Mean of paired differences (nan left out) and its 95% CI half-width."""
    d = np.asarray(d, float)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        return (d.mean() if len(d) else np.nan), np.nan
    return d.mean(), ci95(d.std(ddof=1), len(d))


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
    """Welch's unequal-variance t-test from summary statistics: diff = m1 - m2, the 95% CI half-width of diff, the
    two-sided p and the one-sided p for m1 < m2. Tests are nan when a side has fewer than 2 runs."""
    diff = m1 - m2
    nan = {"diff": diff, "ci95": np.nan, "df": np.nan, "p": np.nan, "p_less": np.nan}
    if n1 < 2 or n2 < 2 or np.isnan(s1) or np.isnan(s2):
        return nan
    v1, v2 = s1 ** 2 / n1, s2 ** 2 / n2
    se = np.sqrt(v1 + v2)
    if se == 0:  # both samples constant: the difference is exact
        return {"diff": diff, "ci95": 0.0, "df": np.nan, "p": float(diff == 0),
                "p_less": 0.5 if diff == 0 else float(diff > 0)}
    df = (v1 + v2) ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1))
    t_value = diff / se
    return {"diff": diff, "ci95": float(st.t.ppf(Q95, df) * se), "df": float(df),
            "p": float(2 * st.t.sf(abs(t_value), df)), "p_less": float(st.t.cdf(t_value, df))}


def welch_rows(a, b) -> dict:
    """welch_stats of two stats() rows: a - b."""
    return welch_stats(a["mean"], a["std"], a.n, b["mean"], b["std"], b.n)


def welch(a, b) -> tuple:
    """Welch's t-test of two samples: (difference of means, two-sided p); p is nan with fewer than 2 per side."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    r = welch_stats(a.mean(), a.std(ddof=1) if len(a) > 1 else np.nan, len(a),
                    b.mean(), b.std(ddof=1) if len(b) > 1 else np.nan, len(b))
    return r["diff"], r["p"]


def stats(runs: pd.DataFrame, metric: str = "final_acc", by=("batch_size", "norm")) -> pd.DataFrame:
    """Per group of successful runs: n, mean, std (sample, over seeds) and the 95% t confidence half-width."""
    ok = runs[(runs.status == "ok") & runs[metric].notna()] if "status" in runs else runs[runs[metric].notna()]
    out = ok.groupby(list(by))[metric].agg(n="count", mean="mean", std="std").reset_index()
    out["ci95"] = [ci95(s, n) for n, s in zip(out.n, out["std"])]
    return out


def compare(s: pd.DataFrame, a: str, b: str, key: str = "batch_size", side: str = "norm") -> pd.DataFrame:
    """Per value of `key` where both a and b were run: both sides' n/mean/std, diff = a - b with its 95% CI,
    Welch p two-sided and one-sided (a < b), each also Holm-corrected across the values of `key`."""
    rows = []
    for value, cell in s.groupby(key):
        ra, rb = cell[cell[side] == a], cell[cell[side] == b]
        if ra.empty or rb.empty:
            continue
        ra, rb = ra.iloc[0], rb.iloc[0]
        rows.append({key: value, "n_a": ra.n, "mean_a": ra["mean"], "std_a": ra["std"], "n_b": rb.n,
                     "mean_b": rb["mean"], "std_b": rb["std"], **welch_rows(ra, rb)})
    out = pd.DataFrame(rows, columns=[key, "n_a", "mean_a", "std_a", "n_b", "mean_b", "std_b", "diff", "ci95", "df",
                                      "p", "p_less"])
    out["p_holm"], out["p_less_holm"] = holm(out.p), holm(out.p_less)
    return out


def trend(s: pd.DataFrame, key: str = "batch_size") -> dict:
    """Least-squares slope of accuracy per doubling of `key`, fitted to every run (computed exactly from the per-group
    n, mean and std, so it also works on a published table): slope, its 95% CI half-width and two-sided p."""
    s = s[s.n > 0]
    x, n, m = np.log2(s[key].to_numpy(float)), s.n.to_numpy(float), s["mean"].to_numpy(float)
    sd = np.nan_to_num(s["std"].to_numpy(float))
    total, xbar = n.sum(), (n * x).sum() / n.sum()
    sxx = (n * (x - xbar) ** 2).sum()
    if len(s) < 2 or sxx == 0:
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
