"""The report's figures in seaborn's theme, drawn from stats() frames, runs and per-epoch records; each section pairs
one with its caption as a Figure. matplotlib and seaborn are imported on first use."""
import functools
from typing import NamedTuple

import numpy as np
import pandas as pd

from .stats import stats
from .text import NORM_LABEL, norm_label

NORM_COLORS = {"batch": "#0072B2", "group": "#D55E00", "layer": "#009E73", "instance": "#CC79A7",
               "none": "#555555"}  # Okabe-Ito: colour-blind safe, each at least 3:1 against white
RAMP = ("plasma", 0.0, 0.62)  # ordered values (batch sizes, depths): plasma cut before its light end (>= 3:1 on white)
SLOTS = 0.6  # log2 units that the dodged lines at one x share, so neighbouring x values (1 unit apart) stay apart
FIGURE = (5.2, 3.4)  # inches of a one-axis figure (1 inch is 96 CSS px in the page)
PANEL = (4.3, 3.1)  # inches of each panel of several: two panels and their legend fit a 1,000 px window


class Figure(NamedTuple):
    """A figure and its caption: the page numbers it and writes the caption under it (and as its alt text)."""
    fig: object
    caption: str


def _themed(plot):
    """Draw inside seaborn's whitegrid theme without changing the kernel's matplotlib settings."""
    @functools.wraps(plot)
    def themed(*args, **kwargs):
        import matplotlib.pyplot as plt
        import seaborn as sns
        with plt.rc_context({**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.1),
                             "legend.frameon": False}):
            return plot(*args, **kwargs)
    return themed


def _fig(ncols=1, sharey=False):
    import matplotlib.pyplot as plt
    w, h = FIGURE if ncols == 1 else PANEL
    fig, axes = plt.subplots(1, ncols, figsize=(w * ncols, h), squeeze=False, sharey=sharey, layout="constrained")
    return fig, axes[0]


def _label_first(axes) -> None:
    """Panels on a shared y axis: its label and tick labels on the first panel only."""
    for ax in axes[1:]:
        ax.set_ylabel("")
        ax.tick_params(labelleft=False)


def _order(values) -> list:
    """Norms in NORM_LABEL's order, anything else sorted."""
    values = list(dict.fromkeys(values))
    if all(v in NORM_LABEL for v in values):
        return [n for n in NORM_LABEL if n in values]
    return sorted(values)


