"""Statistics over seeds (CIs, Welch, Holm, trends, spreads), the seed's table and its expected outcomes' rules."""
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st

from .text import int_list

ALPHA = 0.05  # significance level; tests repeated over batch sizes are Holm-corrected across them
TOL = 3.0  # accuracy points: the seed's "within 3%" (outcome 3) and the band of "similar performance" (outcome 2)
Q95 = 0.975  # t quantile of a two-sided 95% confidence interval
PAIR = ("batch", "group")  # the seed's comparison: BatchNorm (a) vs GroupNorm (b)

# The seed's published results table: the best of 10 epochs (picked on the test set), mean ± std over 5 runs, all of
# CIFAR-10, Adam lr 1e-3, 4 blocks. The one typed-in result in this project; every use is labelled as the seed's.
SEED_RUNS = 5
SEED_TABLE = {  # batch size: ((BatchNorm mean, std), (GroupNorm mean, std)), accuracy %
    2: ((67.83, 2.21), (71.97, 1.91)),
    4: ((75.92, 1.07), (71.71, 1.15)),
    8: ((77.74, 0.76), (71.91, 0.53)),
    16: ((77.79, 0.54), (71.49, 0.54)),
    32: ((76.83, 1.01), (70.43, 1.26)),
    64: ((75.37, 1.23), (69.71, 0.55)),
    128: ((72.96, 0.85), (67.77, 0.87)),
}
SEED_PROTOCOL = {"epochs": 10, "train_size": 0, "test_size": 0, "num_blocks": 4, "width": 64, "activation": "relu",
                 "lr": 0.001, "steps": 0, "lr_scaling": "none", "groups": 4}  # the seed's code; size 0 = all
CLAIMS = ("BatchNorm only performs well above a certain threshold batch size N.",
          "GroupNorm maintains similar performance regardless of batch size.",
          "Even where BatchNorm performs well, its accuracy differs from GroupNorm's by at most 3%.")


# ---------------------------------------------------------------- statistics

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
    t = diff / se
    return {"diff": diff, "ci95": float(st.t.ppf(Q95, df) * se), "df": float(df),
            "p": float(2 * st.t.sf(abs(t), df)), "p_less": float(st.t.cdf(t, df))}


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


def compare(s: pd.DataFrame, a: str = PAIR[0], b: str = PAIR[1], key: str = "batch_size",
            side: str = "norm") -> pd.DataFrame:
    """Per value of `key` where both a and b were run: both sides' n/mean/std, diff = a - b with its 95% CI,
    Welch p two-sided and one-sided (a < b), each also Holm-corrected across the values of `key`."""
    rows = []
    for value, g in s.groupby(key):
        ra, rb = g[g[side] == a], g[g[side] == b]
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
    """The two standard deviations the seed conflates, per norm: run-to-run spread (std over seeds, averaged over
    batch sizes) and sensitivity to batch size (sample std across batch sizes of the per-batch-size means)."""
    rows = []
    for value, g in s.groupby(by):
        g = g.sort_values("batch_size")
        rows.append({by: value, "run_to_run": g["std"].mean(), "across_bs": g["mean"].std(ddof=1),
                     "range": g["mean"].max() - g["mean"].min(), "best_bs": g.batch_size.iloc[g["mean"].argmax()],
                     "best": g["mean"].max(), "worst_bs": g.batch_size.iloc[g["mean"].argmin()],
                     "worst": g["mean"].min(), "batch_sizes": len(g)})
    return pd.DataFrame(rows)


def seed_stats() -> pd.DataFrame:
    """The seed's published table as a stats() frame (n = its 5 runs)."""
    rows = [{"batch_size": bs, "norm": norm, "n": SEED_RUNS, "mean": m, "std": sd, "ci95": ci95(sd, SEED_RUNS)}
            for bs, cells in SEED_TABLE.items() for norm, (m, sd) in zip(PAIR, cells)]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the seed's expected outcomes

def rules(tol: float = TOL, alpha: float = ALPHA) -> tuple:
    """How each outcome is decided, in words (the same wording the report prints)."""
    return (f"BatchNorm *performs poorly* at a batch size when its mean accuracy is significantly below GroupNorm's "
            f"there (one-sided Welch t-test over seeds, Holm-corrected across batch sizes, p < {alpha:g}). N is the "
            f"smallest batch size from which on BatchNorm never performs poorly. The outcome holds when N exists and "
            f"BatchNorm performs poorly at some smaller batch size.",
            f"The range (max − min) of GroupNorm's per-batch-size mean accuracies is at most {tol:g} points. The "
            f"least-squares trend per doubling of the batch size is reported beside it.",
            f"At every batch size ≥ N (where rule 1 says BatchNorm performs well), |BatchNorm − GroupNorm| of the "
            f"mean accuracies is at most {tol:g} points (the seed's '%' are accuracy points).")


@dataclass
class Outcome:
    claim: str  # the seed's expectation, in its words
    rule: str  # how it is decided here
    verdict: str  # holds | does not hold | cannot be evaluated
    evidence: str  # the numbers behind the verdict


