"""The original study this project reproduces: its published table, its protocol (and how ours differs), its three
expected outcomes, and the rules that decide each outcome on a stats() frame (ours or the original's)."""
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import TRAIN_IMAGES
from .deciding import Decision, band_decision, threshold_decision
from .load import metric_text
from .stats import (ALPHA, POWER, bands, cell_test, ci95, compare, detectable, holm, noninferior, pairwise,
                    paired_stats, runs_needed, samples, stats, trend, versus_best)
from .text import int_list, norm_label, param_text, pval, sizes_text

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
ORIGINAL_PROTOCOL = {"epochs": 10, "train_size": 0, "test_size": 0, "val_size": 0, "num_blocks": 4, "width": 64,
                     "activation": "relu", "lr": 0.001, "steps": 0, "lr_scaling": "none", "groups": 4,
                     "precision": "fp32"}  # the original's code; size 0 = all
ORIGINAL_DATA = "torchvision CIFAR10"  # the original's data: CIFAR-10's python pickles, as data.py names a download
ORIGINAL_METRIC = "best_acc"  # the best of its epochs' test accuracies, the epoch picked on the test set
CLAIMS = ("BatchNorm only performs well above a certain threshold batch size N.",
          "GroupNorm maintains similar performance regardless of batch size.",
          "Even where BatchNorm performs well, its accuracy differs from GroupNorm's by at most 3%.")


def original_stats() -> pd.DataFrame:
    """The original's published table as a stats() frame (n = its 5 runs)."""
    rows = [{"batch_size": bs, "norm": norm, "n": ORIGINAL_RUNS, "mean": mean, "std": std,
             "ci95": ci95(std, ORIGINAL_RUNS)}
            for bs, cells in ORIGINAL_TABLE.items() for norm, (mean, std) in zip(PAIR, cells)]
    return pd.DataFrame(rows)


def original_steps() -> dict:
    """Optimizer steps per run of the original at each batch size: its epochs over all training images, the last
    batch of an epoch partial (a DataLoader without drop_last)."""
    return {bs: [ORIGINAL_PROTOCOL["epochs"] * math.ceil(TRAIN_IMAGES / bs)] for bs in ORIGINAL_TABLE}


# ---------------------------------------------------------------- our protocol against the original's

def data_source_text(source: str) -> str:
    """How a data source differs from the original's (CIFAR-10's python pickles); '' when it is those."""
    name = Path(source).name
    if source == ORIGINAL_DATA or "cifar-10-batches-py" in source:
        return ""
    if source == "synthetic":
        return "synthetic images, not CIFAR-10"
    if "jpeg" in name.lower() or "jpg" in name.lower():
        return (f"an image-folder JPEG copy of CIFAR-10 (`{name}`), not the original's python pickles: JPEG "
                f"compression changes the pixels; what that costs in accuracy is measured by the data-copy control "
                f"(params/cpu_pixels_*.yaml) on a subset whose original pixels are known")
    return f"`{name}`, not known to be the original's python pickles of CIFAR-10"


def protocol_differences(runs: pd.DataFrame, metric: str, k: int) -> list:
    """Every respect in which these runs' protocol differs from the original's: data source, each parameter of
    ORIGINAL_PROTOCOL (precision, subset sizes, validation split, epochs, ...) and the metric; [] when none does."""
    out = []
    for source in sorted(runs.prov_data_source.dropna().unique()) if "prov_data_source" in runs else ["unrecorded"]:
        text = data_source_text(str(source))
        if text:
            out.append(f"data: {text}")
    for key, theirs in ORIGINAL_PROTOCOL.items():
        ours = sorted(runs[key].unique().tolist(), key=str)
        if ours != [theirs]:
            what = {"val_size": "validation split", "train_size": "training images",
                    "test_size": "test images"}.get(key, key)
            out.append(f"{what} {', '.join(param_text(key, v) for v in ours)} (original: "
                       f"{'none' if key == 'val_size' else param_text(key, theirs)})")
    if metric != ORIGINAL_METRIC:
        out.append(f"metric {metric}, {metric_text(metric, k)} (original: the best epoch's test accuracy, the epoch "
                   f"picked on the test set, which is optimistic; our `{ORIGINAL_METRIC}` columns make the same "
                   f"selection)")
    return out


