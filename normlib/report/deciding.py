"""The number that decided a verdict: the interval bound (or p-value) nearest to flipping it, the threshold it was
held against, and whether it is fragile (a bound within FRAGILE points of its tolerance, so that a rerun on another CPU
type can flip the verdict). The fragile flag's whole rule (rules.outcome.Outcome.fragile): a verdict is fragile when its
bound is, or, where it is decided, when a subset of its runs that leaves one seed out gives another verdict."""
from dataclasses import dataclass

import pandas as pd
from scipy import stats as st

FRAGILE = 1.0  # accuracy points: a deciding bound this close to its tolerance makes the verdict fragile. Calibrated on
# what a rerun on another CPU type moves: the quick grid's deciding bounds moved by up to 0.88 points between a Xeon
# (AVX-512) and an EPYC (AVX2), flipping two verdicts (docs/results.md); rounded up to a whole point
WITHIN = f"within {FRAGILE:g} point{'' if FRAGILE == 1 else 's'} of the tolerance"  # the margin in words
DECIDED = ("holds", "does not hold")  # the verdicts that rest on evidence; robustness is asked of these


@dataclass
class Decision:
    text: str  # the deciding interval and its threshold, in words
    gap: float = float("nan")  # points between the deciding bound and the tolerance (nan: decided by a p-value)

    @property
    def fragile(self) -> bool:
        return abs(self.gap) <= FRAGILE  # nan compares False

    def words(self) -> str:
        """The decision in words, with the fragile flag where it applies."""
        return self.text + (f" (fragile: the bound lies {WITHIN})"
                            if self.fragile else "")


def band_decision(judged: pd.DataFrame, verdict: str, tol: float, name) -> Decision:
    """What decided a band verdict (holds / does not hold / not shown) on a bands() frame; `name(row)` says which
    difference a row is. holds and not shown rest on the outermost bound of the (1 - 2 alpha) CIs (inside ±tol for
    all: holds); does not hold rests on the simultaneous CI lying farthest beyond ±tol."""
    rows = judged[judged.label != "no test"]
    if rows.empty:
        return Decision("no interval: fewer than 2 runs per cell")
    if verdict == "does not hold":
        beyond = rows[rows.label == "beyond"]
        inner = pd.concat([beyond.slo, -beyond.shi], axis=1).max(axis=1)  # the bound nearest 0, made positive
        r = beyond.loc[inner.idxmax()]
        side, bound = ("lower", r.slo) if r.slo > tol else ("upper", r.shi)
        return Decision(f"{name(r)}: {side} bound of the simultaneous {r.slevel:.1%} CI {bound:+.2f} against the "
                        f"tolerance {tol if bound > 0 else -tol:+.2f}", abs(bound) - tol)
    outer = pd.concat([rows.hi, -rows.lo], axis=1).max(axis=1)  # the bound farthest from 0, made positive
    r = rows.loc[outer.idxmax()]
    side, bound = ("upper", r.hi) if r.hi >= -r.lo else ("lower", r.lo)
    return Decision(f"{name(r)}: {side} bound of the {r.level:.0%} CI {bound:+.2f} against the tolerance "
                    f"{tol if bound > 0 else -tol:+.2f}", abs(bound) - tol)


def threshold_decision(cmp: pd.DataFrame, poor: list, alpha: float) -> Decision:
    """What decided rule 1 on a compare() table (column p_less_holm) and the batch sizes where BatchNorm performs
    poorly: the largest Holm p among those, or, with none, the smallest of all (the nearest to a threshold). A p-value
    has no tolerance in points: never flagged fragile."""
    rows = cmp[cmp.batch_size.isin(poor)] if poor else cmp
    r = rows.loc[rows.p_less_holm.idxmax()] if poor else rows.loc[rows.p_less_holm.idxmin()]
    return Decision(f"BatchNorm below GroupNorm, the {'largest' if poor else 'smallest'} Holm-corrected one-sided p "
                    f"(batch size {int(r.batch_size)}): p = {r.p_less_holm:.3g} against {alpha:g}")


def lower_bounds(cmp: pd.DataFrame, alpha: float) -> pd.Series:
    """The one-sided (1 - alpha) lower bound of each compare() row's difference (diff, se, df)."""
    return pd.Series([r.diff - st.t.ppf(1 - alpha, r.df) * r.se for r in cmp.itertuples()], index=cmp.index)


def nowhere_decision(cmp: pd.DataFrame, tol: float, alpha: float) -> Decision:
    """What decided rule 1 where BatchNorm is significantly below GroupNorm nowhere (does not hold, or not shown) on a
    compare() table: the smallest one-sided (1 - alpha) lower bound of BatchNorm − GroupNorm over the batch sizes,
    against −tol (all above it: BatchNorm performs poorly nowhere)."""
    low = lower_bounds(cmp, alpha)
    r = cmp.loc[low.idxmin()]
    return Decision(f"BatchNorm − GroupNorm at batch size {int(r.batch_size)}: the smallest one-sided "
                    f"{1 - alpha:.0%} lower bound {low.min():+.2f} against the tolerance {-tol:+.2f}", low.min() + tol)