def threshold(cmp: pd.DataFrame, alpha: float = ALPHA) -> tuple:
    """Rule 1 on a compare() table: (N, batch sizes where BatchNorm performs poorly). N is None when BatchNorm
    performs poorly at the largest batch size; ValueError when a batch size has no p-value."""
    cmp = cmp.sort_values("batch_size")
    if cmp.empty or cmp.p_less_holm.isna().any():
        raise ValueError("threshold: every batch size needs >= 2 runs of each norm for a p-value")
    poor = (cmp.p_less_holm < alpha).to_numpy()
    n = None
    for bs, is_poor in zip(cmp.batch_size[::-1], poor[::-1]):
        if is_poor:
            break
        n = int(bs)
    return n, [int(b) for b in cmp.batch_size[poor]]


def outcomes(s: pd.DataFrame, tol: float = TOL, alpha: float = ALPHA) -> list:
    """The seed's three expected outcomes decided on a stats() frame of BatchNorm and GroupNorm (ours or the seed's)."""
    r1, r2, r3 = rules(tol, alpha)
    cmp = compare(s).sort_values("batch_size")
    gn = s[s.norm == "group"].sort_values("batch_size")
    few = cmp.empty or len(cmp) < 2 or cmp.p_less_holm.isna().any()
    out = []
    # 1. threshold
    if few:
        out.append(Outcome(CLAIMS[0], r1, "cannot be evaluated",
                           f"needs both norms at ≥ 2 batch sizes with ≥ 2 runs each; have batch sizes "
                           f"{int_list(cmp.batch_size) or 'none'} with n = {int_list(cmp.n_a) or '0'} (BatchNorm), "
                           f"{int_list(cmp.n_b) or '0'} (GroupNorm)"))
        n = None
    else:
        n, poor = threshold(cmp, alpha)
        at = lambda b: cmp[cmp.batch_size == b].iloc[0]  # noqa: E731
        poor_txt = "; ".join(f"batch size {b}: {at(b)['diff']:+.2f} points, Holm p = {at(b).p_less_holm:.3g}"
                             for b in poor)
        if not poor:
            low = cmp.loc[cmp.p_less_holm.idxmin()]
            verdict, ev = "does not hold", (
                f"BatchNorm is not significantly below GroupNorm at any batch size (smallest Holm-corrected one-sided "
                f"p = {low.p_less_holm:.3g}, at batch size {int(low.batch_size)}, difference {low['diff']:+.2f} "
                f"points): there is no batch size where it performs poorly, so no threshold")
        elif n is None:
            verdict, ev = "does not hold", (f"BatchNorm is significantly below GroupNorm at the largest batch size "
                                            f"tested ({poor_txt}), so it performs poorly everywhere above any N")
        else:
            rest = cmp[cmp.batch_size >= n]
            verdict, ev = "holds", (
                f"N = {n}. BatchNorm is significantly below GroupNorm at {poor_txt}; at batch sizes "
                f"{int_list(rest.batch_size)} it is not (BatchNorm − GroupNorm from {rest['diff'].min():+.2f} to "
                f"{rest['diff'].max():+.2f} points, "
                f"smallest Holm p {rest.p_less_holm.min():.3g})")
        out.append(Outcome(CLAIMS[0], r1, verdict, ev))
    # 2. GroupNorm's stability
    if len(gn) < 2:
        out.append(Outcome(CLAIMS[1], r2, "cannot be evaluated", "needs GroupNorm at ≥ 2 batch sizes"))
    else:
        lo, hi = gn.loc[gn["mean"].idxmin()], gn.loc[gn["mean"].idxmax()]
        rng, tr = hi["mean"] - lo["mean"], trend(gn)
        tr_txt = f"{tr['slope']:+.2f} points per doubling" + (
            "" if np.isnan(tr["ci95"]) else f" (95% CI ± {tr['ci95']:.2f}, p = {tr['p']:.3g})")
        bn = s[s.norm == "batch"]
        bn_txt = f"; BatchNorm's range for comparison: {bn['mean'].max() - bn['mean'].min():.2f}" if len(bn) > 1 else ""
        out.append(Outcome(CLAIMS[1], r2, "holds" if rng <= tol else "does not hold",
                           f"GroupNorm's means run from {lo['mean']:.2f}% (batch size {int(lo.batch_size)}) to "
                           f"{hi['mean']:.2f}% (batch size {int(hi.batch_size)}): range {rng:.2f} points "
                           f"{'≤' if rng <= tol else '>'} {tol:g}; trend {tr_txt}{bn_txt}"))
    # 3. BatchNorm's advantage where it performs well
    if few or n is None:
        why = ("rule 1 could not be evaluated" if few else
               "rule 1 finds no batch size range where BatchNorm performs well")
        out.append(Outcome(CLAIMS[2], r3, "cannot be evaluated", why))
    else:
        well = cmp[cmp.batch_size >= n]
        worst = well.loc[well["diff"].abs().idxmax()]
        ok = abs(worst["diff"]) <= tol
        out.append(Outcome(CLAIMS[2], r3, "holds" if ok else "does not hold",
                           f"at batch sizes {int_list(well.batch_size)}, BatchNorm − GroupNorm runs from "
                           f"{well['diff'].min():+.2f} to {well['diff'].max():+.2f} points; the largest |difference| "
                           f"is {abs(worst['diff']):.2f} {'≤' if ok else '>'} {tol:g} (batch size "
                           f"{int(worst.batch_size)}, 95% CI ± {worst.ci95:.2f})"))
    return out
