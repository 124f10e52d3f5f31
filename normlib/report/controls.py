"""Control grids: what a grid controls for against the main grid (CONTROLS, one row per kind: equal optimizer steps,
a learning rate scaled with the batch size), the runs that make up its cells, some taken from the main grid where its
runs are exactly what the control would have run (a control grid may leave those out: e.g. batch size 16 when it sets
the steps or the base batch), and the control section."""
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from ..config import RunConfig
from .load import Grid
from .plots import Figure, plot_control
from .stats import ALPHA, cell_test, holm, samples, stats, trend
from .tables import Table
from ..config import PROTOCOL_KEYS
from .text import int_list, intro, mean_std, norm_label, plus_minus, protocol, pval

SCALING = {  # lr_scaling: how the report names it and the rule (config.RunConfig.effective_lr computes it)
    "linear": ("linearly with the batch size", "lr × batch size / {base}"),
    "sqrt": ("with the square root of the batch size", "lr × √(batch size / {base})"),
}


def steps_kinds(ok: pd.DataFrame) -> list:
    return [f"equal number of optimizer steps ({int_list(sorted(ok.steps.unique()))} for every batch size)"]


def steps_caveat(ok: pd.DataFrame) -> str:
    seen = (ok.steps_run * ok.batch_size).groupby(ok.batch_size).median()
    return (f"Equal steps means unequal images: a run sees {int(seen.iloc[0]):,} training images at batch size "
            f"{int(seen.index[0])} and {int(seen.iloc[-1]):,} at {int(seen.index[-1])}. A verdict that changes here "
            f"shows a dependence on the training budget, not which part of it (updates or images) is the cause, nor "
            f"that batch statistics are.")


def scaling_kinds(ok: pd.DataFrame) -> list:
    kinds = []
    for name, (how, rule) in SCALING.items():
        scaled = ok[ok.lr_scaling == name]
        if len(scaled):
            base = int_list(sorted(scaled.base_batch.unique()))
            kinds.append(f"learning rate scaled {how} ({rule.format(base=base)})")
    return kinds


class Control(NamedTuple):
    """A kind of control grid: which successful runs make a grid one, and how the report names it and reads it."""
    keys: tuple  # the run parameters it changes relative to its baseline
    marks: Callable  # successful runs -> whether each is this control's
    kinds: Callable  # successful runs -> what the grid controls for, a phrase per rule it uses
    labels: Callable  # successful runs -> the same in a few words each
    caveat: Callable  # successful runs -> what it changes besides what it controls for
    given: str  # how a grid becomes this control, and
    tests: str  # what it tests, both for the key findings when no control is given


CONTROLS = (  # in the order the report names them
    Control(keys=("steps",), marks=lambda ok: ok.steps > 0, kinds=steps_kinds, labels=lambda ok: ["equal steps"],
            caveat=steps_caveat, given="`steps > 0`", tests="equal steps"),
    Control(keys=("lr_scaling", "base_batch"), marks=lambda ok: ok.lr_scaling.isin(list(SCALING)), kinds=scaling_kinds,
            labels=lambda ok: [f"{name} lr scaling" for name in SCALING if (ok.lr_scaling == name).any()],
            caveat=lambda ok: "A scaled learning rate changes the step size at every batch size but the base one. A "
                              "verdict that changes here shows a dependence on the learning rate at those batch "
                              "sizes, not that batch statistics play no part.",
            given="`lr_scaling` " + " or ".join(SCALING), tests="a scaled learning rate"),
)
CONTROL_KEYS = tuple(k for c in CONTROLS for k in c.keys)  # what a control grid changes relative to its baseline


def controls_of(runs: pd.DataFrame) -> tuple:
    """(the successful runs, the CONTROLS that they make the grid)."""
    ok = runs[runs.status == "ok"]
    return ok, [c for c in CONTROLS if c.marks(ok).any()]


def control_kind(runs: pd.DataFrame) -> str:
    """What a grid controls for, from its runs: equal steps and/or a learning rate scaled by a rule; '' for neither."""
    ok, kinds = controls_of(runs)
    return " and ".join(k for c in kinds for k in c.kinds(ok))


def control_caveat(runs: pd.DataFrame) -> str:
    """What a control changes besides the thing it controls for, so that a verdict that moves under it is read as a
    dependence, not a cause."""
    ok, kinds = controls_of(runs)
    return " ".join(c.caveat(ok) for c in kinds)


