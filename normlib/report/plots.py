"""The report's figures, drawn from stats() frames, runs and per-epoch records; matplotlib is imported on first use."""
import numpy as np
import pandas as pd

from .stats import stats
from .text import norm_label


def _fig(ncols=1, w=6.0, h=4.0):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, ncols, figsize=(w * ncols, h), squeeze=False)
    return fig, axes[0]


def _epoch_axis(ax):
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _ramp(ax, frame: pd.DataFrame, x: str, y: str, key: str, values: list, label) -> None:
    """One line of y against x per value of key, coloured along viridis in the order of `values`."""
    import matplotlib.pyplot as plt
    cmap = plt.get_cmap("viridis")
    for i, v in enumerate(values):
        r = frame[frame[key] == v]
        ax.plot(r[x], r[y], marker=".", color=cmap(i / max(len(values) - 1, 1)), label=label(v))


def plot_lines(s: pd.DataFrame, x: str, hue: str, title: str, ax=None, style="-", label=norm_label):
    """Mean ± 95% CI (error bars) of test accuracy against x (log2 axis), one line per value of hue."""
    if ax is None:
        _, (ax,) = _fig()
    for value, line in s.groupby(hue):
        line = line.sort_values(x)
        ax.errorbar(line[x], line["mean"], yerr=line.ci95.fillna(0), marker="o", capsize=3, linestyle=style,
                    label=label(value))
    ticks = sorted(set(int(v) for v in s[x]))
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(v) for v in ticks])
    ax.set_xlabel(x.replace("_", " "))
    ax.set(ylabel="test accuracy (%)", title=title)
    lo, hi = ax.get_ylim()  # a CI from 2 seeds can span hundreds of points: keep the axis on accuracies
    ax.set_ylim(max(lo, 0), min(hi, 100))
    ax.legend(fontsize=8)
    return ax.figure


def plot_accuracy(runs, metric="final_acc"):
    """Accuracy vs batch size, mean with 95% CI error bars, one line per norm, log2 x axis."""
    return plot_lines(stats(runs, metric), "batch_size", "norm", f"{metric}: mean ± 95% CI over seeds")


def plot_control(main: pd.DataFrame, ctrl: pd.DataFrame, names: tuple, metric: str):
    """Two stats() frames on one axis, accuracy vs batch size per norm: the main grid's solid, a control's dashed;
    `names` are the two grids' names for the legend."""
    fig, (ax,) = _fig(w=7)
    plot_lines(main, "batch_size", "norm", "", ax=ax, label=lambda n: f"{norm_label(n)} ({names[0]})")
    ax.set_prop_cycle(None)
    plot_lines(ctrl, "batch_size", "norm", f"{metric}: main grid vs control", ax=ax, style="--",
               label=lambda n: f"{norm_label(n)} ({names[1]})")
    return fig


def plot_spread(runs, metric="final_acc"):
    """Every seed's accuracy per batch size, one column of points per norm (dodged)."""
    fig, (ax,) = _fig(w=7)
    ok = runs[runs.status == "ok"]
    norms, sizes = sorted(ok.norm.unique()), sorted(ok.batch_size.unique())
    for i, norm in enumerate(norms):
        of_norm = ok[ok.norm == norm]
        pos = np.array([sizes.index(b) for b in of_norm.batch_size]) + (i - (len(norms) - 1) / 2) * 0.25
        ax.scatter(pos, of_norm[metric], s=18, label=norm_label(norm), alpha=0.8)
    ax.set_xticks(range(len(sizes)), [str(b) for b in sizes])
    ax.set(xlabel="batch size", ylabel="test accuracy (%)", title=f"{metric} of every run")
    ax.legend(fontsize=8)
    return fig


def _epoch_panels(panels: list, sizes: list, w: float, h: float):
    """One panel per (per-epoch records, column, ax.set arguments): the column's mean over seeds against the epoch, one
    line per batch size in `sizes`."""
    fig, axes = _fig(len(panels), w=w, h=h)
    for ax, (ep, col, labels) in zip(axes, panels):
        m = ep.groupby(["batch_size", "epoch"])[col].mean().reset_index()
        _ramp(ax, m, "epoch", col, "batch_size", sizes, lambda bs: f"bs {bs}")
        ax.set(**labels)
        _epoch_axis(ax)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_curves(epochs, norms=None):
    """Learning curves: test accuracy per epoch (mean over seeds), one panel per norm, one line per batch size."""
    panels = [(epochs[epochs.norm == norm], "test_acc",
               {"title": norm_label(norm), "xlabel": "epoch", "ylabel": "test accuracy (%)"})
              for norm in norms or sorted(epochs.norm.unique())]
    return _epoch_panels(panels, sorted(epochs.batch_size.unique()), w=4.5, h=3.5)


def plot_bn_gap(ep: pd.DataFrame):
    """BatchNorm's gap between batch and running statistics per epoch (mean over seeds), one line per batch size:
    the mean gap and the |log| variance ratio, one panel each."""
    panels = [(ep, col, {"xlabel": "epoch", "ylabel": lab, "yscale": "log", "title": lab})
              for col, lab in (("bn_mean_gap", "mean gap (running-std units)"),
                               ("bn_var_logratio", "|log(batch var / running var)|"))]
    return _epoch_panels(panels, sorted(ep.batch_size.unique()), w=5, h=3.6)


def plot_grad_profile(prof: pd.DataFrame):
    """A grad_profile() frame: mean |gradient| per conv layer, one panel per activation and norm, one line per depth."""
    panels = sorted(prof.groupby(["activation", "norm"]).groups)
    fig, axes = _fig(len(panels), w=4.5, h=3.5)
    depths = sorted(prof.num_blocks.unique())
    for ax, (act, norm) in zip(axes, panels):
        _ramp(ax, prof[(prof.activation == act) & (prof.norm == norm)], "layer", "grad", "num_blocks", depths,
              lambda d: f"{d} blocks")
        ax.set(yscale="log", xlabel="conv layer (0 = stem)", ylabel="mean |grad| (epoch 1)",
               title=f"{act}, {norm_label(norm)}")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return fig
