"""The report's figures, from the figure objects every section draws on constructed grids: each axis holds every
point, line and interval it plots; the palettes and ticks a reader relies on."""
import matplotlib
import numpy as np
import pandas as pd
import pytest

from normlib.report import plots
from normlib.report.plots import Figure

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def figures(section_items):
    return [item.fig for item in section_items if isinstance(item, Figure)]


def plotted(ax) -> np.ndarray:
    """Every (x, y) an axis draws in data coordinates: line vertices and markers, error-bar segments, dots, bands."""
    from matplotlib.collections import LineCollection, PathCollection, PolyCollection
    points = []
    for line in ax.lines:
        xy = np.asarray(line.get_xydata(), float)
        if line.get_transform() is ax.get_xaxis_transform():  # axvline: x in data, y across the axis
            xy = np.c_[xy[:, 0], np.full(len(xy), np.mean(ax.get_ylim()))]
        elif line.get_transform() is ax.get_yaxis_transform():  # axhline: y in data, x across the axis
            xy = np.c_[np.full(len(xy), np.mean(ax.get_xlim())), xy[:, 1]]
        points.append(xy)
    for c in ax.collections:
        if isinstance(c, LineCollection):  # error bars
            points += [np.asarray(s) for s in c.get_segments()]
        elif isinstance(c, PolyCollection):  # CI bands
            points += [p.vertices for p in c.get_paths()]
        elif isinstance(c, PathCollection):  # dots: their centres
            points.append(np.asarray(c.get_offsets()))
        else:
            raise TypeError(f"a {type(c).__name__} on the axis: say where its points are")
    xy = np.concatenate([np.asarray(p, float).reshape(-1, 2) for p in points]) if points else np.empty((0, 2))
    return xy[np.isfinite(xy).all(axis=1)]


def test_the_report_draws_every_figure_it_has_data_for(figures):
    # accuracy, learning curves, BN gap, BN at test time, two controls, groups, norms, depth, gradient profile
    assert len(figures) == 10


def test_every_axis_holds_every_point_and_interval_it_plots(figures):
    for n, fig in enumerate(figures, 1):
        for ax in fig.axes:
            xy = plotted(ax)
            if not ax.get_visible() or not ax.axison or not len(xy):
                continue
            (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
            outside = xy[(xy[:, 0] < x0) | (xy[:, 0] > x1) | (xy[:, 1] < y0) | (xy[:, 1] > y1)]
            assert not len(outside), f"figure {n}, axis {ax.get_title()!r}: {outside[:3]} outside {(x0, x1, y0, y1)}"


def test_the_equal_steps_figure_shows_its_low_points(figures):
    """The control far below the main grid at batch size 2 (about 15% and 20%): the case that once fell off."""
    control = next(f for f in figures if any("(c_steps)" in t.get_text() for leg in f.legends for t in leg.texts))
    (ax,) = control.axes
    assert ax.get_ylim()[0] <= 15.0
    assert sorted(int(round(t)) for t in ax.get_xticks()) == [2, 16, 128]  # a tick at every batch size


def test_accuracy_intervals_stop_at_the_bounds():
    lower, upper = plots._interval([1.0, 50.0, 99.0], [5.0, 5.0, np.nan])
    assert list(lower) == [1.0, 5.0, 0.0] and list(upper) == [5.0, 5.0, 0.0]


def luminance(rgb) -> float:
    c = np.asarray(rgb[:3], float)
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ [0.2126, 0.7152, 0.0722])


def test_the_ordered_palette_is_readable_and_perceptually_spaced():
    from seaborn.external import husl
    colors = plots.ramp(7)  # the CPU edition's seven batch sizes
    assert all(1.05 / (luminance(c) + 0.05) >= 3.0 for c in colors)  # >= 3:1 against white
    luv = [np.array(husl.xyz_to_luv(husl.rgb_to_xyz(c))) for c in colors]
    steps = [np.linalg.norm(a - b) for a, b in zip(luv, luv[1:])]  # CIELUV distance between neighbours
    assert min(steps) >= 25 and min(steps) / max(steps) > 0.7, steps
    assert np.linalg.norm(luv[0] - luv[-1]) > 100  # the ends far apart


def test_log_axes_read_as_plain_numbers(figures):
    logs = [fig for fig in figures if any(ax.get_yscale() == "log" for ax in fig.axes)]
    assert len(logs) == 2  # the BN gap and the gradient profile
    for fig in logs:
        fig.canvas.draw()
        labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels() if t.get_text()]
        assert labels and all(float(s) > 0 for s in labels), labels  # "0.05", not "$\\mathdefault{5\\times10^{-2}}$"


def test_a_shared_legend_names_what_every_panel_draws():
    """The epoch-by-epoch figure: BatchNorm's and GroupNorm's points differ in colour, so the legend names both (it
    once took its entries from the first panel alone, whose blue stood for the orange points too)."""
    epochs = pd.DataFrame({"norm": ["batch", "group", "batch"], "batch_size": [2, 2, 4], "epoch": [1, 1, 1],
                           "test_acc": [40.0, 45.0, 50.0]})
    fig = plots.plot_log_beside(epochs, {("batch", 2): [45.0, 52.0], ("group", 2): [44.0, 54.0],
                                         ("batch", 4): [56.0, 60.0]})
    (legend,) = fig.legends
    entries = {t.get_text(): h for t, h in zip(legend.texts, legend.legend_handles)}
    assert list(entries) == ["the original's run", "ours, BatchNorm (a point per run)",
                             "ours, GroupNorm (a point per run)"]
    colors = {label: matplotlib.colors.to_hex(h.get_color()) for label, h in entries.items()}
    assert colors["ours, BatchNorm (a point per run)"] != colors["ours, GroupNorm (a point per run)"]


@pytest.mark.parametrize("epochs", [1, 2, 10])
def test_epoch_axes_tick_whole_epochs_only(epochs):
    """Learning curves and BatchNorm's gap per epoch: a run of one epoch too gets whole-number ticks (not 0.94 ...)."""
    rows = [{"run_id": f"{norm}{seed}", "norm": norm, "batch_size": 16, "seed": seed, "epoch": e, "test_acc": 50.0 + e,
             "bn_mean_gap": 0.1 * e, "bn_var_logratio": 0.2 * e} for norm in ("batch", "group") for seed in (0, 1)
            for e in range(1, epochs + 1)]
    ep = pd.DataFrame(rows)
    for fig in (plots.plot_curves(ep), plots.plot_bn_gap(ep[ep.norm == "batch"])):
        fig.canvas.draw()
        for ax in (a for a in fig.axes if a.get_xlabel() == "epoch"):
            lo, hi = ax.get_xlim()
            shown = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert shown and all(float(t).is_integer() for t in shown), (epochs, shown)
            assert 1 in shown
