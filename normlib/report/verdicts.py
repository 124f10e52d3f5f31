"""The original's three expected outcomes decided on a stats() frame (ours or the original's table): rule 1 (a
threshold batch size), rule 2 (GroupNorm's stability) and rule 3 (BatchNorm within the tolerance of GroupNorm where it
performs well), each with the numbers behind its verdict and the interval that decided it."""
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as st

from .deciding import (DECIDED, WITHIN, Decision, band_decision, lower_bounds, nowhere_decision,
                       threshold_decision)
from .original import CLAIMS, ORIGINAL_TABLE, PAIR, TOL, rules
from .planning import deciding_seeds, width_text
from .stats import (ALPHA, POWER, bands, compare, detectable, noninferior, pairwise, paired_stats, runs_needed,
                    samples, seed_slopes, stats, t_result, trend, versus_best)
from .text import int_list, norm_label, pval, sizes_text


@dataclass
class Outcome:
    claim: str  # the original's expectation, in its words
    rule: str  # how it is decided here
    verdict: str  # holds | does not hold | not shown | cannot be evaluated
    evidence: str  # the numbers behind the verdict, ending with the optimizer steps the batch sizes took
    short: str  # the key numbers in one line, for the report's key findings
    alt: str = ""  # outcome 1 only: the verdict under the other definition of 'performs poorly'
    decision: Decision = None  # the interval bound or p-value that decided the verdict; None when none was tested
    subsets: dict = field(default_factory=dict)  # {seed: the verdict without its runs}; {} without per-seed runs

    def robustness(self) -> str:
        """A decided verdict's leave-one-seed-out line, e.g. 'holds in 1 of 5 subsets that leave one seed out (without
        seed 1; not shown without seed 0, 2, 3 or 4)'; '' for an undecided verdict or without per-seed runs."""
        if self.verdict not in DECIDED or not self.subsets:
            return ""
        by = {}
        for seed, v in sorted(self.subsets.items()):
            by.setdefault(v, []).append(seed)
        same = by.pop(self.verdict, [])
        text = f"{self.verdict} in {len(same)} of {len(self.subsets)} subsets that leave one seed out"
        return text + (" (" + "; ".join(([f"without seed {int_list(same)}"] if same else [])
                                        + [f"{v} without seed {int_list(seeds)}" for v, seeds in by.items()]) + ")"
                       if by else "")

    @property
    def fragile(self) -> bool:
        """The rule: a verdict is fragile when its deciding bound lies within FRAGILE points of its tolerance (a rerun
        on another CPU type moves bounds that far), or, where it is decided, when a subset that leaves one seed out
        gives another verdict."""
        return bool(self.decision and self.decision.fragile) or (
            self.verdict in DECIDED and any(v != self.verdict for v in self.subsets.values()))

    def fragile_why(self) -> str:
        """Why the verdict is fragile, in words; '' when it is not."""
        if not self.fragile:
            return ""
        why = [f"it rests on {self.decision.text}, {WITHIN}, so a rerun on another CPU type can flip it"
               ] if self.decision and self.decision.fragile else []
        if any(v != self.verdict for v in self.subsets.values()):
            why.append("a subset of its runs that leaves one seed out gives another verdict")
        return "; ".join(why)

    def standing(self) -> str:
        """The leave-one-seed-out line and the fragile flag, for a verdict's line; '' where neither applies."""
        line = f" It {self.robustness()}." if self.robustness() else ""
        return line + (f" **Fragile**: {self.fragile_why()}." if self.fragile else "")


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
    return "; ".join(f"({norm_label(norm)}, {int(bs)}): " + ("no successful run" if n == 0 else "only 1 run")
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


def welch_beside(r, p_col: str = "p_less_holm") -> str:
    """Welch's p beside a paired test's p_col, where the two could differ (a compare() row); '' for a row that is
    Welch's already or has no Welch column."""
    welch = getattr(r, p_col.replace("p_", "welch_", 1), None)
    return f" (Welch's: {pval(welch)})" if r.test == "paired" and welch is not None else ""


def _below(rows: pd.DataFrame, p_col: str) -> str:
    return "; ".join(f"batch size {int(r.batch_size)}: {r.diff:+.2f} points, Holm p = {pval(getattr(r, p_col))}"
                     + welch_beside(r, p_col) for r in rows.itertuples())


def _own_best(s: pd.DataFrame, runs, metric: str, sizes, alpha: float) -> tuple:
    """Rule 1 by the second definition, below BatchNorm's own best batch size: (verdict, the definition, evidence,
    short). Only the batch sizes below the best count: a threshold is a fall below some N, and a decline above the
    best (too few steps, or too large a batch for this lr) is no evidence about it."""
    bn = s[s.norm == PAIR[0]]
    gaps = missing_cells(s, sizes, norms=PAIR[:1])
    if gaps or len(bn) < 2:
        return "cannot be evaluated", "below BatchNorm's own best batch size", (
            "needs BatchNorm with ≥ 2 runs at every batch size tested (≥ 2 of them); missing "
            + cells_text(gaps, "a second batch size")), "missing cells"
    vb = versus_best(bn, "batch_size", runs=None if runs is None else runs[runs.norm == PAIR[0]], metric=metric)
    best = int(vb.best.iloc[0])
    below_best = vb[vb.batch_size < best]
    poor = below_best[(below_best["diff"] < 0) & (below_best.p_holm < alpha)]
    head = (f"below BatchNorm's own best batch size, {best} at {bn.set_index('batch_size')['mean'][best]:.2f}%, "
            f"comparing only the batch sizes below it; two-sided, Holm over all {int(vb.family.iloc[0])} pairs of "
            f"batch sizes")
    if below_best.empty:
        return "not shown", head, "the best is the smallest batch size tested: nothing lies below it, so no " \
                                  "threshold is shown", f"its best, {best}, is the smallest batch size"
    if poor.empty:
        low = below_best.loc[below_best.p_holm.idxmin()]
        return "not shown", head, (f"no smaller batch size is significantly below it (closest: batch size "
                                   f"{int(low.batch_size)}, {low['diff']:+.2f} points, 95% CI "
                                   f"[{low['diff'] - low.ci95:+.2f}, {low['diff'] + low.ci95:+.2f}], Holm p = "
                                   f"{pval(low.p_holm)}): no threshold is shown"), (
            f"no smaller batch size significantly below its best, {best}")
    n, _ = threshold_of(bn.batch_size, set(poor.batch_size))
    return "holds", head, f"N = {n}; significantly below it at {_below(poor, 'p_holm')}", (
        f"N = {n}, below its best, {best}, at {int_list(poor.batch_size)}")


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
    closest = (f"batch size {int(low.batch_size)}, {low['diff']:+.2f} points, 95% CI [{low['diff'] - low.ci95:+.2f}, "
               f"{low['diff'] + low.ci95:+.2f}], Holm-corrected one-sided p = {pval(low.p_less_holm)}")
    margin = pd.Series([noninferior(r.diff, r.se, r.df, tol) for r in cmp.itertuples()], index=cmp.index)
    head = f"BatchNorm is not significantly below GroupNorm at any of batch sizes {int_list(sizes)} ({tests}; " \
           f"closest: {closest})"
    if (margin < alpha).all():
        low = lower_bounds(cmp, alpha)
        worst = cmp.loc[low.idxmin()]
        bound = (f" (smallest one-sided {1 - alpha:.0%} lower bound of BatchNorm − GroupNorm: {low.min():+.2f} at batch "
                 f"size {int(worst.batch_size)})")
        return "does not hold", (
            f"{head}, and it is shown to be no more than {tol:g} points below GroupNorm at every one (one-sided "
            f"p ≤ {pval(margin.max())}): it performs poorly nowhere, so there is no threshold"), (
            f"BatchNorm is shown within {tol:g} points of GroupNorm or above it at every batch size{bound}")
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
        f"N = {n}: BatchNorm is below GroupNorm at {sizes_text(poor)} ("
        + "; ".join(f"{r.diff:+.2f} points, 95% CI [{r.diff - r.ci95:+.2f}, {r.diff + r.ci95:+.2f}], Holm one-sided "
                    f"p = {pval(r.p_less_holm)}{welch_beside(r)}" for r in below.itertuples()) + ")"), n


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


