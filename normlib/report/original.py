"""The original study this project reproduces: its published table, its protocol (and how ours differs), its three
expected outcomes, and the rules that decide each outcome on a stats() frame (ours or the original's)."""
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import TRAIN_IMAGES
from .load import metric_text
from .stats import ALPHA, ci95, compare, equivalence, holm, trend, versus_best
from .text import int_list, norm_label, param_text, pval

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
                f"compression changes the pixels, and what that costs in accuracy cannot be measured here without "
                f"the original pickles")
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
    """How each outcome is decided, in words (the same wording the report prints)."""
    return (f"BatchNorm *performs poorly* at a batch size when its mean accuracy is significantly below GroupNorm's "
            f"there: a one-sided test (the expectation has a direction), Holm-corrected across the batch sizes both "
            f"norms have, p < {alpha:g}. The test is a paired t-test on the per-seed differences where every seed "
            f"has both norms at that batch size (the two runs share the initialisation seed and the data order), "
            f"Welch's t-test otherwise. N is the smallest batch size from which on BatchNorm never performs poorly; "
            f"the outcome holds when N exists and BatchNorm performs poorly at some smaller batch size. Every "
            f"(norm, batch size) cell needs ≥ 2 runs. Beside it, the other natural definition: *poorly* = "
            f"significantly below BatchNorm's own best batch size (two-sided tests of every pair of batch sizes, one "
            f"Holm family, so that picking the best on the same runs needs no further correction). The tables of "
            f"the batch-size section give two-sided p (is there a difference in either direction); this rule uses "
            f"the one-sided p (is BatchNorm below).",
            f"The range (max − min) of GroupNorm's per-batch-size mean accuracies is at most {tol:g} points, with "
            f"GroupNorm at every batch size tested (a missing one could only widen the range: a range above "
            f"{tol:g} stands without it, one within {tol:g} cannot be evaluated). The least-squares trend per "
            f"doubling of the batch size is reported beside it.",
            f"At every batch size ≥ N (where rule 1 says BatchNorm performs well), BatchNorm − GroupNorm is shown to "
            f"lie within ±{tol:g} points by two one-sided tests (TOST, each at {alpha:g}: the "
            f"{1 - 2 * alpha:.0%} CI of the difference inside ±{tol:g}), paired or Welch as in rule 1 (the "
            f"original's '%' are accuracy points). It holds when every one of them is within (a claim about all of "
            f"them together needs no multiplicity correction), does not hold when at some batch size the difference "
            f"is significantly beyond ±{tol:g} (one-sided, Holm-corrected across those batch sizes), and is "
            f"undecided otherwise.")


@dataclass
class Outcome:
    claim: str  # the original's expectation, in its words
    rule: str  # how it is decided here
    verdict: str  # holds | does not hold | undecided | cannot be evaluated
    evidence: str  # the numbers behind the verdict, ending with the optimizer steps the batch sizes took
    short: str  # the key numbers in one line, for the report's key findings
    alt: str = ""  # outcome 1 only: the verdict under the other definition of 'performs poorly'


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
    return "; ".join(f"{test} at batch size(s) {int_list(sizes)}" for test, sizes in kinds.items())


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
        return "does not hold", head, (f"no batch size is significantly below it (closest: batch size "
                                       f"{int(low.batch_size)}, {low['diff']:+.2f} points, Holm p = "
                                       f"{pval(low.p_holm)}), so there is no threshold"), (
            f"no batch size significantly below its best, {best}")
    below = f"significantly below it at {_below(poor, 'p_holm')}"
    if n is None:
        return "does not hold", head, below + "; the largest batch size is among them, so there is no threshold", (
            f"below its best, {best}, at {int_list(poor.batch_size)}, the largest included")
    return "holds", head, f"N = {n}; {below}", f"N = {n}, below its best, {best}, at {int_list(poor.batch_size)}"


def verb(verdict: str) -> str:
    """A verdict after 'it': 'holds', 'does not hold', 'is undecided', 'cannot be evaluated'."""
    return "is undecided" if verdict == "undecided" else verdict


def _threshold_verdict(cmp: pd.DataFrame, sizes: list, gaps: list, alpha: float) -> tuple:
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
               "not significantly below GroupNorm at any of them")), f"cannot be evaluated: missing {missing}", None
    n, poor = threshold(cmp, alpha)
    tests, below = tests_text(cmp), cmp[cmp.batch_size.isin(poor)]
    if not poor:
        low = cmp.loc[cmp.p_less_holm.idxmin()]
        above = (cmp["diff"] >= 0).all()
        closest = (f"batch size {int(low.batch_size)}, {low['diff']:+.2f} points, Holm-corrected one-sided p = "
                   f"{pval(low.p_less_holm)}")
        return "does not hold", (
            f"BatchNorm is not significantly below GroupNorm at any of batch sizes {int_list(sizes)} ({tests}); "
            + ("its mean is at or above GroupNorm's at every one" if above else f"the closest: {closest}")
            + ": it performs poorly nowhere, so there is no threshold"), (
            "BatchNorm's mean is at or above GroupNorm's at every batch size" if above else
            f"BatchNorm is not significantly below GroupNorm at any batch size (closest: {closest})"), n
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
        f"N = {n}: BatchNorm is below GroupNorm at batch size(s) {int_list(poor)} (by "
        + ", ".join(f"{-d:.2f}" for d in below["diff"]) + " points)"), n