# ---------------------------------------------------------------- the original's expected outcomes

def rules(tol: float = TOL, alpha: float = ALPHA) -> tuple:
    """How each outcome is decided, in words (the same wording the report prints). Four verdicts: holds, does not hold
    (evidence against), not shown (no evidence either way at this power) and cannot be evaluated (cells missing, or
    one run per cell: one seed describes and never decides)."""
    return (f"BatchNorm *performs poorly* at a batch size when its mean accuracy is significantly below GroupNorm's "
            f"there: a one-sided test (the expectation has a direction), Holm-corrected across the batch sizes both "
            f"norms have, p < {alpha:g}. The test is a paired t-test on the per-seed differences where every seed "
            f"has both norms at that batch size (the two runs share the initialisation seed and the data order), "
            f"Welch's t-test otherwise. N is the smallest batch size from which on BatchNorm never performs poorly. "
            f"The outcome holds when N exists and BatchNorm performs poorly at some smaller batch size. It does not "
            f"hold when BatchNorm performs poorly at the largest batch size (no N), or when it is shown to be no more "
            f"than {tol:g} points below GroupNorm at every batch size (one-sided tests, each at {alpha:g}). Otherwise "
            f"it is not shown, and the report gives the smallest deficit these runs could detect and the seeds the "
            f"original's effect would need. Every (norm, batch size) cell needs ≥ 2 runs. Beside it, the other "
            f"natural definition: *poorly* = significantly below BatchNorm's own best batch size (two-sided tests "
            f"of every pair of batch sizes, one Holm family, so that picking the best on the same runs needs no "
            f"further correction). The tables of the batch-size section give two-sided p (is there a difference "
            f"in either direction); this rule uses the one-sided p (is BatchNorm below).",
            f"GroupNorm's accuracy is compared between every pair of batch sizes, paired or Welch as in rule 1. It "
            f"holds when every pairwise difference is shown to lie within ±{tol:g} points (TOST: the "
            f"{1 - 2 * alpha:.0%} CI inside ±{tol:g}; a claim about all of them together needs no correction), does "
            f"not hold when some pair's simultaneous CI (Bonferroni over the pairs) lies entirely beyond ±{tol:g}, "
            f"and is not shown otherwise. It needs GroupNorm at every batch size tested with ≥ 2 runs (a missing "
            f"one could only add pairs: 'does not hold' stands without it). The range of the means and the "
            f"least-squares trend per doubling of the batch size are reported beside it.",
            f"At every batch size ≥ N (where rule 1 finds BatchNorm not performing poorly; with no batch size where "
            f"it performs poorly, N is the smallest tested), BatchNorm − GroupNorm is compared with ±{tol:g} points "
            f"(the original's '%' are accuracy points), paired or Welch as in rule 1. It holds when every "
            f"{1 - 2 * alpha:.0%} CI lies inside ±{tol:g} (TOST at {alpha:g}; one claim about all of them, no "
            f"correction), does not hold when some batch size's simultaneous CI (Bonferroni over those batch sizes) "
            f"lies entirely beyond ±{tol:g}, and is not shown otherwise. The printed intervals are the ones decided "
            f"on. Beside it, the difference averaged over those batch sizes per seed, with its {1 - 2 * alpha:.0%} "
            f"CI.")


@dataclass
class Outcome:
    claim: str  # the original's expectation, in its words
    rule: str  # how it is decided here
    verdict: str  # holds | does not hold | not shown | cannot be evaluated
    evidence: str  # the numbers behind the verdict, ending with the optimizer steps the batch sizes took
    short: str  # the key numbers in one line, for the report's key findings
    alt: str = ""  # outcome 1 only: the verdict under the other definition of 'performs poorly'
    decision: Decision = None  # the interval bound or p-value that decided the verdict; None when none was tested


def threshold_of(sizes, poor) -> tuple:
    """(N, sorted poor batch sizes): N is the smallest batch size from which on none is poor, None when the largest
    is poor."""
    n = None
    for bs in sorted(sizes, reverse=True):
        if bs in poor:
            break
        n = int(bs)
    return n, sorted(int(b) for b in poor)