def trend_text(gn: pd.DataFrame, runs, metric: str) -> str:
    """GroupNorm's trend per doubling of the batch size, with the seed as the unit where the runs allow (one slope
    per seed, its mean tested over the seeds), else fitted to the cells' means and stds (the original's table),
    saying which."""
    per_seed = seed_slopes(runs, "batch_size", metric) if runs is not None else {"units": 0}
    if per_seed["units"] >= 2:
        return (f"{per_seed['diff']:+.2f} points per doubling (95% CI ± {per_seed['ci95']:.2f}, p = "
                f"{pval(per_seed['p'])}; one slope per seed, tested over {per_seed['units']} seeds)")
    t = trend(gn)
    return f"{t['slope']:+.2f} points per doubling" + ("" if np.isnan(t["ci95"]) else (
        f" (95% CI ± {t['ci95']:.2f}, p = {pval(t['p'])}; fitted to every run of the table's cells, no seeds)"))


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
    gn_range = hi["mean"] - lo["mean"]
    trend_txt = trend_text(gn, None if runs is None else runs[runs.norm == PAIR[1]], metric)
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
        brief, plan = deciding_seeds(judged, tol, alpha, lambda r: f"batch size {int(r.a)} − {int(r.b)}")
        evidence, short = evidence + "." + width_text(judged, tol) + " " + plan, f"{short}; {brief}"
    decision = band_decision(judged, verdict, tol, lambda r: f"GroupNorm batch size {int(r.a)} − {int(r.b)}")
    return verdict, evidence, short + (f"; missing {absent}" if absent else ""), decision