def _stability_verdict(s: pd.DataFrame, sizes: list, tol: float) -> tuple:
    """Rule 2: (verdict, evidence, short)."""
    gn, bn = s[s.norm == PAIR[1]].sort_values("batch_size"), s[s.norm == PAIR[0]]
    absent = cells_text(missing_cells(s, sizes, norms=PAIR[1:], min_n=1))
    if len(gn) < 2:
        return ("cannot be evaluated", f"needs GroupNorm at ≥ 2 batch sizes; missing {absent or 'a second one'}",
                "cannot be evaluated: GroupNorm at fewer than 2 batch sizes")
    lo, hi = gn.loc[gn["mean"].idxmin()], gn.loc[gn["mean"].idxmax()]
    gn_range, gn_trend = hi["mean"] - lo["mean"], trend(gn)
    trend_txt = f"{gn_trend['slope']:+.2f} points per doubling" + (
        "" if np.isnan(gn_trend["ci95"]) else f" (95% CI ± {gn_trend['ci95']:.2f}, p = {pval(gn_trend['p'])})")
    bn_txt = f"; BatchNorm's range for comparison: {bn['mean'].max() - bn['mean'].min():.2f}" if len(bn) > 1 else ""
    if gn_range > tol:
        verdict, note = "does not hold", f" (the missing {absent} could only widen it)" if absent else ""
    elif absent:
        verdict, note = "cannot be evaluated", f", but GroupNorm is missing at {absent}, which could widen the range"
    else:
        verdict, note = "holds", ""
    return verdict, (
        f"GroupNorm's means run from {lo['mean']:.2f}% (batch size {int(lo.batch_size)}) to {hi['mean']:.2f}% (batch "
        f"size {int(hi.batch_size)}): range {gn_range:.2f} points {'≤' if gn_range <= tol else '>'} {tol:g}{note}; "
        f"trend {trend_txt}{bn_txt}"), (
        f"GroupNorm's means span {gn_range:.2f} points ({lo['mean']:.2f} to {hi['mean']:.2f})"
        + (f"; missing {absent}" if absent else ""))


def _within_verdict(cmp: pd.DataFrame, n, gaps: list, tol: float, alpha: float) -> tuple:
    """Rule 3, by equivalence tests at the batch sizes >= N: (verdict, evidence, short)."""
    if gaps or len(cmp) < 2:
        why = f"rule 1 cannot be evaluated (missing {cells_text(gaps, 'batch sizes')})"
        return "cannot be evaluated", why, f"cannot be evaluated: {why}"
    if n is None:
        why = "rule 1 finds no batch size range where BatchNorm performs well"
        return "cannot be evaluated", why, f"cannot be evaluated: {why}"
    well = cmp[cmp.batch_size >= n]
    eq = pd.DataFrame([equivalence(r.diff, r.se, r.df, tol, alpha) for r in well.itertuples()], index=well.index)
    well = well.join(eq).assign(p_beyond_holm=lambda w: holm(w.p_beyond))
    well["label"] = np.where(well.p_tost < alpha, "within",
                             np.where(well.p_beyond_holm < alpha, "beyond", "undecided"))
    verdict = ("holds" if (well.label == "within").all() else
               "does not hold" if (well.label == "beyond").any() else "undecided")
    level = f"{1 - 2 * alpha:.0%}"
    per_bs = "; ".join(
        f"batch size {int(r.batch_size)}: {r.diff:+.2f}, {level} CI [{r.lo:+.2f}, {r.hi:+.2f}] → {r.label} (TOST p = "
        f"{pval(r.p_tost)}, Holm p beyond ±{tol:g} = {pval(r.p_beyond_holm)})" for r in well.itertuples())
    return verdict, f"BatchNorm − GroupNorm at the batch sizes ≥ N = {n} ({tests_text(well)}): {per_bs}", (
        f"at batch sizes ≥ {n}, BatchNorm − GroupNorm is " + ", ".join(
            f"{r.diff:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}] at {int(r.batch_size)}" for r in well.itertuples())
        + f" ({level} CIs, tolerance ±{tol:g})")


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
    *first, n = _threshold_verdict(cmp, sizes, gaps, alpha)
    alt, alt_rule, alt_txt, alt_short = _own_best(s, runs, metric, sizes, alpha)
    first[1] += f". By the other definition ({alt_rule}): **{alt}** — {alt_txt}"
    first[2] += f"; against its own best batch size it {verb(alt)} ({alt_short})"
    decided = [first, _stability_verdict(s, sizes, tol), _within_verdict(cmp, n, gaps, tol, alpha)]
    steps_txt = " " + steps_note(steps, short=True) if steps else ""
    return [Outcome(claim, rule, verdict, evidence + "." + steps_txt, short, alt if i == 0 else "")
            for i, (claim, rule, (verdict, evidence, short)) in enumerate(zip(CLAIMS, rules(tol, alpha), decided))]
