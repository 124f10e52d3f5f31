"""The original's expectations decided under the final and the best epoch side by side (our default metric and the
original's), and, where the two verdicts differ, the runs that make the difference: a verdict that changes with the
metric says so, and names them."""
from dataclasses import dataclass

import pandas as pd

from .original import PAIR, TOL
from .stats import ALPHA, stats
from .rules import outcomes
from .rules.outcome import verb

SIDE_BY_SIDE = ("final_acc", "best_acc")  # the final epoch (the report's default) and the best epoch (the original's)
EPOCH_WORDS = {"final_acc": "the final epoch", "best_acc": "the best epoch (the original's metric)"}


@dataclass
class Split:
    number: int  # the expectation, 1-based
    verdicts: dict  # {metric: verdict} for each of SIDE_BY_SIDE
    shorts: dict  # {metric: the verdict's key numbers in one line, with its leave-one-seed-out line}
    runs: pd.DataFrame  # the runs that make the difference: run_id and both metrics; empty where the verdicts agree

    @property
    def differ(self) -> bool:
        return len(set(self.verdicts.values())) > 1

    def text(self) -> str:
        """Where the verdicts differ: each metric's verdict and the runs that make the difference; '' otherwise."""
        if not self.differ:
            return ""
        (a, va), (b, vb) = self.verdicts.items()
        named = ", ".join(f"{r.run_id} ({a} {getattr(r, a):.2f}, {b} {getattr(r, b):.2f})"
                          for r in self.runs.itertuples())
        return (f"under {EPOCH_WORDS[a]} it {verb(va)}, under {EPOCH_WORDS[b]} it {verb(vb)}; the difference is made "
                f"by {named}, the {'run' if len(self.runs) == 1 else f'{len(self.runs)} runs'} whose two metrics "
                f"differ most: with {'its' if len(self.runs) == 1 else 'their'} `{b}` alone in place of `{a}`, the "
                f"verdict is already *{vb}*")

    def sentence(self, metric: str) -> str:
        """The verdict under the metrics of SIDE_BY_SIDE other than the report's `metric`, for a verdict's line."""
        others = [m for m in SIDE_BY_SIDE if m != metric]
        if self.differ:
            return f" **It changes with the metric**: {self.text()}." + "".join(
                f" Under `{m}`: {self.shorts[m]}" for m in others)
        return f" The same under {' and '.join(EPOCH_WORDS[m] for m in others)}."


def decide(runs: pd.DataFrame, metric: str, sizes, tol: float, alpha: float, borrowed=(), loso=False) -> list:
    """The three outcomes on the pair's runs under one metric; with `loso`, each with its leave-one-seed-out
    subsets."""
    return outcomes(stats(runs, metric), tol, alpha, runs=runs, metric=metric, batch_sizes=sizes, borrowed=borrowed,
                    loso=loso)


def swapped(runs: pd.DataFrame, ids, metric: str, other: str) -> pd.DataFrame:
    """The runs with `metric` replaced by `other` for the runs in ids."""
    out = runs.copy()
    at = out.run_id.isin(set(ids))
    out.loc[at, metric] = out.loc[at, other]
    return out


def deciding_runs(runs: pd.DataFrame, i: int, target: str, sizes, tol: float, alpha: float, borrowed=()) -> list:
    """The fewest runs, taken in order of how much their two metrics differ, whose `best_acc` alone in place of
    `final_acc` turns expectation i (0-based) into `target`, the best epoch's verdict."""
    a, b = SIDE_BY_SIDE
    gap = (runs[b] - runs[a]).abs()
    ordered = runs.assign(gap=gap)[gap > 0].sort_values(["gap", "run_id"], ascending=[False, True])
    for k in range(1, len(ordered) + 1):
        if decide(swapped(runs, ordered.run_id[:k], a, b), a, sizes, tol, alpha, borrowed)[i].verdict == target:
            return list(ordered.run_id[:k])
    return list(ordered.run_id)  # unreachable: every run swapped is the best epoch's verdict itself


def splits(runs: pd.DataFrame, sizes, tol: float = TOL, alpha: float = ALPHA, borrowed=()) -> list:
    """A Split per expectation: its verdict under each of SIDE_BY_SIDE, and where they differ the runs that make the
    difference."""
    runs = runs[runs.norm.isin(PAIR)]
    found = {m: decide(runs, m, sizes, tol, alpha, borrowed, loso=True) for m in SIDE_BY_SIDE}
    out = []
    for i in range(len(found[SIDE_BY_SIDE[0]])):
        verdicts = {m: found[m][i].verdict for m in SIDE_BY_SIDE}
        ids = (deciding_runs(runs, i, verdicts[SIDE_BY_SIDE[1]], sizes, tol, alpha, borrowed)
               if len(set(verdicts.values())) > 1 else [])
        named = runs.set_index("run_id").loc[ids, list(SIDE_BY_SIDE)].reset_index()
        out.append(Split(i + 1, verdicts, {m: found[m][i].short + "." + found[m][i].standing()
                                           for m in SIDE_BY_SIDE}, named))
    return out
