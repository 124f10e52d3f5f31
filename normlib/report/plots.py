"""The report's figures in seaborn's theme, drawn from stats() frames, runs and per-epoch records; each section pairs
one with its caption as a Figure. matplotlib and seaborn are imported on first use."""
import functools
from typing import NamedTuple

import numpy as np
import pandas as pd

from .stats import stats
from .. import norms
from .text import norm_label, plural

RAMP = ((36.0, 56.0), 60.0, (255.0, 12.0))  # ordered values (batch sizes, depths): CIE LCh(uv) lightness from 36
# to 56 at chroma 60, hue from blue (255) through green to red (12), both evenly spaced, so that neighbours are about
# equally far apart to the eye, the ends differ in hue and lightness, and every colour keeps >= 3:1 against white
SLOTS = 0.7  # log2 units that the dodged lines at one x share, so neighbouring x values (1 unit apart) stay apart
FIGURE = (7.4, 4.2)  # inches of a one-axis figure (1 inch is 96 CSS px in the page): its legend goes under the axis
PANEL = (4.5, 3.2)  # inches of each panel of a row: two panels and their legend fit a 1,000 px window
SMALL = (2.5, 2.2)  # inches of each of many small panels (small multiples), four to a row
BAND = 0.12  # opacity of a 95% CI band: light enough that two overlapping bands leave both lines readable


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


def _fig(ncols=1, sharey=False, nrows=1, size=None):
    """A figure of nrows x ncols axes (a flat array), each of `size` inches (by default FIGURE for one axis, PANEL
    for several), panels kept apart so that one's y label never meets its neighbour."""
    import matplotlib.pyplot as plt
    w, h = size or (FIGURE if ncols * nrows == 1 else PANEL)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False, sharey=sharey,
                             layout="constrained")
    fig.get_layout_engine().set(w_pad=0.06, wspace=0.08)
    return fig, axes.ravel()


def _label_first(axes) -> None:
    """Panels on a shared y axis: its label and tick labels on the first panel only."""
    for ax in axes[1:]:
        ax.set_ylabel("")
        ax.tick_params(labelleft=False)


def _order(values) -> list:
    """Norms in normlib.norms's order, anything else sorted."""
    values = list(dict.fromkeys(values))
    if all(v in norms.NORMS for v in values):
        return [n for n in norms.NORMS if n in values]
    return sorted(values)


