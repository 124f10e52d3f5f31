"""Control grids: what a grid controls for against the main grid (equal optimizer steps, a learning rate scaled with
the batch size), and the runs that make up its cells, some taken from the main grid where its runs are exactly what
the control would have run (a control grid may leave those out: e.g. batch size 16 when it sets the steps or the base
batch)."""
import numpy as np
import pandas as pd

from ..config import RunConfig
from .load import Grid
from .text import PROTOCOL_KEYS, int_list

CONTROL_KEYS = ("lr_scaling", "base_batch", "steps")  # what a control grid changes relative to its baseline
SCALING = {  # lr_scaling: how the report names it and the rule (config.RunConfig.effective_lr computes it)
    "linear": ("linearly with the batch size", "lr × batch size / {base}"),
    "sqrt": ("with the square root of the batch size", "lr × √(batch size / {base})"),
}


def control_kind(runs: pd.DataFrame) -> str:
    """What a grid controls for, from its runs: equal steps and/or a learning rate scaled by a rule; '' for neither."""
    ok = runs[runs.status == "ok"]
    kinds = []
    if (ok.steps > 0).any():
        kinds.append(f"equal number of optimizer steps ({int_list(sorted(ok.steps.unique()))} for every batch size)")
    for name, (how, rule) in SCALING.items():
        scaled = ok[ok.lr_scaling == name]
        if len(scaled):
            base = int_list(sorted(scaled.base_batch.unique()))
            kinds.append(f"learning rate scaled {how} ({rule.format(base=base)})")
    return " and ".join(kinds)


def control_caveat(runs: pd.DataFrame) -> str:
    """What a control changes besides the thing it controls for, so that a verdict that moves under it is read as a
    dependence, not a cause."""
    ok = runs[runs.status == "ok"]
    parts = []
    if (ok.steps > 0).any():
        seen = (ok.steps_run * ok.batch_size).groupby(ok.batch_size).median()
        parts.append(f"Equal steps means unequal images: a run sees {int(seen.iloc[0]):,} training images at batch "
                     f"size {int(seen.index[0])} and {int(seen.iloc[-1]):,} at {int(seen.index[-1])}. A verdict that "
                     f"changes here shows a dependence on the training budget, not which part of it (updates or "
                     f"images) is the cause, nor that batch statistics are.")
    if ok.lr_scaling.isin(list(SCALING)).any():
        parts.append("A scaled learning rate changes the step size at every batch size but the base one. A verdict "
                     "that changes here shows a dependence on the learning rate at those batch sizes, not that "
                     "batch statistics play no part.")
    return " ".join(parts)


def control_label(runs: pd.DataFrame) -> str:
    """control_kind in a few words: 'equal steps', 'sqrt lr scaling', ..."""
    ok = runs[runs.status == "ok"]
    return " and ".join((["equal steps"] if (ok.steps > 0).any() else [])
                        + [f"{name} lr scaling" for name in SCALING if (ok.lr_scaling == name).any()])


def confounds(base: pd.DataFrame, other: pd.DataFrame) -> list:
    """The protocol parameters, besides norm, batch size and the control's own, whose values differ between two sets
    of runs."""
    return [k for k in PROTOCOL_KEYS if k not in ("norm", "batch_size", *CONTROL_KEYS) and k in base and k in other
            and sorted(base[k].unique().tolist()) != sorted(other[k].unique().tolist())]


def control_runs(main: Grid, ctrl: Grid) -> tuple:
    """The control's successful runs plus the main grid's at every (norm, batch size) the control did not run where
    the main grid's runs already have the control's step count and learning rate (and nothing else differs):
    (runs, [(norm, batch size) taken from the main grid])."""
    base, other = main.ok, ctrl.ok
    rule = ("lr", "lr_scaling", "base_batch", "steps")
    if other.empty or confounds(base, other) or any(other[k].nunique() > 1 for k in rule):
        return other, []
    first = other.iloc[0]
    have = set(zip(other.norm, other.batch_size))
    taken = []
    for (norm, bs), runs in base.groupby(["norm", "batch_size"]):
        lr = RunConfig(lr=float(first.lr), lr_scaling=first.lr_scaling, base_batch=int(first.base_batch),
                       batch_size=int(bs)).effective_lr
        if ((norm, bs) not in have and np.allclose(runs.effective_lr, lr)
                and (first.steps == 0 or (runs.steps_run == first.steps).all())):
            taken.append((norm, int(bs)))
    cells = set(taken)
    return pd.concat([other, base[[c in cells for c in zip(base.norm, base.batch_size)]]], ignore_index=True), taken