def threshold(cmp: pd.DataFrame, alpha: float = ALPHA) -> tuple:
    """Rule 1 on a compare() table: (N, batch sizes where BatchNorm performs poorly). N is None when BatchNorm
    performs poorly at the largest batch size; ValueError when a batch size has no p-value."""
    if cmp.empty or cmp.p_less_holm.isna().any():
        raise ValueError("threshold: every batch size needs >= 2 runs of each norm for a p-value")
    return threshold_of(cmp.batch_size, set(cmp.batch_size[cmp.p_less_holm < alpha]))


def cells_text(cells, none: str = "") -> str:
    """missing_cells() in words, e.g. '(GroupNorm, 128): no successful run'; `none` when there are none."""
    return "; ".join(f"({norm_label(norm)}, {int(bs)}): " + ("no successful run" if n == 0 else "1 run")
                     for norm, bs, n in cells) or none


def missing_cells(s: pd.DataFrame, sizes, norms=PAIR, min_n: int = 2) -> list:
    """(norm, batch size, n) of every cell of norms x sizes with fewer than min_n successful runs."""
    n = s.set_index(["norm", "batch_size"]).n
    return [(norm, int(bs), int(n.get((norm, bs), 0))) for bs in sorted(sizes) for norm in norms
            if n.get((norm, bs), 0) < min_n]


def steps_note(steps: dict, short: bool = False) -> str:
    """The optimizer steps per run at each batch size ({batch size: [steps]}), as every verdict states them: in
    full once per section, `short` in each verdict."""
    per_bs = {int(b): sorted({int(v) for v in vs if v == v}) for b, vs in steps.items()}
    per_bs = {b: vs for b, vs in per_bs.items() if vs}
    values = {v for vs in per_bs.values() for v in vs}
    if not values:
        return "The records hold no step counts."
    if len(values) == 1:
        return f"Every batch size ran {values.pop():,} optimizer steps per run (equal steps)."
    most, fewest = max(per_bs, key=lambda b: max(per_bs[b])), min(per_bs, key=lambda b: min(per_bs[b]))
    ratio = max(per_bs[most]) / min(per_bs[fewest])
    if short:
        return (f"Caveat: unequal steps ({max(per_bs[most]):,} per run at batch size {most}, "
                f"{min(per_bs[fewest]):,} at {fewest}: {ratio:.1f}x).")
    return ("Unequal optimizer steps per run (batch size: steps) — " + "; ".join(
        f"{b}: {' / '.join(f'{v:,}' for v in vs)}" for b, vs in sorted(per_bs.items()))
            + f". Batch size {most} took {ratio:.1f}x the steps of batch size "
              f"{fewest}: a difference across batch sizes is also a difference in the number of updates.")


def tests_text(cmp: pd.DataFrame) -> str:
    """Which test each batch size got, in a few words."""
    kinds = cmp.groupby("test").batch_size.apply(list)
    if len(kinds) == 1:
        return f"{kinds.index[0]} t-tests" + (" over seeds" if kinds.index[0] == "paired" else "")
    return "; ".join(f"{test} at {sizes_text(sizes)}" for test, sizes in kinds.items())


def _below(rows: pd.DataFrame, p_col: str) -> str:
    return "; ".join(f"batch size {int(r.batch_size)}: {r.diff:+.2f} points, Holm p = {pval(getattr(r, p_col))}"
                     for r in rows.itertuples())


def _own_best(s: pd.DataFrame, runs, metric: str, sizes, alpha: float) -> tuple:
    """Rule 1 by the second definition, below BatchNorm's own best batch size: (verdict, the definition, evidence,
    short)."""
    bn = s[s.norm == PAIR[0]]
    gaps = missing_cells(s, sizes, norms=PAIR[:1])
    if gaps or len(bn) < 2:
        return "cannot be evaluated", "below BatchNorm's own best batch size", (
            "needs BatchNorm with ≥ 2 runs at every batch size tested (≥ 2 of them); missing "
            + cells_text(gaps, "a second batch size")), "missing cells"
    vb = versus_best(bn, "batch_size", runs=None if runs is None else runs[runs.norm == PAIR[0]], metric=metric)
    poor = vb[(vb["diff"] < 0) & (vb.p_holm < alpha)]
    n, _ = threshold_of(bn.batch_size, set(poor.batch_size))
    best = int(vb.best.iloc[0])
    head = (f"below BatchNorm's own best batch size, {best} at {bn.set_index('batch_size')['mean'][best]:.2f}%; "
            f"two-sided, Holm over all {int(vb.family.iloc[0])} pairs of batch sizes")
    if poor.empty:
        low = vb.loc[vb.p_holm.idxmin()]
        return "not shown", head, (f"no batch size is significantly below it (closest: batch size "
                                   f"{int(low.batch_size)}, {low['diff']:+.2f} points, Holm p = "
                                   f"{pval(low.p_holm)}): no threshold is shown"), (
            f"no batch size significantly below its best, {best}")
    below = f"significantly below it at {_below(poor, 'p_holm')}"
    if n is None:
        return "does not hold", head, below + "; the largest batch size is among them, so there is no threshold", (
            f"below its best, {best}, at {int_list(poor.batch_size)}, the largest included")
    return "holds", head, f"N = {n}; {below}", f"N = {n}, below its best, {best}, at {int_list(poor.batch_size)}"