def _colors(values) -> dict:
    """One colour per value: the norm's own, a ramp for ordered numbers, otherwise seaborn's colour-blind palette
    without its blue and oranges (BatchNorm's and GroupNorm's colours elsewhere in the report)."""
    import matplotlib
    import seaborn as sns
    if all(v in NORM_COLORS for v in values):
        return {v: NORM_COLORS[v] for v in values}
    if all(isinstance(v, (int, np.integer)) for v in values):
        name, lo, hi = RAMP
        return {v: matplotlib.colormaps[name](x) for v, x in zip(values, np.linspace(lo, hi, len(values)))}
    others = [c for i, c in enumerate(sns.color_palette("colorblind")) if i not in (0, 1, 3)]
    return dict(zip(values, others * (len(values) // len(others) + 1)))


def _log2_axis(ax, values, label: str) -> None:
    ticks = sorted(set(int(v) for v in values))
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(v) for v in ticks])
    ax.minorticks_off()
    ax.set_xlabel(label)


def _accuracy_axis(ax) -> None:
    """A CI from 2 seeds can span hundreds of points: keep the y axis on accuracies."""
    lo, hi = ax.get_ylim()
    ax.set_ylim(max(lo, 0), min(hi, 100))


def _legend(fig, axes) -> None:
    """One legend for all panels, right of them, off the data (panels share their lines' meaning)."""
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper")


@_themed
def plot_lines(s: pd.DataFrame, x: str, hue: str, ax=None, style="-", label=norm_label, runs=None, metric=None,
               slot=(0, 1)):
    """Mean ± 95% CI (error bars) of test accuracy against x (log2 axis), one line per value of hue. Lines are dodged
    along x so that their error bars do not overlap; `slot` (i, k) places this call's lines as the i-th of k sets drawn
    on one axis. With `runs`, every run's `metric` is a dot beside its line's mean, runs of one cell side by side."""
    own = ax is None  # a caller that passes its axis draws the legend
    if own:
        _, (ax,) = _fig()
    hues = _order(s[hue].unique())
    colors = _colors(hues)
    i, k = slot
    step = SLOTS / (len(hues) * k)
    for j, value in enumerate(hues):
        shift = (j * k + i - (len(hues) * k - 1) / 2) * step  # log2 units
        line = s[s[hue] == value].sort_values(x)
        ax.errorbar(line[x] * 2 ** shift, line["mean"], yerr=line.ci95.fillna(0), marker="o", markersize=4,
                    capsize=3, linestyle=style, color=colors[value], label=label(value), zorder=3)
        if runs is not None:  # a cell's runs in a row across the line's slot: equal values stay apart
            r = runs[runs[hue] == value].sort_values("seed")
            size = r.groupby(x)[x].transform("size")
            gap = min(step / 3, 0.8 * step / max(size.max() - 1, 1))
            ax.scatter(r[x] * 2 ** (shift + (r.groupby(x).cumcount() - (size - 1) / 2) * gap), r[metric], s=14,
                       color=colors[value], alpha=0.6, edgecolors="white", linewidths=0.5, zorder=4)
    _log2_axis(ax, s[x], x.replace("_", " "))
    ax.set_ylabel("test accuracy (%)")
    _accuracy_axis(ax)
    if own:
        _legend(ax.figure, [ax])
    return ax.figure


def plot_accuracy(runs, metric="final_acc"):
    """Accuracy vs batch size per norm: mean ± 95% CI over seeds and every run beside it, log2 x axis."""
    return plot_lines(stats(runs, metric), "batch_size", "norm", runs=runs[runs.status == "ok"], metric=metric)


@_themed
def plot_control(main: pd.DataFrame, ctrl: pd.DataFrame, names: tuple):
    """Two stats() frames on one axis, accuracy vs batch size per norm: the main grid's solid, a control's dashed;
    `names` are the two grids' names for the legend."""
    fig, (ax,) = _fig()
    for i, (s, name, style) in enumerate(zip((main, ctrl), names, ("-", "--"))):
        plot_lines(s, "batch_size", "norm", ax=ax, style=style, label=lambda n: f"{norm_label(n)} ({name})",
                   slot=(i, 2))
    _legend(fig, [ax])
    return fig


@_themed
def _epoch_panels(panels: list, sizes: list, sharey: bool, accuracy: bool):
    """One panel per (per-epoch records, column, ax.set arguments): the column's mean over seeds ± 95% CI (band)
    against the epoch, one line per batch size in `sizes`, one legend for all."""
    from matplotlib.ticker import MaxNLocator
    fig, axes = _fig(len(panels), sharey=sharey)
    colors = _colors(sizes)
    for ax, (ep, col, labels) in zip(axes, panels):
        for bs, line in stats(ep, col, ("batch_size", "epoch")).groupby("batch_size"):
            ax.plot(line.epoch, line["mean"], marker="o", markersize=3, color=colors[bs], label=f"batch size {bs}")
            ax.fill_between(line.epoch, line["mean"] - line.ci95, line["mean"] + line.ci95, color=colors[bs],
                            alpha=0.1, linewidth=0)
        ax.set(xlabel="epoch", **labels)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if accuracy:
        _accuracy_axis(axes[0])
    if sharey:
        _label_first(axes)
    _legend(fig, axes)
    return fig


def plot_curves(epochs, norms=None):
    """Learning curves: test accuracy per epoch (mean over seeds ± 95% CI), one panel per norm on a shared y axis,
    one line per batch size."""
    panels = [(epochs[epochs.norm == norm], "test_acc", {"title": norm_label(norm), "ylabel": "test accuracy (%)"})
              for norm in norms or _order(epochs.norm.unique())]
    return _epoch_panels(panels, sorted(epochs.batch_size.unique()), sharey=True, accuracy=True)


def plot_bn_gap(ep: pd.DataFrame):
    """BatchNorm's gap between batch and running statistics per epoch (mean over seeds), one line per batch size:
    the mean gap and the |log| variance ratio, one panel each (different quantities: their own y axes)."""
    panels = [(ep, col, {"ylabel": lab, "yscale": "log"})
              for col, lab in (("bn_mean_gap", "mean gap (running-std units)"),
                               ("bn_var_logratio", "|log(batch var / running var)|"))]
    return _epoch_panels(panels, sorted(ep.batch_size.unique()), sharey=False, accuracy=False)


@_themed
def plot_grad_profile(prof: pd.DataFrame):
    """A grad_profile() frame: mean |gradient| per conv layer, one panel per activation and norm on a shared y axis,
    one line per depth."""
    panels = sorted(prof.groupby(["activation", "norm"]).groups)
    fig, axes = _fig(len(panels), sharey=True)
    depths = sorted(prof.num_blocks.unique())
    colors = _colors(depths)
    for ax, (act, norm) in zip(axes, panels):
        cell = prof[(prof.activation == act) & (prof.norm == norm)]
        for d in depths:
            line = cell[cell.num_blocks == d]
            ax.plot(line.layer, line.grad, marker="o", markersize=3, color=colors[d], label=f"{d} blocks")
        ax.set(yscale="log", xlabel="conv layer (0 = stem)", title=f"{act}, {norm_label(norm)}")
    axes[0].set_ylabel("mean |grad| (epoch 1)")
    _label_first(axes)
    _legend(fig, axes)
    return fig


def svg_uri(fig) -> str:
    """The figure as an SVG data URI: sharp at any zoom, inside the page, and without the creation date, so that one
    figure gives one file."""
    import base64
    import io

    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    with plt.rc_context({"svg.hashsalt": "normlib"}):  # fixed ids, for the same reason
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()
