"""The original study this project reproduces: its published table, its protocol, its three expected outcomes, and
the rules that decide each outcome on a stats() frame (ours or the original's)."""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .stats import ALPHA, ci95, compare, trend
from .text import int_list

TOL = 3.0  # accuracy points: the original's "within 3%" (outcome 3) and the band of "similar performance" (outcome 2)
PAIR = ("batch", "group")  # the original's comparison: BatchNorm (a) vs GroupNorm (b)

# The original's published results table: the best of 10 epochs (picked on the test set), mean ± std over 5 runs, all
# of CIFAR-10, Adam lr 1e-3, 4 blocks. The one typed-in result in this project; every use is labelled as the
# original's.
ORIGINAL_RUNS = 5
ORIGINAL_TABLE = {  # batch size: ((BatchNorm mean, std), (GroupNorm mean, std)), accuracy %
    2: ((67.83, 2.21), (71.97, 1.91)),
    4: ((75.92, 1.07), (71.71, 1.15)),
    8: ((77.74, 0.76), (71.91, 0.53)),
    16: ((77.79, 0.54), (71.49, 0.54)),
    32: ((76.83, 1.01), (70.43, 1.26)),
    64: ((75.37, 1.23), (69.71, 0.55)),
    128: ((72.96, 0.85), (67.77, 0.87)),
}
ORIGINAL_PROTOCOL = {"epochs": 10, "train_size": 0, "test_size": 0, "num_blocks": 4, "width": 64,
                     "activation": "relu", "lr": 0.001, "steps": 0, "lr_scaling": "none",
                     "groups": 4}  # the original's code; size 0 = all
CLAIMS = ("BatchNorm only performs well above a certain threshold batch size N.",
          "GroupNorm maintains similar performance regardless of batch size.",
          "Even where BatchNorm performs well, its accuracy differs from GroupNorm's by at most 3%.")


def original_stats() -> pd.DataFrame:
    """The original's published table as a stats() frame (n = its 5 runs)."""
    rows = [{"batch_size": bs, "norm": norm, "n": ORIGINAL_RUNS, "mean": mean, "std": std,
             "ci95": ci95(std, ORIGINAL_RUNS)}
            for bs, cells in ORIGINAL_TABLE.items() for norm, (mean, std) in zip(PAIR, cells)]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the original's expected outcomes

def rules(tol: float = TOL, alpha: float = ALPHA) -> tuple:
    """How each outcome is decided, in words (the same wording the report prints)."""
    return (f"BatchNorm *performs poorly* at a batch size when its mean accuracy is significantly below GroupNorm's "
            f"there (one-sided Welch t-test over seeds, Holm-corrected across batch sizes, p < {alpha:g}). N is the "
            f"smallest batch size from which on BatchNorm never performs poorly. The outcome holds when N exists and "
            f"BatchNorm performs poorly at some smaller batch size.",
            f"The range (max − min) of GroupNorm's per-batch-size mean accuracies is at most {tol:g} points. The "
            f"least-squares trend per doubling of the batch size is reported beside it.",
            f"At every batch size ≥ N (where rule 1 says BatchNorm performs well), |BatchNorm − GroupNorm| of the "
            f"mean accuracies is at most {tol:g} points (the original's '%' are accuracy points).")