def verb(verdict: str) -> str:
    """A verdict after 'it': 'holds', 'does not hold', 'is not shown', 'cannot be evaluated'."""
    return "is not shown" if verdict == "not shown" else verdict


def power(cmp: pd.DataFrame, alpha: float) -> dict:
    """What the runs could detect at the smallest batch size, where the original's BatchNorm deficit lies: the
    smallest deficit that rule 1's first Holm step (alpha / m) detects with 80% power (`mde`), and the original's own
    difference there (`effect`, or None where BatchNorm is not below) with the runs per cell it would need (`need`,
    None beyond 1,000) at this run-to-run spread."""
    r = cmp.sort_values("batch_size").iloc[0]
    level, runs = alpha / len(cmp), int(min(r.n_a, r.n_b))
    out = {"batch_size": int(r.batch_size), "level": level, "m": len(cmp), "runs": runs, "row": r,
           "mde": detectable(r.se, r.df, level), "effect": None, "need": None}
    theirs = ORIGINAL_TABLE.get(int(r.batch_size))
    if theirs is not None and theirs[0][0] < theirs[1][0]:
        out["effect"] = theirs[0][0] - theirs[1][0]
        out["need"] = runs_needed(out["effect"], r.se, runs, r.test == "paired", level)
    return out


def power_text(cmp: pd.DataFrame, alpha: float) -> str:
    """power() in a sentence or two."""
    w = power(cmp, alpha)
    r = w["row"]
    text = (f"Power: with {w['runs']} runs per cell, a one-sided test at {w['level']:.3g} (rule 1's first Holm step, "
            f"{alpha:g} / {w['m']}) detects a BatchNorm deficit of {w['mde']:.2f} points at batch size "
            f"{w['batch_size']} with {POWER:.0%} power (measured there: {r['diff']:+.2f}, 95% CI "
            f"[{r['diff'] - r.ci95:+.2f}, {r['diff'] + r.ci95:+.2f}])")
    if w["effect"] is None:
        return text + "."
    inside = r["diff"] - r.ci95 <= w["effect"] <= r["diff"] + r.ci95
    return (text + f"; the original's {w['effect']:+.2f} there is {'inside' if inside else 'outside'} that CI, and "
            f"detecting it would take " + (f"about {w['need']} seeds per cell" if w["need"] else "more than 1,000 "
                                           "seeds per cell") + " at this run-to-run spread.")


def _nowhere_poor(cmp: pd.DataFrame, sizes: list, tests: str, tol: float, alpha: float) -> tuple:
    """Rule 1 where BatchNorm performs poorly at no batch size: does not hold when it is shown within tol of
    GroupNorm (or above) at every batch size, else not shown; (verdict, evidence, short)."""
    low = cmp.loc[cmp.p_less_holm.idxmin()]
    closest = (f"batch size {int(low.batch_size)}, {low['diff']:+.2f} points, Holm-corrected one-sided p = "
               f"{pval(low.p_less_holm)}")
    margin = pd.Series([noninferior(r.diff, r.se, r.df, tol) for r in cmp.itertuples()], index=cmp.index)
    head = f"BatchNorm is not significantly below GroupNorm at any of batch sizes {int_list(sizes)} ({tests}; " \
           f"closest: {closest})"
    if (margin < alpha).all():
        return "does not hold", (
            f"{head}, and it is shown to be no more than {tol:g} points below GroupNorm at every one (one-sided "
            f"p ≤ {pval(margin.max())}): it performs poorly nowhere, so there is no threshold"), (
            f"BatchNorm is shown within {tol:g} points of GroupNorm or above it at every batch size")
    open_at = cmp.batch_size[~(margin < alpha)]
    return "not shown", (
        f"{head}; nor is it shown to be within {tol:g} points of GroupNorm or above it at "
        f"{sizes_text(open_at)}: neither a threshold nor its absence is shown. {power_text(cmp, alpha)}"), (
        f"BatchNorm is not significantly below GroupNorm at any batch size (closest: {closest}), nor shown within "
        f"{tol:g} points everywhere")