def average(rows: pd.DataFrame, runs, metric: str) -> dict:
    """BatchNorm − GroupNorm averaged over the batch sizes of compare() rows: per seed, paired over the seeds that
    have both norms at every one of them, when the runs give 2 or more such seeds; otherwise from the rows' own
    differences (their mean, se = √Σse² / k, Welch–Satterthwaite df), which needs no per-seed records (the original's
    table). t_result with `test`, `sizes` and `seeds` (0 for the second way); {} without rows."""
    sizes = sorted(int(b) for b in rows.batch_size)
    if not sizes:
        return {}
    x = samples(None if runs is None else runs[runs.batch_size.isin(sizes)], metric, ("norm", "batch_size"))
    per = [x[(PAIR[0], b)] - x[(PAIR[1], b)] for b in sizes if (PAIR[0], b) in x and (PAIR[1], b) in x]
    d = pd.concat(per, axis=1).dropna() if len(per) == len(sizes) else pd.DataFrame()
    if len(d) >= 2:
        return {**paired_stats(d.mean(axis=1)), "test": "paired", "sizes": sizes, "seeds": len(d)}
    var = (rows.se ** 2).to_numpy(float)
    df = var.sum() ** 2 / (var ** 2 / rows.df.to_numpy(float)).sum() if var.sum() > 0 else np.nan
    return {**t_result(rows["diff"].mean(), np.sqrt(var.sum()) / len(sizes), df), "test": "Welch", "sizes": sizes,
            "seeds": 0}


def gate_text(avg: dict, tol: float, alpha: float) -> tuple:
    """The average's (1 - 2 alpha) CI and whether it lies entirely beyond ±tol: (passed, 'avg, 90% CI [lo, hi]', the
    Decision: its bound on the side of the average against the tolerance)."""
    half = st.t.ppf(1 - alpha, avg["df"]) * avg["se"] if avg["se"] else 0.0
    lo, hi = avg["diff"] - half, avg["diff"] + half
    how = (f"per seed over {avg['seeds']} seeds with every cell, paired" if avg["seeds"] else
           "from the cells' means, Welch")
    text = (f"averaged over batch sizes {int_list(avg['sizes'])} ({how}): {avg['diff']:+.2f}, {1 - 2 * alpha:.0%} CI "
            f"[{lo:+.2f}, {hi:+.2f}]")
    bound = lo if avg["diff"] >= 0 else hi  # the bound that must pass the tolerance for the gate
    gap = lo - tol if avg["diff"] >= 0 else -hi - tol  # > 0: beyond the tolerance by that much
    return lo > tol or hi < -tol, text, Decision(
        f"BatchNorm − GroupNorm {text}: {'lower' if avg['diff'] >= 0 else 'upper'} bound {bound:+.2f} against the "
        f"tolerance {tol if avg['diff'] >= 0 else -tol:+.2f}", gap)


