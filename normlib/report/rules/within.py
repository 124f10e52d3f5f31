"""Expectation 3, BatchNorm within ±tol of GroupNorm where it performs well (the batch sizes >= N of expectation 1):
holds by TOST at every one; against it a gatekeeping design, the average over those batch sizes beyond ±tol first,
then the batch sizes beyond by simultaneous CIs."""
import numpy as np
import pandas as pd
from scipy import stats as st

from ..deciding import Decision, band_decision
from ..original import PAIR
from ..planning import deciding_seeds, width_text
from ..stats import bands, paired_stats, samples, t_result
from ..text import int_list, sizes_text
from .base import Case, Rule, band_text, cells_text, tests_text
from .outcome import Outcome


def average(rows: pd.DataFrame, runs, metric: str) -> dict:
    """BatchNorm − GroupNorm averaged over the batch sizes of compare() rows: per seed, paired over the seeds that
    have both norms at every one of them, when the runs give 2 or more such seeds; otherwise from the rows' own
    differences (their mean, se = √Σse² / k, Welch–Satterthwaite df), which needs no per-seed records (the
    original's table). t_result with `test`, `sizes` and `seeds` (0 for the second way); {} without rows."""
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


def _within_verdict(case: Case) -> tuple:
    """Rule 3 at the batch sizes >= N, by gatekeeping: (verdict, evidence, short, Decision or None). Holds when every
    batch size's (1 - 2 alpha) CI lies inside ±tol (TOST). Step 1 (the gate), at full alpha: the average over those
    batch sizes (leaving out `borrowed`, cells another grid ran under another protocol) lies beyond ±tol, and then the
    outcome does not hold; step 2, only past the gate: which batch sizes lie beyond, by simultaneous CIs (Bonferroni
    over them). Not shown otherwise."""
    cmp, n, gaps, tol, alpha = case.cmp, case.n, case.gaps, case.tol, case.alpha
    runs, metric, borrowed = case.runs, case.metric, case.borrowed
    if not case.complete:
        why = f"rule 1 cannot be evaluated (missing {cells_text(gaps, 'batch sizes')})"
        return "cannot be evaluated", why, why, None
    if n is None:
        why = "rule 1 finds no batch size range where BatchNorm performs well"
        return "cannot be evaluated", why, why, None
    well = cmp[cmp.batch_size >= n].reset_index(drop=True)
    judged = well.join(bands(well, tol, alpha))
    own = well[~well.batch_size.isin(set(borrowed))]
    avg = average(own, runs, metric)
    passed, gate, decision = gate_text(avg, tol, alpha) if avg else (False, "no batch size of its own to average", None)
    within = bool((judged.label == "within").all())
    verdict = "holds" if within else "does not hold" if passed else "not shown"
    where = (f"at every batch size (rule 1 finds none where BatchNorm performs poorly, so N is the smallest tested, "
             f"{n})" if case.nowhere else f"at the batch sizes ≥ N = {n}")
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


class Within(Rule):
    name = "within"
    claim = "Even where BatchNorm performs well, its accuracy differs from GroupNorm's by at most 3%."

    def text(self, tol: float, alpha: float) -> str:
        return (f"At the batch sizes ≥ N (where rule 1 finds BatchNorm not performing poorly; with no batch size "
                f"where it performs poorly, N is the smallest tested), BatchNorm − GroupNorm is compared with "
                f"±{tol:g} points (the original's '%' are accuracy points), paired or Welch as in rule 1. It holds "
                f"when every batch size's {1 - 2 * alpha:.0%} CI lies inside ±{tol:g} (TOST at {alpha:g}; one claim "
                f"about all of them, no correction). Against it, a gatekeeping design: step 1 tests the difference "
                f"averaged over those batch sizes (per seed where every seed has every cell, else from the cells' "
                f"means) at the full {alpha:g}; when its {1 - 2 * alpha:.0%} CI lies entirely beyond ±{tol:g}, the "
                f"outcome does not hold, and only then step 2 names the batch sizes whose simultaneous CI (Bonferroni "
                f"over them) lies beyond. It is not shown otherwise (then the report gives the seeds that would decide "
                f"it). On a control grid, batch sizes whose runs are the main grid's stay out of the average. Each "
                f"verdict prints the interval that decided it.")

    def decide(self, case: Case) -> Outcome:
        return self.outcome(case, *_within_verdict(case))


WITHIN = Within()