def _threshold_verdict(cmp: pd.DataFrame, sizes: list, gaps: list, tol: float, alpha: float) -> tuple:
    """Rule 1 (below GroupNorm) on a compare() table of the batch sizes both norms have: (verdict, evidence, short,
    N or None)."""
    if gaps or len(cmp) < 2:
        missing = cells_text(gaps, "a second batch size")
        below = cmp[cmp.p_less_holm < alpha]
        left_out = [b for b in sizes if b not in set(cmp.batch_size)]
        return "cannot be evaluated", (
            f"needs both norms with ≥ 2 runs at every batch size tested ({int_list(sizes)}); missing {missing}. On the "
            f"batch sizes both norms have ({int_list(cmp.batch_size) or 'none'}; left out: "
            f"{int_list(left_out) or 'none'}), BatchNorm is "
            + (f"significantly below GroupNorm at {_below(below, 'p_less_holm')}" if len(below) else
               "not significantly below GroupNorm at any of them")), f"missing {missing}", None
    n, poor = threshold(cmp, alpha)
    tests, below = tests_text(cmp), cmp[cmp.batch_size.isin(poor)]
    if not poor:
        return (*_nowhere_poor(cmp, sizes, tests, tol, alpha), n)
    if n is None:
        return "does not hold", (
            f"BatchNorm is significantly below GroupNorm at the largest batch size tested "
            f"({_below(below, 'p_less_holm')}; {tests}), so there is no N above which it performs well"), (
            f"BatchNorm is below GroupNorm up to the largest batch size ({sizes[-1]})"), None
    rest = cmp[cmp.batch_size >= n]
    closest = rest.loc[rest.p_less_holm.idxmin()]
    return "holds", (
        f"N = {n}. BatchNorm is significantly below GroupNorm at {_below(below, 'p_less_holm')}; from batch size {n} "
        f"on it is not (BatchNorm − GroupNorm from {rest['diff'].min():+.2f} to {rest['diff'].max():+.2f} points"
        + (f"; closest: batch size {int(closest.batch_size)}, Holm p = {pval(closest.p_less_holm)}"
           if (rest["diff"] < 0).any() else "") + f"; {tests})"), (
        f"N = {n}: BatchNorm is below GroupNorm at {sizes_text(poor)} (by "
        + ", ".join(f"{-d:.2f}" for d in below["diff"]) + " points)"), n


def band_text(r) -> str:
    """One difference with the intervals that decide it: 'batch size 8: +5.00, 90% CI [..], simultaneous 98% CI
    [..] → beyond'."""
    return (f"{r.diff:+.2f}, {r.level:.0%} CI [{r.lo:+.2f}, {r.hi:+.2f}], simultaneous {r.slevel:.1%} CI "
            f"[{r.slo:+.2f}, {r.shi:+.2f}] → {r.label}")


def band_verdict(judged: pd.DataFrame, complete: bool) -> str:
    """holds when every difference is shown within, does not hold when one is shown beyond (stands with cells
    missing), not shown otherwise; cannot be evaluated when cells are missing and nothing is shown beyond."""
    if (judged.label == "beyond").any():
        return "does not hold"
    if not complete:
        return "cannot be evaluated"
    return "holds" if (judged.label == "within").all() else "not shown"