def _within_verdict(cmp: pd.DataFrame, n, gaps: list, tol: float, alpha: float, nowhere_poor: bool = False,
                    runs=None, metric: str = "final_acc", borrowed=()) -> tuple:
    """Rule 3 at the batch sizes >= N, by gatekeeping: (verdict, evidence, short). Holds when every batch size's
    (1 - 2 alpha) CI lies inside ±tol (TOST). Step 1 (the gate), at full alpha: the average over those batch sizes
    (leaving out `borrowed`, cells another grid ran under another protocol) lies beyond ±tol, and then the outcome
    does not hold; step 2, only past the gate: which batch sizes lie beyond, by simultaneous CIs (Bonferroni over
    them). Not shown otherwise."""
    if gaps or len(cmp) < 2:
        why = f"rule 1 cannot be evaluated (missing {cells_text(gaps, 'batch sizes')})"
        return "cannot be evaluated", why, why
    if n is None:
        why = "rule 1 finds no batch size range where BatchNorm performs well"
        return "cannot be evaluated", why, why
    well = cmp[cmp.batch_size >= n].reset_index(drop=True)
    judged = well.join(bands(well, tol, alpha))
    own = well[~well.batch_size.isin(set(borrowed))]
    avg = average(own, runs, metric)
    passed, gate, decision = gate_text(avg, tol, alpha) if avg else (False, "no batch size of its own to average", None)
    within = bool((judged.label == "within").all())
    verdict = "holds" if within else "does not hold" if passed else "not shown"
    where = (f"at every batch size (rule 1 finds none where BatchNorm performs poorly, so N is the smallest tested, "
             f"{n})" if nowhere_poor else f"at the batch sizes ≥ N = {n}")
    left = (f"; {sizes_text(sorted(set(borrowed) & set(well.batch_size)))} left out of the average: "
            f"their runs are another grid's" if set(borrowed) & set(well.batch_size) else "")
    if passed:
        beyond = judged[judged.label == "beyond"]
        step2 = (f"Step 2, each batch size (simultaneous CIs, Bonferroni over {len(judged)}): " + "; ".join(
            f"batch size {int(r.batch_size)}: {band_text(r)}" for r in judged.itertuples()) + ". Beyond ±"
            f"{tol:g} on its own: " + (int_list(beyond.batch_size) if len(beyond) else "none"))
    else:
        step2 = (f"Step 2 is not reached: no batch size is tested beyond ±{tol:g} on its own. Each batch size's "
                 f"{judged.level.iloc[0]:.0%} CI (for 'holds', all must lie inside ±{tol:g}): " + "; ".join(
                     f"batch size {int(r.batch_size)}: {r.diff:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}]"
                     for r in judged.itertuples()))
    evidence = (f"BatchNorm − GroupNorm {where} ({tests_text(well)}). Step 1, at the full {alpha:g}: {gate} → "
                + ("beyond" if passed else "not beyond") + f" ±{tol:g}{left}. {step2}.")
    if verdict == "not shown":
        mean = {"diff": avg["diff"], "se": avg["se"], "paired": avg["test"] == "paired",
                "n": avg["seeds"] or int(min(own.n_a.min(), own.n_b.min()))} if avg else None
        brief, plan = deciding_seeds(judged, tol, alpha, lambda r: f"batch size {int(r.batch_size)}", mean)
        evidence += width_text(judged, tol) + " " + plan
    widest = judged.loc[(judged.hi - judged.lo).idxmax()]
    decided = (f"every {judged.level.iloc[0]:.0%} CI of BatchNorm − GroupNorm lies inside ±{tol:g} (widest: batch "
               f"size {int(widest.batch_size)}, [{widest.lo:+.2f}, {widest.hi:+.2f}])" if within else
               f"BatchNorm − GroupNorm {gate}, " + ("beyond" if passed else "not beyond") + f" ±{tol:g}")
    if within:
        decision = band_decision(judged, verdict, tol, lambda r: f"BatchNorm − GroupNorm at batch size "
                                                                 f"{int(r.batch_size)}")
    return verdict, evidence.rstrip("."), f"at batch sizes ≥ {n}, {decided}" + (
        f"; {brief}" if verdict == "not shown" else ""), decision


def outcomes(s: pd.DataFrame, tol: float = TOL, alpha: float = ALPHA, runs=None, metric: str = "final_acc",
             batch_sizes=(), steps=None, borrowed=(), loso: bool = True) -> list:
    """The original's three expected outcomes decided on a stats() frame of BatchNorm and GroupNorm (ours or the
    original's). `runs` (per-seed records) allow paired tests; `batch_sizes` are those tested (a cell missing from
    s is named, and a verdict that needs it cannot be evaluated); `steps` ({batch size: [steps per run]}) are stated
    in every verdict; `borrowed` batch sizes hold another grid's runs (a control's cells taken from the main grid) and
    stay out of rule 3's average. With `loso` and per-seed runs, each outcome holds the verdicts of the subsets that
    leave one seed out."""
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
               _within_verdict(cmp, n, gaps, tol, alpha, nowhere, runs, metric, borrowed)]
    steps_txt = " " + steps_note(steps, short=True) if steps else ""
    decided = [tuple(d[:3]) + (d[3] if len(d) > 3 else None,) for d in decided]  # early returns name no decision
    decided[0] = (*decided[0][:3], nowhere_decision(cmp, tol, alpha) if nowhere
                   else threshold_decision(cmp, threshold(cmp, alpha)[1], alpha) if not gaps and len(cmp) > 1 else None)
    found = [Outcome(claim, rule, verdict, evidence.rstrip(".") + "." + steps_txt, short, alt if i == 0 else "", how)
             for i, (claim, rule, (verdict, evidence, short, how)) in
             enumerate(zip(CLAIMS, rules(tol, alpha), decided))]
    seeds = sorted(set(runs.seed)) if loso and runs is not None and "seed" in runs else []
    for seed in seeds if len(seeds) > 1 else []:
        rest = runs[runs.seed != seed]
        without = outcomes(stats(rest, metric), tol, alpha, runs=rest, metric=metric, batch_sizes=sizes,
                           borrowed=borrowed, loso=False)
        for o, w in zip(found, without):
            o.subsets[int(seed)] = w.verdict
    return found
