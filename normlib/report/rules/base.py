"""What every rule of the original's expectations is made of: Rule, the one interface (its name, the original's claim,
its rule in the report's words, decide), and Case, what a rule decides on (the pair's stats, runs, metric, batch sizes,
tolerance, level), with what several rules read computed once; and the texts the rules share."""
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from ..original import PAIR, TOL
from ..stats import ALPHA, compare
from ..text import norm_label, pval, sizes_text
from .outcome import Outcome


@dataclass
class Case:
    """The pair's stats() frame (ours or the original's table), the per-seed runs behind it (None: no per-seed records,
    so Welch's tests), the metric, every batch size tested (a cell missing from s is named, and a verdict that needs
    it cannot be evaluated), the tolerance, the level, and the batch sizes whose runs are another grid's."""
    s: pd.DataFrame
    runs: pd.DataFrame = None
    metric: str = "final_acc"
    sizes: list = field(default_factory=list)
    tol: float = TOL
    alpha: float = ALPHA
    borrowed: tuple = ()

    @cached_property
    def gaps(self) -> list:
        """missing_cells() of the pair at every batch size tested."""
        return missing_cells(self.s, self.sizes)

    @cached_property
    def cmp(self) -> pd.DataFrame:
        """compare() of BatchNorm against GroupNorm at the batch sizes where both have >= 2 runs."""
        cmp = compare(self.s, *PAIR, runs=self.runs, metric=self.metric).sort_values("batch_size")
        return cmp[cmp.p_less.notna()]

    @property
    def complete(self) -> bool:
        """Whether the threshold rule can be evaluated: no cell missing, and >= 2 batch sizes compared."""
        return not self.gaps and len(self.cmp) > 1

    @cached_property
    def split(self) -> tuple:
        """(N, the batch sizes where BatchNorm performs poorly) by threshold() when complete, else (None, [])."""
        return threshold(self.cmp, self.alpha) if self.complete else (None, [])

    @property
    def n(self):
        """N, the smallest batch size from which on BatchNorm never performs poorly; None when there is none or the
        cells are incomplete."""
        return self.split[0]

    @property
    def poor(self) -> list:
        return self.split[1]

    @property
    def nowhere(self) -> bool:
        """BatchNorm performs poorly at no batch size (so N is the smallest tested)."""
        return self.n is not None and not self.poor


class Rule(ABC):
    """One of the original's expectations: `name` (how the report asks for it, rules.rule(name)), `claim` (the
    original's words), text() (its rule in the report's words) and decide() (its Outcome on a Case)."""
    name: str
    claim: str

    @abstractmethod
    def text(self, tol: float, alpha: float) -> str:
        """How the expectation is decided, in words, as the report prints it. Four verdicts: holds, does not hold
        (evidence against), not shown (no evidence either way at this power) and cannot be evaluated (cells missing,
        or one run per cell: one seed describes and never decides)."""

    @abstractmethod
    def decide(self, case: Case) -> Outcome:
        """The expectation decided on `case`: self.outcome(case, ...)."""

    def outcome(self, case: Case, verdict: str, evidence: str, short: str, decision=None, **more) -> Outcome:
        """An Outcome of this rule on `case`, with its claim and its rule's text."""
        return Outcome(self.name, self.claim, self.text(case.tol, case.alpha), verdict, evidence, short,
                       decision=decision, **more)


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
    if len(per_bs) == 1:  # steps across batch sizes: nothing to compare yet
        (b, vs), = per_bs.items()
        return f"Only batch size {b} has runs: {' / '.join(f'{v:,}' for v in vs)} optimizer steps per run."
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


def band_text(r) -> str:
    """One difference with the intervals that decide it: 'batch size 8: +5.00, 90% CI [..], simultaneous 98% CI
    [..] → beyond'."""
    return (f"{r.diff:+.2f}, {r.level:.0%} CI [{r.lo:+.2f}, {r.hi:+.2f}], simultaneous {r.slevel:.1%} CI "
            f"[{r.slo:+.2f}, {r.shi:+.2f}] → {r.label}")