def width_text(judged: pd.DataFrame, tol: float) -> str:
    """Why an equivalence is not shown, in the width of its intervals."""
    half = ((judged.hi - judged.lo) / 2).max()
    where = (f": 'within ±{tol:g}' can be shown only where a difference is smaller than {tol - half:.2f} in size"
             if half < tol else f", wider than the ±{tol:g} band itself: no difference can be shown within it")
    return (f" The widest {judged.level.iloc[0]:.0%} CI is ±{half:.2f} points{where}; halving the intervals takes "
            f"about four times the seeds.")


def _stability_verdict(s: pd.DataFrame, sizes: list, tol: float, alpha: float, runs=None,
                       metric: str = "final_acc") -> tuple:
    """Rule 2 by equivalence of every pair of GroupNorm's batch sizes: (verdict, evidence, short)."""
    gn, bn = s[s.norm == PAIR[1]].sort_values("batch_size"), s[s.norm == PAIR[0]]
    absent = cells_text(missing_cells(s, sizes, norms=PAIR[1:]))
    tested = gn[gn.n >= 2]
    if len(gn) < 2:
        return ("cannot be evaluated", f"needs GroupNorm at ≥ 2 batch sizes; missing {absent or 'a second one'}",
                "GroupNorm at fewer than 2 batch sizes")
    lo, hi = gn.loc[gn["mean"].idxmin()], gn.loc[gn["mean"].idxmax()]
    gn_range, gn_trend = hi["mean"] - lo["mean"], trend(gn)
    trend_txt = f"{gn_trend['slope']:+.2f} points per doubling" + (
        "" if np.isnan(gn_trend["ci95"]) else f" (95% CI ± {gn_trend['ci95']:.2f}, p = {pval(gn_trend['p'])})")
    bn_txt = f"; BatchNorm's range for comparison: {bn['mean'].max() - bn['mean'].min():.2f}" if len(bn) > 1 else ""
    described = (f"GroupNorm's means run from {lo['mean']:.2f}% (batch size {int(lo.batch_size)}) to "
                 f"{hi['mean']:.2f}% (batch size {int(hi.batch_size)}): range {gn_range:.2f} points; trend {trend_txt}"
                 f"{bn_txt}")
    short = f"GroupNorm's means span {gn_range:.2f} points ({lo['mean']:.2f} to {hi['mean']:.2f})"
    if len(tested) < 2:
        return ("cannot be evaluated", f"{described}. No test: fewer than 2 of its batch sizes have ≥ 2 runs (one "
                f"run per cell describes, never decides); missing {absent}", f"{short}; "
                f"one run per cell")
    gn_runs = None if runs is None else runs[runs.norm == PAIR[1]]
    pw = pairwise(tested, "batch_size", runs=gn_runs, metric=metric)
    judged = pw.join(bands(pw, tol, alpha))
    verdict = band_verdict(judged, not absent)
    widest = next(judged.loc[[judged["diff"].abs().idxmax()]].itertuples())
    shown = judged[judged.label == "beyond"] if verdict == "does not hold" else judged.iloc[:0]
    evidence = (f"{described}. Of the {len(judged)} pairs of batch sizes ({' and '.join(sorted(set(judged.test)))} t-tests), "
                f"{int((judged.label == 'within').sum())} are shown within ±{tol:g}; the largest difference, batch "
                f"size {int(widest.a)} − {int(widest.b)}: {band_text(widest)}")
    shown = shown[shown.index != widest.Index]  # the largest difference is written above
    if len(shown):
        evidence += f"; the other{'s' if len(shown) > 1 else ''} shown beyond ±{tol:g}: " + "; ".join(
            f"{int(r.a)} − {int(r.b)}: {band_text(r)}" for r in shown.itertuples())
    if absent:
        evidence += f". Missing {absent}" + (", which could only add pairs" if verdict == "does not hold" else "")
    elif verdict == "not shown":
        evidence += "." + width_text(judged, tol)
    decision = band_decision(judged, verdict, tol, lambda r: f"GroupNorm batch size {int(r.a)} − {int(r.b)}")
    return verdict, evidence, short + (f"; missing {absent}" if absent else ""), decision


