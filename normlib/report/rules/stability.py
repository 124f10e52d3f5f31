"""Expectation 2, GroupNorm's stability: every pair of its batch sizes shown within ±tol (TOST), or one pair shown
beyond by its simultaneous CI; beside it the range of its means and its trend per doubling of the batch size."""
import numpy as np
import pandas as pd

from ..deciding import band_decision
from ..original import PAIR
from ..planning import deciding_seeds, width_text
from ..stats import bands, pairwise, seed_slopes, trend
from ..text import pval
from .base import Case, Rule, band_text, cells_text, missing_cells
from .outcome import Outcome


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


def _stability_verdict(case: Case) -> tuple:
    """Rule 2 by equivalence of every pair of GroupNorm's batch sizes: (verdict, evidence, short, Decision or None)."""
    s, sizes, tol, alpha, runs, metric = case.s, case.sizes, case.tol, case.alpha, case.runs, case.metric
    gn, bn = s[s.norm == PAIR[1]].sort_values("batch_size"), s[s.norm == PAIR[0]]
    absent = cells_text(missing_cells(s, sizes, norms=PAIR[1:]))
    tested = gn[gn.n >= 2]
    if len(gn) < 2:
        return ("cannot be evaluated", f"needs GroupNorm at ≥ 2 batch sizes; missing {absent or 'a second one'}",
                "GroupNorm at fewer than 2 batch sizes", None)
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
                f"one run per cell", None)
    gn_runs = None if runs is None else runs[runs.norm == PAIR[1]]
    pw = pairwise(tested, "batch_size", runs=gn_runs, metric=metric)
    judged = pw.join(bands(pw, tol, alpha))
    verdict = band_verdict(judged, not absent)
    widest = next(judged.loc[[judged["diff"].abs().idxmax()]].itertuples())
    shown = judged[judged.label == "beyond"] if verdict == "does not hold" else judged.iloc[:0]
    tests = " and ".join(sorted(set(judged.test)))
    evidence = (f"{described}. Of the {len(judged)} pairs of batch sizes ({tests} t-tests), "
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


class Stability(Rule):
    name = "stability"
    claim = "GroupNorm maintains similar performance regardless of batch size."

    def text(self, tol: float, alpha: float) -> str:
        return (f"GroupNorm's accuracy is compared between every pair of batch sizes, paired or Welch as in rule 1. It "
                f"holds when every pairwise difference is shown to lie within ±{tol:g} points (TOST: the "
                f"{1 - 2 * alpha:.0%} CI inside ±{tol:g}; a claim about all of them together needs no correction), "
                f"does not hold when some pair's simultaneous CI (Bonferroni over the pairs) lies entirely beyond "
                f"±{tol:g}, and is not shown otherwise (then the report gives the seeds that would decide it). It "
                f"needs GroupNorm at every batch size tested with ≥ 2 runs (a missing one could only add pairs: "
                f"'does not hold' stands without it). The range of the means and the least-squares trend per "
                f"doubling of the batch size are reported beside it (one slope per seed, its mean tested over the "
                f"seeds, where the runs have seeds).")

    def decide(self, case: Case) -> Outcome:
        return self.outcome(case, *_stability_verdict(case))


STABILITY = Stability()