def control_label(runs: pd.DataFrame) -> str:
    """control_kind in a few words: 'equal steps', 'sqrt lr scaling', ..."""
    ok, kinds = controls_of(runs)
    return " and ".join(k for c in kinds for k in c.labels(ok))


def none_given() -> str:
    """The key findings' line when no extra grid is a control."""
    return (f"- **Controls**: none given (a grid with {', or '.join(c.given for c in CONTROLS)}, as an extra grid), so "
            f"whether these effects survive {' or '.join(c.tests for c in CONTROLS)} is not tested.")


UNPOOLED = ("engine",)  # not shown equivalent (bench/equivalence.py): runs that differ in it are never pooled


def confounds(base: pd.DataFrame, other: pd.DataFrame) -> list:
    """The protocol parameters, besides norm, batch size and the control's own, whose values differ between two sets
    of runs, and the engine: until the equivalence benchmark passes, stacked and per-run records are not pooled, so
    no section borrows the other engine's runs and a control trained by the other engine is confounded by it."""
    return [k for k in (*PROTOCOL_KEYS, *UNPOOLED) if k not in ("norm", "batch_size", *CONTROL_KEYS) and k in base
            and k in other and sorted(base[k].unique().tolist()) != sorted(other[k].unique().tolist())]


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


# ---------------------------------------------------------------- the section

def _control_rows(shared: pd.DataFrame, base: pd.DataFrame, other: pd.DataFrame, metric: str, tested: bool) -> list:
    """Per norm and batch size both grids ran: both means and control − main; with `tested`, its 95% CI and the
    Holm-corrected p (across batch sizes within each norm) of a paired or Welch t-test, else the difference alone."""
    rows = []
    x_main, x_ctrl = samples(base, metric, ("norm", "batch_size")), samples(other, metric, ("norm", "batch_size"))
    for norm, per_norm in shared.groupby("norm"):
        tests = [cell_test(pd.Series({"mean": r.mean_c, "std": r.std_c, "n": r.n_c}),
                           pd.Series({"mean": r.mean_b, "std": r.std_b, "n": r.n_b}),
                           x_ctrl.get((norm, r.batch_size)), x_main.get((norm, r.batch_size)))
                 for r in per_norm.itertuples()]
        for r, x, h in zip(per_norm.itertuples(), tests, holm([x["p"] for x in tests])):
            row = {"norm": norm_label(norm), "batch size": int(r.batch_size),
                   "main": mean_std(r.mean_b, r.std_b, r.n_b), "control": mean_std(r.mean_c, r.std_c, r.n_c)}
            rows.append({**row, "control − main (95% CI)": plus_minus(x["diff"], x["ci95"]), "Holm p": pval(h),
                         "test": x["test"]} if tested else {**row, "control − main": f"{x['diff']:+.2f}"})
    return rows


def _trend_line(norm: str, main_stats: pd.DataFrame, full_stats: pd.DataFrame, alpha: float) -> str:
    """How much of a norm's trend from its best batch size upwards the control removes, and how far the smallest
    batch size falls below the best in each grid (a fall that both norms share is not BatchNorm's)."""
    main_norm, ctrl_norm = main_stats[main_stats.norm == norm], full_stats[full_stats.norm == norm]
    ref = int(main_norm.batch_size.iloc[main_norm["mean"].argmax()])
    line = f"**{norm_label(norm)}**: its best batch size in the main grid is {ref}"
    small = int(ctrl_norm.batch_size.min())
    falls = [f"{g['mean'][g.batch_size == small].iloc[0] - g['mean'].max():+.2f} points in the {name}"
             for g, name in ((main_norm, "main grid"), (ctrl_norm, "control")) if small in set(g.batch_size)]
    fall = f" At batch size {small} it is from its best batch size " + " and ".join(falls) + "." if falls else ""
    main_trend = trend(main_norm[main_norm.batch_size >= ref])
    ctrl_trend = trend(ctrl_norm[ctrl_norm.batch_size >= ref])
    if np.isnan(main_trend["slope"]) or np.isnan(ctrl_trend["slope"]):
        return line + "; the two grids do not both have two batch sizes from there on: no trend to compare." + fall
    line += (f"; from there upwards accuracy changes by {plus_minus(main_trend['slope'], main_trend['ci95'])} "
             f"points per doubling in the main grid and {plus_minus(ctrl_trend['slope'], ctrl_trend['ci95'])} in "
             f"the control (slope ± 95% CI).")
    if np.isnan(main_trend["ci95"]) or main_trend["p"] >= alpha:
        return line + (f" The main grid's trend is not significant (p = {pval(main_trend['p'])}), so no share of it "
                       f"is attributed.") + fall
    return line + (f" The control removes {1 - ctrl_trend['slope'] / main_trend['slope']:.0%} of the main grid's "
                   f"trend (1 − control slope / main slope).") + fall


