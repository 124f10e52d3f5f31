"""The original's expected outcomes as objects: RULES maps each rule's name to its Rule (base.py), in the original's
order, and outcomes() decides every one on a stats() frame. A new expectation is one Rule in RULES. The other sections
ask a rule by name: rule("within"), number("within"), named(found, "threshold")."""
from dataclasses import replace
from difflib import get_close_matches

import pandas as pd

from ..original import PAIR, TOL
from ..stats import ALPHA, stats
from .base import Case, Rule, steps_note
from .outcome import Outcome
from .stability import STABILITY
from .threshold import THRESHOLD
from .within import WITHIN

RULES = {r.name: r for r in (THRESHOLD, STABILITY, WITHIN)}  # name: Rule, numbered 1, 2, ... in this order


def rule(name: str) -> Rule:
    """The rule called `name`; ValueError naming the rules there are."""
    if name not in RULES:
        close = get_close_matches(name, RULES, n=1)
        raise ValueError(f"rule={name!r}: allowed {', '.join(RULES)}" + (f" (did you mean {close[0]!r}?)"
                                                                         if close else ""))
    return RULES[name]


def number(name: str) -> int:
    """The expectation's number in the report (1-based, in the order of RULES)."""
    return list(RULES).index(rule(name).name) + 1


def named(found: list, name: str) -> Outcome:
    """The outcome of rule `name` among outcomes()' list."""
    return next(o for o in found if o.name == rule(name).name)


def outcomes(s: pd.DataFrame, tol: float = TOL, alpha: float = ALPHA, runs=None, metric: str = "final_acc",
             batch_sizes=(), steps=None, borrowed=(), loso: bool = True) -> list:
    """Every rule of RULES decided on a stats() frame of BatchNorm and GroupNorm (ours or the original's). `runs`
    (per-seed records) allow paired tests; `batch_sizes` are those tested (a cell missing from s is named, and a
    verdict that needs it cannot be evaluated); `steps` ({batch size: [steps per run]}) are stated in every verdict;
    `borrowed` batch sizes hold another grid's runs (a control's cells taken from the main grid) and stay out of
    the within rule's average. With `loso` and per-seed runs, each outcome holds the verdicts of the subsets that
    leave one seed out."""
    s = s[s.norm.isin(PAIR)]
    sizes = sorted({int(b) for b in batch_sizes} | {int(b) for b in s.batch_size})
    case = Case(s, runs, metric, sizes, tol, alpha, borrowed)
    steps_txt = " " + steps_note(steps, short=True) if steps else ""
    found = [replace(o, evidence=o.evidence.rstrip(".") + "." + steps_txt)
             for o in (r.decide(case) for r in RULES.values())]
    seeds = sorted(set(runs.seed)) if loso and runs is not None and "seed" in runs else []
    for seed in seeds if len(seeds) > 1 else []:
        rest = runs[runs.seed != seed]
        without = outcomes(stats(rest, metric), tol, alpha, runs=rest, metric=metric, batch_sizes=sizes,
                           borrowed=borrowed, loso=False)
        for o, w in zip(found, without):
            o.subsets[int(seed)] = w.verdict
    return found