def pooled(runs, n: int, metric: str) -> pd.DataFrame:
    """BatchNorm − GroupNorm averaged per seed over the batch sizes >= n, over the seeds that have both norms at all
    of them: one row (batch_size 0 marks it) with diff, se, df, test and the batch sizes; empty without 2 such seeds."""
    x = samples(None if runs is None else runs[runs.batch_size >= n], metric, ("norm", "batch_size"))
    sizes = sorted({b for _, b in x})
    per = [x.get((PAIR[0], b), pd.Series(dtype=float)) - x.get((PAIR[1], b), pd.Series(dtype=float)) for b in sizes]
    d = pd.concat(per, axis=1).dropna() if per else pd.DataFrame()
    if len(d) < 2:
        return pd.DataFrame()
    return pd.DataFrame([{**paired_stats(d.mean(axis=1)), "batch_size": 0, "test": "paired", "seeds": len(d),
                          "sizes": int_list(sizes)}])


def _within_verdict(cmp: pd.DataFrame, n, gaps: list, tol: float, alpha: float, nowhere_poor: bool = False,
                    runs=None, metric: str = "final_acc") -> tuple:
    """Rule 3, on the printed intervals at the batch sizes >= N: (verdict, evidence, short)."""
    if gaps or len(cmp) < 2:
        why = f"rule 1 cannot be evaluated (missing {cells_text(gaps, 'batch sizes')})"
        return "cannot be evaluated", why, why
    if n is None:
        why = "rule 1 finds no batch size range where BatchNorm performs well"
        return "cannot be evaluated", why, why
    well = cmp[cmp.batch_size >= n]
    mean = pooled(runs, n, metric)  # decided with the batch sizes, as one more member of the family
    judged = pd.concat([well, mean], ignore_index=True) if len(mean) else well.reset_index(drop=True)
    judged = judged.join(bands(judged, tol, alpha))
    verdict = band_verdict(judged, True)
    decision = band_decision(judged, verdict, tol, lambda r: f"BatchNorm − GroupNorm at batch size {int(r.batch_size)}"
                             if r.batch_size else f"BatchNorm − GroupNorm averaged over batch sizes {r.sizes}")
    per_bs = "; ".join(f"batch size {int(r.batch_size)}: {band_text(r)}" for r in judged.itertuples() if r.batch_size)
    where = (f"at every batch size (rule 1 finds none where BatchNorm performs poorly, so N is the smallest tested, "
             f"{n})" if nowhere_poor else f"at the batch sizes ≥ N = {n}")
    evidence = f"BatchNorm − GroupNorm {where} ({tests_text(well)}): {per_bs}"
    evidence += "".join(f"; averaged per seed over batch sizes {r.sizes} ({int(r.seeds)} seeds with every cell): "
                        f"{band_text(r)}" for r in judged.itertuples() if not r.batch_size) + "."
    judged = judged[judged.batch_size > 0]
    if verdict == "not shown":
        evidence += width_text(judged, tol)
    return verdict, evidence.rstrip("."), (
        f"at batch sizes ≥ {n}, BatchNorm − GroupNorm is " + ", ".join(
            f"{r.diff:+.2f} [{r.slo:+.2f}, {r.shi:+.2f}] at {int(r.batch_size)}" for r in judged.itertuples())
        + f" (simultaneous {judged.slevel.iloc[0]:.1%} CIs, tolerance ±{tol:g})"), decision


def outcomes(s: pd.DataFrame, tol: float = TOL, alpha: float = ALPHA, runs=None, metric: str = "final_acc",
             batch_sizes=(), steps=None) -> list:
    """The original's three expected outcomes decided on a stats() frame of BatchNorm and GroupNorm (ours or the
    original's). `runs` (per-seed records) allow paired tests; `batch_sizes` are those tested (a cell missing from
    s is named, and a verdict that needs it cannot be evaluated); `steps` ({batch size: [steps per run]}) are stated
    in every verdict."""
    s = s[s.norm.isin(PAIR)]
    sizes = sorted({int(b) for b in batch_sizes} | {int(b) for b in s.batch_size})
    gaps = missing_cells(s, sizes)
    cmp = compare(s, *PAIR, runs=runs, metric=metric).sort_values("batch_size")
    cmp = cmp[cmp.p_less.notna()]  # the batch sizes where both norms have >= 2 runs
    *first, n = _threshold_verdict(cmp, sizes, gaps, tol, alpha)
    alt, alt_rule, alt_txt, alt_short = _own_best(s, runs, metric, sizes, alpha)
    first[1] = first[1].rstrip(".") + f". By the other definition ({alt_rule}): **{alt}** — {alt_txt}"
    first[2] += f"; against its own best batch size it {verb(alt)} ({alt_short})"
    nowhere = n is not None and not gaps and len(cmp) > 1 and not (cmp.p_less_holm < alpha).any()
    decided = [first, _stability_verdict(s, sizes, tol, alpha, runs, metric),
               _within_verdict(cmp, n, gaps, tol, alpha, nowhere, runs, metric)]
    steps_txt = " " + steps_note(steps, short=True) if steps else ""
    decided = [tuple(d[:3]) + (d[3] if len(d) > 3 else None,) for d in decided]  # early returns name no decision
    decided[0] = (*decided[0][:3], threshold_decision(cmp, threshold(cmp, alpha)[1], alpha)
                   if not gaps and len(cmp) > 1 else None)
    return [Outcome(claim, rule, verdict, evidence.rstrip(".") + "." + steps_txt, short, alt if i == 0 else "", how)
            for i, (claim, rule, (verdict, evidence, short, how)) in
            enumerate(zip(CLAIMS, rules(tol, alpha), decided))]