@dataclass
class Outcome:
    claim: str  # the original's expectation, in its words
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
    """The original's three expected outcomes decided on a stats() frame of BatchNorm and GroupNorm (ours or the
    original's)."""
    rule1, rule2, rule3 = rules(tol, alpha)
    cmp = compare(s, *PAIR).sort_values("batch_size")
    gn = s[s.norm == "group"].sort_values("batch_size")
    few = cmp.empty or len(cmp) < 2 or cmp.p_less_holm.isna().any()
    out = []
    # 1. threshold
    if few:
        out.append(Outcome(CLAIMS[0], rule1, "cannot be evaluated",
                           f"needs both norms at ≥ 2 batch sizes with ≥ 2 runs each; have batch sizes "
                           f"{int_list(cmp.batch_size) or 'none'} with n = {int_list(cmp.n_a) or '0'} (BatchNorm), "
                           f"{int_list(cmp.n_b) or '0'} (GroupNorm)"))
        n = None
    else:
        n, poor = threshold(cmp, alpha)
        by_bs = cmp.set_index("batch_size")
        poor_txt = "; ".join(f"batch size {b}: {by_bs.loc[b, 'diff']:+.2f} points, "
                             f"Holm p = {by_bs.loc[b, 'p_less_holm']:.3g}" for b in poor)
        if not poor:
            low = cmp.loc[cmp.p_less_holm.idxmin()]
            verdict, evidence = "does not hold", (
                f"BatchNorm is not significantly below GroupNorm at any batch size (smallest Holm-corrected one-sided "
                f"p = {low.p_less_holm:.3g}, at batch size {int(low.batch_size)}, difference {low['diff']:+.2f} "
                f"points): there is no batch size where it performs poorly, so no threshold")
        elif n is None:
            verdict, evidence = "does not hold", (f"BatchNorm is significantly below GroupNorm at the largest batch "
                                                  f"size tested ({poor_txt}), so it performs poorly everywhere above "
                                                  f"any N")
        else:
            rest = cmp[cmp.batch_size >= n]
            verdict, evidence = "holds", (
                f"N = {n}. BatchNorm is significantly below GroupNorm at {poor_txt}; at batch sizes "
                f"{int_list(rest.batch_size)} it is not (BatchNorm − GroupNorm from {rest['diff'].min():+.2f} to "
                f"{rest['diff'].max():+.2f} points, "
                f"smallest Holm p {rest.p_less_holm.min():.3g})")
        out.append(Outcome(CLAIMS[0], rule1, verdict, evidence))
    # 2. GroupNorm's stability
    if len(gn) < 2:
        out.append(Outcome(CLAIMS[1], rule2, "cannot be evaluated", "needs GroupNorm at ≥ 2 batch sizes"))
    else:
        lo, hi = gn.loc[gn["mean"].idxmin()], gn.loc[gn["mean"].idxmax()]
        gn_range, gn_trend = hi["mean"] - lo["mean"], trend(gn)
        trend_txt = f"{gn_trend['slope']:+.2f} points per doubling" + (
            "" if np.isnan(gn_trend["ci95"]) else f" (95% CI ± {gn_trend['ci95']:.2f}, p = {gn_trend['p']:.3g})")
        bn = s[s.norm == "batch"]
        bn_txt = f"; BatchNorm's range for comparison: {bn['mean'].max() - bn['mean'].min():.2f}" if len(bn) > 1 else ""
        out.append(Outcome(CLAIMS[1], rule2, "holds" if gn_range <= tol else "does not hold",
                           f"GroupNorm's means run from {lo['mean']:.2f}% (batch size {int(lo.batch_size)}) to "
                           f"{hi['mean']:.2f}% (batch size {int(hi.batch_size)}): range {gn_range:.2f} points "
                           f"{'≤' if gn_range <= tol else '>'} {tol:g}; trend {trend_txt}{bn_txt}"))
    # 3. BatchNorm's advantage where it performs well
    if few or n is None:
        why = ("rule 1 could not be evaluated" if few else
               "rule 1 finds no batch size range where BatchNorm performs well")
        out.append(Outcome(CLAIMS[2], rule3, "cannot be evaluated", why))
    else:
        well = cmp[cmp.batch_size >= n]
        worst = well.loc[well["diff"].abs().idxmax()]
        within = abs(worst["diff"]) <= tol
        out.append(Outcome(CLAIMS[2], rule3, "holds" if within else "does not hold",
                           f"at batch sizes {int_list(well.batch_size)}, BatchNorm − GroupNorm runs from "
                           f"{well['diff'].min():+.2f} to {well['diff'].max():+.2f} points; the largest |difference| "
                           f"is {abs(worst['diff']):.2f} {'≤' if within else '>'} {tol:g} (batch size "
                           f"{int(worst.batch_size)}, 95% CI ± {worst.ci95:.2f})"))
    return out
