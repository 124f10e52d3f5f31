"""Expectation 1, a threshold batch size: BatchNorm performs poorly (significantly below GroupNorm, one-sided, Holm)
below some N and never from N on; beside it the other definition of 'poorly', below BatchNorm's own best batch size;
where neither a threshold nor its absence is shown, what the runs could detect (power)."""
import pandas as pd

from ..deciding import lower_bounds, nowhere_decision, threshold_decision
from ..original import ORIGINAL_TABLE, PAIR
from ..stats import POWER, detectable, noninferior, runs_needed, versus_best
from ..text import int_list, pval, sizes_text
from .base import Case, Rule, cells_text, missing_cells, tests_text, threshold_of, welch_beside
from .outcome import Outcome, verb


def _below(rows: pd.DataFrame, p_col: str) -> str:
    return "; ".join(f"batch size {int(r.batch_size)}: {r.diff:+.2f} points, Holm p = {pval(getattr(r, p_col))}"
                     + welch_beside(r, p_col) for r in rows.itertuples())


def _own_best(case: Case) -> tuple:
    """Rule 1 by the second definition, below BatchNorm's own best batch size: (verdict, the definition, evidence,
    short). Only the batch sizes below the best count: a threshold is a fall below some N, and a decline above the
    best (too few steps, or too large a batch for this lr) is no evidence about it."""
    s, runs, metric, alpha = case.s, case.runs, case.metric, case.alpha
    bn = s[s.norm == PAIR[0]]
    gaps = missing_cells(s, case.sizes, norms=PAIR[:1])
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


def power_text(w: dict, alpha: float) -> str:
    """power() in a sentence or two."""
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


def _nowhere_poor(case: Case, tests: str) -> tuple:
    """Rule 1 where BatchNorm performs poorly at no batch size: does not hold when it is shown within tol of
    GroupNorm (or above) at every batch size, else not shown; (verdict, evidence, short, power() where not shown)."""
    cmp, sizes, tol, alpha = case.cmp, case.sizes, case.tol, case.alpha
    low = cmp.loc[cmp.p_less_holm.idxmin()]
    closest = (f"batch size {int(low.batch_size)}, {low['diff']:+.2f} points, 95% CI [{low['diff'] - low.ci95:+.2f}, "
               f"{low['diff'] + low.ci95:+.2f}], Holm-corrected one-sided p = {pval(low.p_less_holm)}")
    margin = pd.Series([noninferior(r.diff, r.se, r.df, tol) for r in cmp.itertuples()], index=cmp.index)
    head = f"BatchNorm is not significantly below GroupNorm at any of batch sizes {int_list(sizes)} ({tests}; " \
           f"closest: {closest})"
    if (margin < alpha).all():
        low = lower_bounds(cmp, alpha)
        worst = cmp.loc[low.idxmin()]
        bound = (f" (smallest one-sided {1 - alpha:.0%} lower bound of BatchNorm − GroupNorm: {low.min():+.2f} at "
                 f"batch size {int(worst.batch_size)})")
        return "does not hold", (
            f"{head}, and it is shown to be no more than {tol:g} points below GroupNorm at every one (one-sided "
            f"p ≤ {pval(margin.max())}): it performs poorly nowhere, so there is no threshold"), (
            f"BatchNorm is shown within {tol:g} points of GroupNorm or above it at every batch size{bound}"), None
    open_at = cmp.batch_size[~(margin < alpha)]
    w = power(cmp, alpha)
    return "not shown", (
        f"{head}; nor is it shown to be within {tol:g} points of GroupNorm or above it at "
        f"{sizes_text(open_at)}: neither a threshold nor its absence is shown. {power_text(w, alpha)}"), (
        f"BatchNorm is not significantly below GroupNorm at any batch size (closest: {closest}), nor shown within "
        f"{tol:g} points everywhere"), w


def _threshold_verdict(case: Case) -> tuple:
    """Rule 1 (below GroupNorm) on the case's compare() table of the batch sizes both norms have: (verdict, evidence,
    short, power() or None)."""
    cmp, sizes, gaps, alpha = case.cmp, case.sizes, case.gaps, case.alpha
    if not case.complete:
        missing = cells_text(gaps, "a second batch size")
        below = cmp[cmp.p_less_holm < alpha]
        left_out = [b for b in sizes if b not in set(cmp.batch_size)]
        return "cannot be evaluated", (
            f"needs both norms with ≥ 2 runs at every batch size tested ({int_list(sizes)}); missing {missing}. "
            f"On the batch sizes both norms have ({int_list(cmp.batch_size) or 'none'}; left out: "
            f"{int_list(left_out) or 'none'}), BatchNorm is "
            + (f"significantly below GroupNorm at {_below(below, 'p_less_holm')}" if len(below) else
               "not significantly below GroupNorm at any of them")), f"missing {missing}", None
    n, poor = case.split
    tests, below = tests_text(cmp), cmp[cmp.batch_size.isin(poor)]
    if not poor:
        return _nowhere_poor(case, tests)
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
                    f"p = {pval(r.p_less_holm)}{welch_beside(r)}" for r in below.itertuples()) + ")"), None


class Threshold(Rule):
    name = "threshold"
    claim = "BatchNorm only performs well above a certain threshold batch size N."

    def text(self, tol: float, alpha: float) -> str:
        return (f"BatchNorm *performs poorly* at a batch size when its mean accuracy is significantly below "
                f"GroupNorm's there: a one-sided test (the expectation has a direction), Holm-corrected across the "
                f"batch sizes both norms have, p < {alpha:g}. The test is a paired t-test on the per-seed differences "
                f"where every seed has both norms at that batch size (the two runs share the initialisation seed and "
                f"the data order), Welch's t-test otherwise. N is the smallest batch size from which on BatchNorm "
                f"never performs poorly. The outcome holds when N exists and BatchNorm performs poorly at some smaller "
                f"batch size. It does not hold when BatchNorm performs poorly at the largest batch size (no N), or "
                f"when it is shown to be no more than {tol:g} points below GroupNorm at every batch size (one-sided "
                f"tests, each at {alpha:g}). Otherwise it is not shown, and the report gives the smallest deficit "
                f"these runs could detect and the seeds the original's effect would need. Every (norm, batch size) "
                f"cell needs ≥ 2 runs. Beside it, the other natural definition: *poorly* = significantly below "
                f"BatchNorm's own best batch size, comparing only the batch sizes below the best (a threshold is a "
                f"fall below N; a decline above the best is not one), by two-sided tests of every pair of batch sizes, "
                f"one Holm family, so that picking the best on the same runs needs no further correction. The tables "
                f"of the batch-size section give two-sided p (is there a difference in either direction); this rule "
                f"uses the one-sided p (is BatchNorm below).")

    def decide(self, case: Case) -> Outcome:
        verdict, evidence, short, power_ = _threshold_verdict(case)
        alt, alt_rule, alt_txt, alt_short = _own_best(case)
        evidence = evidence.rstrip(".") + f". By the other definition ({alt_rule}): **{alt}** — {alt_txt}"
        short += f"; against its own best batch size it {verb(alt)} ({alt_short})"
        decision = (nowhere_decision(case.cmp, case.tol, case.alpha) if case.nowhere else
                    threshold_decision(case.cmp, case.poor, case.alpha) if case.complete else None)
        return self.outcome(case, verdict, evidence, short, decision, alt=alt, power=power_)


THRESHOLD = Threshold()