def _colors(values) -> dict:
    """One colour per value: the norm's own, a ramp for ordered numbers, otherwise seaborn's colour-blind palette
    without its blue and oranges (BatchNorm's and GroupNorm's colours elsewhere in the report)."""
    import seaborn as sns
    if all(v in norms.NORMS for v in values):
        return {v: norms.NORMS[v].color for v in values}
    if all(isinstance(v, (int, np.integer)) for v in values):
        return dict(zip(values, ramp(len(values))))
    others = [c for i, c in enumerate(sns.color_palette("colorblind")) if i not in (0, 1, 3)]
    return dict(zip(values, others * (len(values) // len(others) + 1)))


def ramp(n: int) -> list:
    """n colours for ordered values, evenly spaced along RAMP (one colour: its first end)."""
    from seaborn.external import husl
    lightness, chroma, hues = RAMP
    return [tuple(np.clip(husl.lch_to_rgb(light, chroma, h), 0, 1))  # the greens just outside sRGB: clipped
            for light, h in zip(np.linspace(*lightness, n), np.linspace(*hues, n))]


def _log2_axis(ax, values, label: str, tick=str) -> None:
    """A log2 x axis with a tick at every value, written by `tick`, and no minor ticks."""
    ticks = sorted(set(int(v) for v in values))
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [tick(v) for v in ticks])
    ax.minorticks_off()
    ax.set_xlabel(label)


def _interval(mean, half, bounds=(0.0, 100.0)) -> tuple:
    """(lower, upper) error lengths of mean ± half, cut at an accuracy's bounds: a CI from 2 seeds can span hundreds
    of points, and the axis must hold every interval it draws."""
    mean, half = np.asarray(mean, float), np.nan_to_num(np.asarray(half, float))
    return np.minimum(half, mean - bounds[0]), np.minimum(half, bounds[1] - mean)


def _plain_log_y(ax) -> None:
    """A log y axis whose ticks read as plain numbers (0.05, 0.1, 0.2), at 1, 2 and 5 of each decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _legend(fig, axes, below=False) -> None:
    """One legend for all panels (each label once, in the order the panels first draw it), off the data: right of
    them, or `below` them in columns, so that a one-axis figure keeps its width for the plot."""
    drawn = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            drawn.setdefault(label, handle)
    handles, labels = list(drawn.values()), list(drawn)
    if below:
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels) if len(labels) <= 3 else
                   -(-len(labels) // 2))
    else:
        fig.legend(handles, labels, loc="outside right upper")


@_themed
def plot_lines(s: pd.DataFrame, x: str, hue: str, ax=None, style="-", label=norm_label, runs=None, metric=None,
               slot=(0, 1), min_n=2):
    """Mean ± 95% CI (error bars) of test accuracy against x (log2 axis), one line per value of hue. Lines are dodged
    along x so that their error bars do not overlap; `slot` (i, k) places this call's lines as the i-th of k sets drawn
    on one axis. With `runs`, every run's `metric` is a dot right of its line's error bar, runs of one cell side by
    side, so that neither hides the other. A cell with fewer than `min_n` runs gets no bar (with 2 seeds a 95% CI is
    12.7 standard errors wide each way: its seeds' dots say more)."""
    own = ax is None  # a caller that passes its axis sets the ticks and draws the legend
    if own:
        _, (ax,) = _fig()
    hues = _order(s[hue].unique())
    colors = _colors(hues)
    i, k = slot
    step = SLOTS / (len(hues) * k)
    for j, value in enumerate(hues):
        shift = (j * k + i - (len(hues) * k - 1) / 2) * step  # log2 units
        line = s[s[hue] == value].sort_values(x)
        bar = shift - step / 4 if runs is not None else shift  # the bar left in its slot, the dots right of it
        half = line.ci95.where(line.n >= min_n, 0.0)
        ax.errorbar(line[x] * 2 ** bar, line["mean"], yerr=_interval(line["mean"], half), marker="o",
                    markersize=4, capsize=3, linestyle=style, color=colors[value], label=label(value), zorder=3)
        if runs is not None:  # a cell's runs in a row right of its bar: equal values stay apart
            r = runs[runs[hue] == value].sort_values("seed")
            size = r.groupby(x)[x].transform("size")
            gap = 0.45 * step / max(size.max(), 1)
            ax.scatter(r[x] * 2 ** (shift + step / 4 + (r.groupby(x).cumcount() - (size - 1) / 2) * gap), r[metric],
                       s=22, color=colors[value], alpha=0.75, edgecolors="white", linewidths=0.6, zorder=4)
    ax.set_ylabel("test accuracy (%)")
    if own:
        _log2_axis(ax, s[x], {"num_blocks": "number of blocks"}.get(x, x.replace("_", " ")))
        _legend(ax.figure, [ax], below=True)
    return ax.figure


@_themed
def plot_groups(s: pd.DataFrame, width: int, reference=None, marked: int = 4, runs=None, metric=None):
    """GroupNorm's accuracy (a stats() frame by batch_size and groups) against channels per group (log2 axis, the
    number of groups under each tick), one line per batch size; `reference` (a stats() frame of BatchNorm by batch
    size) as a dashed line with its 95% CI band in each batch size's colour; a dotted line at `marked` groups; with
    `runs`, every run's `metric` as a dot."""
    _, (ax,) = _fig()
    one = s.batch_size.nunique() == 1  # one batch size: each norm in its own colour; else one colour per batch size
    hue = "norm" if one else "batch_size"
    s = s.assign(channels=width // s.groups, norm="group")
    bs = int(s.batch_size.iloc[0])
    plot_lines(s, "channels", hue, ax=ax, label=lambda v: f"GroupNorm, batch size {bs if one else v}",
               runs=None if runs is None else runs.assign(channels=width // runs.groups), metric=metric)
    colors = _colors(_order(s.batch_size.unique()))
    for r in ([] if reference is None else reference.itertuples()):
        color = norms.NORMS["batch"].color if one else colors.get(r.batch_size, norms.NORMS["batch"].color)
        ax.axhline(r.mean, linestyle="--", color=color, label=f"BatchNorm, batch size {r.batch_size}")
        if r.n >= 2:
            ax.axhspan(*(r.mean + np.array([-1, 1]) * r.ci95), color=color, alpha=BAND, linewidth=0)
    ax.axvline(width // marked, linestyle=":", color="#555555", label=f"the original's {marked} groups")
    _log2_axis(ax, s.channels, "channels per group (number of groups)", lambda c: f"{c}\n({width // c})")
    _legend(ax.figure, [ax], below=True)
    return ax.figure


def plot_accuracy(runs, metric="final_acc"):
    """Accuracy vs batch size per norm: mean ± 95% CI over seeds and every run beside it, log2 x axis."""
    return plot_lines(stats(runs, metric), "batch_size", "norm", runs=runs[runs.status == "ok"], metric=metric)


@_themed
def plot_control(main: pd.DataFrame, ctrl: pd.DataFrame, names: tuple):
    """Two stats() frames on one axis, accuracy vs batch size per norm: the main grid's solid, a control's dashed,
    a tick at every batch size either has; `names` are the two grids' names for the legend, under the axis."""
    fig, (ax,) = _fig()
    for i, (s, name, style) in enumerate(zip((main, ctrl), names, ("-", "--"))):
        plot_lines(s, "batch_size", "norm", ax=ax, style=style, label=lambda n: f"{norm_label(n)} ({name})",
                   slot=(i, 2))
    _log2_axis(ax, pd.concat([main.batch_size, ctrl.batch_size]), "batch size")
    _legend(fig, [ax], below=True)
    return fig


def _epoch_lines(ax, ep: pd.DataFrame, col: str, by: str, colors: dict, label, band: bool, bounds=None) -> None:
    """On one axis: `col`'s mean over seeds per epoch, one line per value of `by`, with its 95% CI as a light band
    (cut at `bounds`, the quantity's range) when `band`."""
    for value, line in stats(ep, col, (by, "epoch")).groupby(by):
        ax.plot(line.epoch, line["mean"], marker="o", markersize=3, color=colors[value], label=label(value))
        if band:
            lo, hi = _interval(line["mean"], line.ci95, bounds)
            ax.fill_between(line.epoch, line["mean"] - lo, line["mean"] + hi, color=colors[value], alpha=BAND,
                            linewidth=0)


def _epoch_axis(ax) -> None:
    """Epochs on the x axis, whole numbers only: with min_n_ticks=1 a single epoch gets its one tick (the default
    wants two whole numbers in view, and short of them ticks at 0.94 ... 1.06)."""
    from matplotlib.ticker import MaxNLocator
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


@_themed
def plot_curves(epochs, norms=None):
    """Learning curves as small multiples: one panel per batch size (four to a row, a shared y axis), test accuracy
    per epoch of each norm (mean over seeds ± 95% CI band), so that each panel compares two or three lines."""
    norms = list(norms or _order(epochs.norm.unique()))
    sizes = sorted(epochs.batch_size.unique())
    cols = min(len(sizes), 4)
    fig, axes = _fig(cols, sharey=True, nrows=-(-len(sizes) // cols), size=SMALL)
    colors = _colors(norms)
    for ax, bs in zip(axes, sizes):
        cell = epochs[(epochs.batch_size == bs) & epochs.norm.isin(norms)]
        _epoch_lines(ax, cell, "test_acc", "norm", colors, norm_label, band=True, bounds=(0.0, 100.0))
        ax.set_title(f"batch size {bs}")
        _epoch_axis(ax)
    for ax in axes[len(sizes):]:
        ax.set_axis_off()
    for row in range(0, len(axes), cols):
        axes[row].set_ylabel("test accuracy (%)")
        for ax in axes[row + 1:row + cols]:
            ax.tick_params(labelleft=False)
    _legend(fig, axes, below=True)
    return fig


@_themed
def plot_bn_gap(ep: pd.DataFrame):
    """BatchNorm's gap between batch and running statistics per epoch (mean over seeds), one line per batch size:
    the mean gap and the |log| variance ratio, one panel each with its own (log) y axis in plain numbers."""
    panels = (("bn_mean_gap", "mean gap (running-std units)", "batch mean vs running mean"),
              ("bn_var_logratio", "|log(batch var / running var)|", "batch variance vs running variance"))
    fig, axes = _fig(len(panels))
    sizes = sorted(ep.batch_size.unique())
    colors = _colors(sizes)
    for ax, (col, ylabel, title) in zip(axes, panels):
        _epoch_lines(ax, ep, col, "batch_size", colors, lambda bs: f"batch size {bs}", band=False)
        ax.set(ylabel=ylabel, title=title)
        _plain_log_y(ax)
        _epoch_axis(ax)
    _legend(fig, axes)
    return fig


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
            ax.plot(line.layer, line.grad, marker="o", markersize=3, color=colors[d], label=plural(d, "block"))
        ax.set(xlabel="conv layer (0 = stem)", title=f"{act}, {norm_label(norm)}")
        _plain_log_y(ax)
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


@_themed
def plot_log_beside(epochs: pd.DataFrame, log: dict):
    """One panel per printed cell ((norm, batch size): the original's accuracies after epochs 1, 2, ...): the
    original's single run as a dashed line over all its printed epochs, ours as one point per run and epoch."""
    cells = [c for c in log if len(epochs[(epochs.norm == c[0]) & (epochs.batch_size == c[1])])]
    fig, axes = _fig(len(cells), sharey=True, size=SMALL)
    for ax, (norm, bs) in zip(axes, cells):
        color = norms.NORMS[norm].color if norm in norms.NORMS else "#555555"
        theirs = log[(norm, bs)]
        ax.plot(range(1, len(theirs) + 1), theirs, linestyle="--", marker="x", markersize=4, color="#555555",
                label="the original's run")
        ours = epochs[(epochs.norm == norm) & (epochs.batch_size == bs)]
        ax.plot(ours.epoch, ours.test_acc, linestyle="none", marker="o", markersize=4, alpha=0.7, color=color,
                label=f"ours, {norm_label(norm)} (a point per run)")
        ax.set_title(f"{norm_label(norm)}, batch size {bs}")
        _epoch_axis(ax)
    axes[0].set_ylabel("test accuracy (%)")
    _label_first(axes)
    _legend(fig, axes, below=True)
    return fig