def control_section(main: Grid, ctrl: Grid, metric: str, alpha: float = ALPHA) -> list:
    """A control grid against the main grid: its setup, what it confounds, accuracy per norm and batch size in both
    (on the cells both ran) with their difference (tested only with >= 2 runs per cell: one seed describes), and how
    much of the large-batch trend the control removes."""
    kind = control_kind(ctrl.runs)
    if not kind or ctrl is main:
        return []
    base, other = main.ok, ctrl.ok
    if control_kind(main.runs):
        return [intro(f"Control: {kind}", ctrl), f"Not compared: the main grid `{main.name}` is itself a control "
                f"({control_kind(main.runs)}); render with the baseline grid as `grid`."]
    cells, taken = control_runs(main, ctrl)
    main_stats, ctrl_stats, full_stats = stats(base, metric), stats(other, metric), stats(cells, metric)
    shared = main_stats.merge(ctrl_stats, on=["norm", "batch_size"], suffixes=("_b", "_c"))
    if shared.empty:
        return [intro(f"Control: {kind}", ctrl), f"No (norm, batch size) in common with the main grid `{main.name}`."]
    confound = confounds(base, other)
    tested = bool((shared.n_c >= 2).all() and (shared.n_b >= 2).all())
    items = [intro(f"Control: {kind}", ctrl),
             f"Baseline: the main grid `{main.name}` (protocol — {protocol(base)})."
             + (f" **The two grids also differ in {', '.join(confound)}: the comparison is confounded.**"
                if confound else "")
             + (" Taken from the main grid, whose runs there already have the control's step count and learning "
                "rate: " + "; ".join(f"({norm_label(n)}, {b})" for n, b in taken) + "." if taken else ""),
             f"**What this control confounds.** {control_caveat(other)}",
             Table(pd.DataFrame(control_setup(shared, base, other)),
                   f"Setup per batch size of the main grid `{main.name}` and the control `{ctrl.name}`, from the "
                   f"records: optimizer steps, images seen, epochs and learning rate.")]
    how = ("a paired t-test over seeds where both have every seed (the runs share the initialisation seed and the data "
           "order), Welch's t-test otherwise; p Holm-corrected across batch sizes within each norm." if tested else
           "one run per cell in at least one grid, so the differences describe and no test decides.")
    norms = [n for n in main_stats.norm.unique() if n in set(shared.norm)]
    items += [Table(pd.DataFrame(_control_rows(shared, base, other, metric, tested)),
                    f"Test accuracy (%, {metric}), main grid vs control, on the cells both grids ran (mean ± std over "
                    f"seeds, n runs): {how}"),
              "\n\n".join(_trend_line(n, main_stats, full_stats, alpha) for n in norms)]
    spread_of = "mean ± 95% CI over seeds" if tested else "mean over seeds (one run per cell: no interval)"
    items.append(Figure(plot_control(main_stats[main_stats.norm.isin(shared.norm)],
                                     full_stats[full_stats.norm.isin(shared.norm)], (main.name, ctrl.name)),
                        f"Test accuracy ({metric}) against batch size, main grid `{main.name}` (solid) and control "
                        f"`{ctrl.name}` (dashed), {spread_of}."))
    return items


def control_setup(shared: pd.DataFrame, base: pd.DataFrame, other: pd.DataFrame) -> list:
    """Per batch size both grids ran: steps, epochs run, images seen and learning rate, from the records."""
    setup = []
    for bs in sorted(shared.batch_size.unique()):
        main_bs, ctrl_bs = base[base.batch_size == bs], other[other.batch_size == bs]
        setup.append({"batch size": int(bs), "steps (main)": int_list(sorted(main_bs.steps_run.unique())),
                      "steps (control)": int_list(sorted(ctrl_bs.steps_run.unique())),
                      "images seen (control)": int_list(sorted((ctrl_bs.steps_run * bs).unique())),
                      "epochs run (control)": int_list(sorted(ctrl_bs.epochs_run.unique())),
                      "lr (main)": ", ".join(f"{v:.3g}" for v in sorted(main_bs.effective_lr.unique())),
                      "lr (control)": ", ".join(f"{v:.3g}" for v in sorted(ctrl_bs.effective_lr.unique()))})
    return setup