# ---------------------------------------------------------------- the original's depth results

# The original's second result, typed in once: test accuracy and "gradient magnitude" from its fewest to its most
# blocks, per activation. It gives neither the block counts, nor the norm, batch size or epoch, nor what the gradient
# magnitude measures; the report says which measure it uses.
ORIGINAL_DEPTH = {"relu": {"acc": (54.99, 80.07), "grad": (0.0124, 0.0039)},
                  "sigmoid": {"acc": (44.59, 32.97), "grad": (0.0090, 0.0024)}}
DEPTH_QUANTITIES = {"acc": "test accuracy", "grad": "gradient magnitude"}


def depth_claims() -> list:
    """(activation, quantity, direction: +1 rises / -1 falls with depth) as the original's numbers have them."""
    return [(act, q, 1 if hi > lo else -1) for act, res in ORIGINAL_DEPTH.items() for q, (lo, hi) in res.items()]


def depth_outcomes(runs: pd.DataFrame, metric: str, alpha: float = ALPHA) -> pd.DataFrame:
    """The original's four depth results decided on runs (columns activation, num_blocks, seed, the metric and `grad`,
    a run's gradient magnitude) of one norm: most vs fewest blocks, paired over seeds where both have the same seeds
    (Welch otherwise), on accuracy points and on log gradient magnitude; one-sided in the original's direction and
    against it, each Holm-corrected over the claims tested. holds: shown in its direction; does not hold: shown
    against it; not shown; cannot be evaluated (fewer than 2 runs at either end, or one depth)."""
    rows = []
    for act, q, sign in depth_claims():
        per = runs[runs.activation == act].assign(value=lambda r: r[metric] if q == "acc" else np.log(r.grad))
        row = {"activation": act, "quantity": q, "direction": sign, "p_claim": np.nan, "p_against": np.nan}
        if per.num_blocks.nunique() < 2:
            rows.append(row)
            continue
        s = stats(per, "value", ("num_blocks",)).sort_values("num_blocks")
        lo, hi = s.iloc[0], s.iloc[-1]
        x = samples(per, "value", ("num_blocks",))
        t = cell_test(hi, lo, x.get((hi.num_blocks,)), x.get((lo.num_blocks,)))
        raw = per.groupby("num_blocks")[metric if q == "acc" else "grad"].mean()
        row.update(fewest=int(lo.num_blocks), most=int(hi.num_blocks), n=int(min(lo.n, hi.n)),
                   shallow=raw.iloc[0], deep=raw.iloc[-1], test=t["test"], diff=t["diff"], ci95=t["ci95"])
        if not np.isnan(t["p_less"]):
            row["p_claim"], row["p_against"] = (1 - t["p_less"], t["p_less"]) if sign > 0 else (t["p_less"],
                                                                                                1 - t["p_less"])
        rows.append(row)
    out = pd.DataFrame(rows)
    out["p_claim_holm"], out["p_against_holm"] = holm(out.p_claim), holm(out.p_against)
    out["verdict"] = np.where(out.p_claim.isna(), "cannot be evaluated",
                              np.where(out.p_claim_holm < alpha, "holds",
                                       np.where(out.p_against_holm < alpha, "does not hold", "not shown")))
    return out
