"""The report's sections beyond BatchNorm vs GroupNorm across batch sizes: BatchNorm diagnostics, controls against
the main grid, group counts, every normalization, depth. Each appears when its grid holds what it needs."""
import numpy as np
import pandas as pd

from ..config import DIAG_BATCHES, DIAG_TEST, PRECISE_BATCH, PRECISE_IMAGES
from .load import Grid
from .plots import Figure, plot_bn_gap, plot_control, plot_grad_profile, plot_lines
from .depth import GRAD_MEASURE, depth_outcomes, depth_table, run_grads
from .sections import intro
from .controls import confounds, control_caveat, control_kind, control_runs
from .stats import ALPHA, cell_test, holm, paired, pairwise, samples, spread, stats, trend, versus_best
from .tables import Table, results_table, spread_table
from .text import (NEXT_FIGURE, int_list, mean_std, mean_std_cells, norm_label, plural, plus_minus, protocol, pval,
                   sizes_text)

DIAG_STATS = {  # BatchNorm's test-time statistics: the final epoch's record field and the name the report gives it
    "running": ("diag_running_acc", "running statistics"),
    "precise": ("diag_precise_acc", "precise statistics"),
    "batch": ("diag_batchstat_acc", "per-batch statistics"),
}


# ---------------------------------------------------------------- BatchNorm diagnostics

def statistics_loss(acc: pd.DataFrame) -> pd.DataFrame:
    """Where BatchNorm's small-batch loss comes from, from the mean test accuracies per batch size (rows) with running,
    precise and per-batch statistics (columns): against the batch size `ref` with the best running-statistics
    accuracy, the loss splits exactly into what precise statistics recover (`mismatch`: the running statistics do
    not match the final weights) and what remains with them (`rest`: the weights learned under batch noise); `noise`
    is what normalising each test batch by its own statistics costs against precise statistics. A row per batch size
    below ref's accuracy."""
    ref = int(acc.running.idxmax())
    loss = acc.running[ref] - acc.running
    mismatch = (acc.precise - acc.running) - (acc.precise[ref] - acc.running[ref])
    out = pd.DataFrame({"ref": ref, "loss": loss, "mismatch": mismatch, "rest": loss - mismatch,
                        "noise": acc.precise - acc.batch})
    return out[(out.index != ref) & (out.loss > 0)]


def loss_cells(split: pd.DataFrame, bs: int) -> dict:
    """A batch size's row of statistics_loss as table cells (a dash where it has none: the reference, or no loss)."""
    ref = int(split.ref.iloc[0]) if len(split) else None
    r = split.loc[bs] if bs in split.index else None
    return {f"loss vs batch size {ref} (running)": "—" if r is None else f"{r.loss:.2f}",
            "of it: statistics mismatch": "—" if r is None else f"{r.mismatch:+.2f} ({r.mismatch / r.loss:.0%})",
            "of it: remains (precise)": "—" if r is None else f"{r.rest:+.2f} ({r.rest / r.loss:.0%})"}


def loss_sentences(split: pd.DataFrame, ref: int) -> list:
    """statistics_loss in a few sentences, one per finding; the numbers for each batch size are the table's."""
    if split.empty:
        return [f"With running statistics BatchNorm does best at batch size {ref}, and no smaller batch size loses "
                f"accuracy against it."]
    most = split.index[split.mismatch > split.loss / 2]
    least = split.index[split.mismatch <= split.loss / 2]
    return [f"With running statistics BatchNorm does best at batch size {ref}; it loses up to "
            f"{split.loss.max():.2f} points at {sizes_text(split.index)}.",
            (f"Precise statistics recover more than half of that loss at {sizes_text(most)}: there the "
             f"running statistics did not match the final weights." if len(most) else
             "Precise statistics recover less than half of that loss at every batch size."),
            *([f"At {sizes_text(least)}, more than half remains with precise statistics: it lies in the "
               f"weights learned under batch noise."] if len(least) and len(most) else []),
            f"Normalising each test batch by its own statistics costs up to {split.noise.max():.2f} points against "
            f"precise statistics (at batch size {int(split.noise.idxmax())}): the batch noise itself at test time."]


def bn_diagnostics_section(grid: Grid) -> list:
    """BatchNorm's batch vs running statistics: their gap per epoch and batch size, and the final model's test
    accuracy with the running statistics, with precise statistics (recomputed with the final weights) and with each
    test batch's own statistics: a table of the numbers, a sentence per finding, two figures."""
    ep = grid.epochs[(grid.epochs.norm == "batch") & grid.epochs.run_id.isin(grid.ok.run_id)]
    if ep.empty or "bn_mean_gap" not in ep or ep.bn_mean_gap.isna().all():
        return []
    last = ep.sort_values("epoch").groupby("run_id").tail(1)
    have = accuracy_stats(last)
    acc = last.groupby("batch_size")[[DIAG_STATS[k][0] for k in have]].mean().set_axis(have, axis=1) if have else None
    split = statistics_loss(acc) if "precise" in have else None
    rows = [{**gap_cells(bs, runs), **accuracy_cells(bs, runs, have, acc),
             **({} if split is None else loss_cells(split, bs))} for bs, runs in last.groupby("batch_size")]
    text = [gap_sentence(last)] + (accuracy_sentences(acc, split) if have else [])
    items = [intro("BatchNorm diagnostics", grid), Table(pd.DataFrame(rows), diagnostics_caption(last, have, split)),
             "\n".join(f"- {t}" for t in text), gap_figure(ep)]
    return items + ([accuracy_figure(last, have)] if have else [])


def accuracy_stats(last: pd.DataFrame) -> list:
    """The DIAG_STATS keys whose test-time accuracy the final epochs carry; [] unless running and per-batch both."""
    have = [k for k, (col, _) in DIAG_STATS.items() if col in last and last[col].notna().any()]
    return have if {"running", "batch"} <= set(have) else []


def gap_cells(bs: int, runs: pd.DataFrame) -> dict:
    """A batch size's final-epoch gap between batch and running statistics, as table cells."""
    return {"batch size": int(bs), "mean gap (final epoch)": f"{runs.bn_mean_gap.mean():.3f}",
            "abs log var ratio (final epoch)": f"{runs.bn_var_logratio.mean():.3f}"}


def accuracy_cells(bs: int, runs: pd.DataFrame, have: list, acc: pd.DataFrame) -> dict:
    """A batch size's mean test-time accuracies and their paired differences, as table cells ({} without them)."""
    if not have:
        return {}
    pairs = [("precise", "running"), ("batch", "precise")] if "precise" in have else [("batch", "running")]
    return {**{f"{DIAG_STATS[k][1]} acc": f"{acc[k][bs]:.2f}" for k in have},
            **{f"{a} − {b} (95% CI, paired)": plus_minus(*paired(runs[DIAG_STATS[a][0]] - runs[DIAG_STATS[b][0]]))
               for a, b in pairs}}


def gap_sentence(last: pd.DataFrame) -> str:
    """Whether the gap between batch and running statistics is larger at the smallest batch size than the largest."""
    gaps = last.groupby("batch_size")[["bn_mean_gap", "bn_var_logratio"]].mean()
    if len(gaps) == 1:
        return (f"At batch size {int(gaps.index[0])}, the only one, the mean gap is {gaps.bn_mean_gap.iloc[0]:.3f} and "
                f"the |log variance ratio| {gaps.bn_var_logratio.iloc[0]:.3f} (final epoch, mean over seeds).")
    mean, var = ("larger" if gaps[c].iloc[0] > gaps[c].iloc[-1] else "not larger" for c in gaps)
    return ("The gap between a training batch's statistics and the running ones is "
            + (f"{mean} in the mean and the variance" if mean == var else f"{mean} in the mean and {var} in the "
               f"variance") + f" at batch size {int(gaps.index[0])} than at {int(gaps.index[-1])}.")


def accuracy_sentences(acc: pd.DataFrame, split) -> list:
    """What the test-time accuracies say: where the loss at small batch sizes comes from, or why that cannot be said."""
    if split is None:
        return ["Precise-BN accuracy is absent from these records (made before it was measured), so the loss cannot be "
                "split here into the statistics mismatch and the batch noise."]
    return loss_sentences(split, int(acc.running.idxmax()))


def diagnostics_caption(last: pd.DataFrame, have: list, split) -> str:
    """The diagnostics table's caption: what each column measured, and on how many test images."""
    caption = ("BatchNorm's statistics at the final epoch, mean over seeds: the gap between a training batch's "
               "statistics and the running ones (mean gap in running-std units, |log| variance ratio)")
    if have:
        n_diag = min(DIAG_TEST, int(last.test_images.min())) if "test_images" in last else DIAG_TEST
        ways = {"running": "with the running statistics (eval mode)",
                "precise": f"with precise statistics, recomputed over {PRECISE_IMAGES:,} training images (or all, if "
                           f"fewer) in batches of {PRECISE_BATCH} with the final weights (precise BN, Wu & Johnson 2021)",
                "batch": "with each test batch of the training batch size normalised by its own statistics"}
        measured = [ways[k] for k in have]
        caption += (f"; the final model's accuracy on {n_diag} test images (a stratified subset of the test set) "
                    + "; ".join(measured[:-1]) + ("; and " if len(measured) > 2 else " and ") + measured[-1])
    if split is not None and len(split):
        ref = int(split.ref.iloc[0])
        caption += (f"; the loss against batch size {ref} with running statistics, split into what precise "
                    f"statistics recover (the statistics mismatch: precise − running, relative to the same "
                    f"difference at batch size {ref}) and what remains with them")
    return caption + "."


def gap_figure(ep: pd.DataFrame) -> Figure:
    return Figure(plot_bn_gap(ep), (
        "Gap between a training batch's statistics and the running statistics per epoch (mean over seeds; log "
        "axes), one line per batch size: mean gap in running-std units and |log| variance ratio, averaged "
        f"over BN layers and the first {DIAG_BATCHES} batches of the epoch."))


def accuracy_figure(last: pd.DataFrame, have: list) -> Figure:
    long = pd.concat([last.assign(stat=DIAG_STATS[k][1], acc=last[DIAG_STATS[k][0]]) for k in have])
    return Figure(plot_lines(stats(long, "acc", ("batch_size", "stat")), "batch_size", "stat", label=str), (
        "BatchNorm at test time: the final model's test accuracy normalising with the running statistics (eval "
        "mode), with precise statistics recomputed with the final weights (where the records have them) and "
        "with each test batch's own statistics (batches of the training batch size), mean ± 95% CI over seeds."))


# ---------------------------------------------------------------- controls

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


# ---------------------------------------------------------------- more normalizations

def best_vs_each(vb: pd.DataFrame, key: str, label, what: str) -> tuple:
    """A versus_best() frame within batch sizes as a table, and the sentence saying how its p are corrected."""
    table = pd.DataFrame({"batch size": vb.batch_size.astype(int), "best": [label(v) for v in vb.best],
                          what: [label(v) for v in vb[key]], f"{what} − best (95% CI)": [
                              plus_minus(d, h) for d, h in zip(vb["diff"], vb.ci95)],
                          "Holm p": [pval(p) for p in vb.p_holm], "test": vb.test})
    tests = " and ".join(sorted(set(vb.test)))
    note = (f"At each batch size the best {what} is compared with every other: two-sided {tests} t-tests (paired over "
            f"seeds where both sides have every seed, since their runs share the initialisation seed and data "
            f"order), Holm-corrected over all {int(vb.family.iloc[0]) if len(vb) else 0} pairs of {what}s at every "
            f"batch size, so that picking the best on the same runs needs no further correction.")
    return table, note

def family_text(pw: pd.DataFrame, label) -> str:
    """The whole Holm family of a pairwise() frame within batch sizes, in a sentence: every pair significant in it
    (the best-vs-other table shows only some of the pairs), or the smallest Holm p when none is."""
    sig = pw[pw.p_holm < ALPHA]
    head = f"In the whole family of {len(pw)} pairs (every pair at every batch size, one Holm correction)"
    if sig.empty:
        return f"{head}, no pair differs significantly (smallest Holm p {pval(pw.p_holm.min())})."
    return f"{head}, significant: " + "; ".join(
        f"batch size {int(r.batch_size)}, {label(r.a)} − {label(r.b)} {plus_minus(r.diff, r.ci95)} (95% CI), Holm p "
        f"{pval(r.p_holm)}" for r in sig.itertuples()) + "."


def groups_section(grid: Grid, metric: str) -> list:
    """GroupNorm's group count: accuracy vs groups, one line per batch size."""
    runs = grid.ok[grid.ok.norm == "group"]
    if runs.groups.nunique() < 2:
        return []
    s = stats(runs, metric, ("batch_size", "groups"))
    width = int_list(sorted(runs.width.unique()))
    items = [intro("GroupNorm: number of groups", grid),
             f"groups = 1 normalises over all channels of a position set (LayerNorm over C, H, W); groups = width "
             f"({width}) normalises each channel alone (InstanceNorm); the original uses 4."]
    table = mean_std_cells(s, "groups", "batch_size")
    table.columns = [f"batch size {c}" for c in table.columns]
    items.append(Table(table.rename_axis("groups").reset_index(), f"GroupNorm's test accuracy (%, {metric}) per "
                                                                  f"number of groups and batch size: mean ± std over "
                                                                  f"seeds (n runs)."))
    vb = versus_best(s, "groups", within="batch_size", runs=runs, metric=metric)
    table, note = best_vs_each(vb, "groups", lambda g: int(g), "group count")
    lines = []
    for bs, per_groups in s.groupby("batch_size"):
        best = per_groups.loc[per_groups["mean"].idxmax()]
        line = (f"Batch size {int(bs)}: best mean with {plural(best.groups, 'group')} ({best['mean']:.2f}%); range "
                f"over group counts {per_groups['mean'].max() - per_groups['mean'].min():.2f} points.")
        four = vb[(vb.batch_size == bs) & (vb.groups == 4)]
        if len(four):
            line += (f" The original's 4 groups: {four['diff'].iloc[0]:+.2f} points from the best (Holm p = "
                     f"{pval(four.p_holm.iloc[0])}).")
        lines.append(line)
    items += [Table(table, note), "\n\n".join(lines),
              Figure(plot_lines(s, "groups", "batch_size", label=lambda bs: f"batch size {bs}"),
                     f"GroupNorm's test accuracy ({metric}) against the number of groups, one line per batch size, "
                     f"mean ± 95% CI over seeds.")]
    return items


def beside_main(grid: Grid, main) -> tuple:
    """A norms grid's runs with the main grid's runs of the norms it lacks at its batch sizes, where nothing else in
    the protocol differs: (runs, the norms taken from the main grid)."""
    runs = grid.ok
    if main is None or main is grid or main.ok.empty or confounds(main.ok, runs):
        return runs, []
    extra = main.ok[~main.ok.norm.isin(set(runs.norm)) & main.ok.batch_size.isin(set(runs.batch_size))]
    return pd.concat([runs, extra], ignore_index=True), sorted(set(extra.norm))


def norms_section(grid: Grid, metric: str, main=None) -> list:
    """Every normalization in the grid across batch sizes, when it has more than BatchNorm and GroupNorm; a norms
    control shows the main grid's BatchNorm and GroupNorm beside its own."""
    runs, taken = beside_main(grid, main)
    if runs.norm.nunique() < 3:
        return []
    s = stats(runs, metric)
    items = [intro("All normalizations across batch sizes", grid),
             "LayerNorm here is GroupNorm with 1 group, InstanceNorm GroupNorm with one group per channel (both with "
             "affine parameters); 'No norm' has none."
             + (f" {', '.join(norm_label(n) for n in taken)}: the main grid `{main.name}`'s runs at these batch sizes "
                f"(same protocol)." if taken else ""),
             Table(results_table(runs, metric), f"Test accuracy (%, {metric}) of every normalization: mean ± sample "
                                                f"std over seeds (n runs)."),
             Table(spread_table(spread(s)), "Every normalization's two standard deviations: run to run, and across "
                                            "batch sizes.")]
    vb = versus_best(s, "norm", within="batch_size", runs=runs, metric=metric)
    tested = bool((s.n >= 2).all())  # one run per cell describes: no tests, no intervals
    table, note = best_vs_each(vb, "norm", norm_label, "normalization")
    lines = []
    for bs, per_norm in s.groupby("batch_size"):
        best = per_norm.loc[per_norm["mean"].idxmax()]
        line = f"Batch size {int(bs)}: best {norm_label(best.norm)} ({best['mean']:.2f}%)"
        others = vb[vb.batch_size == bs]
        if len(others):
            second = others.loc[others["diff"].idxmax()]
            line += (f", ahead of {norm_label(second.norm)} by {-second['diff']:.2f} points"
                     + (f" (Holm p = {pval(second.p_holm)})" if tested else ""))
        lines.append(line + ".")
    one_run = "Some cells have one run: the differences describe, and no test decides which normalization is best."
    if tested:
        lines.append(family_text(pairwise(s, "norm", within="batch_size", runs=runs, metric=metric), norm_label))
    items += [Table(table, note) if tested else one_run, "\n\n".join(lines),
              Figure(plot_lines(s, "batch_size", "norm"), f"Test accuracy ({metric}) against batch size, one line per "
                                                          f"normalization, mean ± 95% CI over seeds"
                     + ("." if tested else " (one run in some cells: no interval there)."))]
    return items


# ---------------------------------------------------------------- depth

def grad_profile(epochs: pd.DataFrame, epoch: int = 1) -> pd.DataFrame:
    """Mean |gradient| per conv layer (0 = stem) at one epoch, averaged over seeds, per norm, activation and depth."""
    ep = epochs[(epochs.epoch == epoch) & epochs.grad_abs.notna()] if "grad_abs" in epochs else epochs.iloc[:0]
    rows = [{"norm": r.norm, "activation": r.activation, "num_blocks": r.num_blocks, "layer": i, "grad": v}
            for r in ep.itertuples() for i, v in enumerate(r.grad_abs)]
    if not rows:
        return pd.DataFrame(columns=["norm", "activation", "num_blocks", "layer", "grad"])
    return pd.DataFrame(rows).groupby(["norm", "activation", "num_blocks", "layer"]).grad.mean().reset_index()


def depth_section(grid: Grid, metric: str, alpha: float = ALPHA, epoch: int = 1) -> list:
    """The original's depth results against ours: accuracy and gradient magnitude by number of blocks per activation,
    decided per norm as trends over every depth (depth.depth_outcomes); the per-layer gradient profile."""
    runs = grid.ok
    if runs.num_blocks.nunique() < 2:
        return []
    grads = run_grads(grid.epochs[grid.epochs.run_id.isin(runs.run_id)], epoch)
    runs = runs.assign(grad=runs.run_id.map(grads.grad), stem=runs.run_id.map(grads.stem),
                       setting=[f"{a}, {norm_label(n)}" for a, n in zip(runs.activation, runs.norm)])
    s = stats(runs, metric, ("setting", "num_blocks"))
    prof = grad_profile(grid.epochs[grid.epochs.run_id.isin(runs.run_id)], epoch)
    tables = [depth_table(depth_outcomes(r, metric, alpha), norm) for norm, r in runs.groupby("norm")]
    images = int(runs.train_images.median()) if "train_images" in runs and runs.train_images.notna().any() else None
    items = [intro("Depth: accuracy and gradient magnitude by number of blocks", grid),
             "The original reports test accuracy and a gradient magnitude from its fewest to its most blocks, for "
             "ReLU and sigmoid, without the block counts, the norm, the batch size, the epoch or what the gradient "
             f"magnitude measures. Here {GRAD_MEASURE.format(epoch=epoch)}; {NEXT_FIGURE.format(2)} shows every layer, "
             "so the shape can be read whichever single number the original meant. This grid: "
             f"{protocol(runs)}.",
             Table(mean_std_cells(s, "num_blocks", "setting").rename_axis("blocks").reset_index(),
                   f"Test accuracy (%, {metric}) per number of blocks, activation and norm: mean ± std over seeds "
                   f"(n runs)."),
             Table(pd.concat(tables, ignore_index=True),
                   "The original's depth results beside ours. Each is decided as a trend over every depth, not on "
                   "the two ends: the least-squares slope per doubling of the blocks over all runs, each seed with "
                   "its own level (the seed is the pairing unit), on accuracy points and on the log of the gradient "
                   "magnitude (shown as its % change per doubling); one-sided in the original's direction and "
                   f"against it, Holm-corrected over the claims; significance level {alpha:g}. Holds: shown in the "
                   "original's direction; does not hold: shown against it; not shown: neither, with the smallest "
                   "trend that the first Holm step detects with 80% power (exact noncentral t); cannot be "
                   "evaluated: one depth, or too few runs for a degree of freedom. The stem conv's gradient is shown "
                   "apart and is not in the measure."),
             depth_words(pd.concat(tables, ignore_index=True), runs, images)]
    bars = s.n.min() >= 3  # with 2 seeds a 95% CI spans most of the axis: the seeds' dots say more
    items.append(Figure(plot_lines(s, "num_blocks", "setting", label=str, runs=runs, metric=metric, min_n=3), (
        f"Test accuracy ({metric}) against the number of blocks, one line per activation and norm: the mean over "
        "seeds (line) and every seed's run (dots beside it)" + (", with the 95% CI over seeds (bars)." if bars else
                                                               "; no interval bars: with fewer than 3 seeds per cell "
                                                               "a 95% CI spans most of the axis."))))
    if len(prof):
        items.append(Figure(plot_grad_profile(prof), (
            f"Mean |gradient| of each conv layer's weights over the steps of epoch {epoch} (layer 0 = stem), mean over "
            "seeds, one line per number of blocks; the panels share the (log) y axis.")))
    return items


def depth_words(table: pd.DataFrame, runs: pd.DataFrame, images) -> str:
    """Where our depth results agree with the original's in shape, and what the regime difference explains."""
    agree = table[table.verdict == "holds"]
    against = table[table.verdict == "does not hold"]
    said = lambda t: "; ".join(f"{r.quantity} with {r.activation} ({r.norm})" for r in t.itertuples()) or "none"
    unshown = table[table.verdict == "not shown"]
    power = "".join(f" Not shown: {r['quantity']} with {r['activation']} ({r['norm']}), trend "
                    f"{r['trend per doubling (95% CI)']} per doubling; these runs detect a trend of "
                    f"{r['smallest trend detectable']} per doubling or more (80% power)." for _, r in unshown.iterrows())
    regime = (f"{int(runs.epochs_run.median())} epochs on {images:,} training images" if images else "this grid's "
              "protocol")
    return (f"Shown in the original's direction: {said(agree)}. Shown against it: {said(against)}.{power} The "
            f"levels are not comparable: {regime} against the original's 10 "
            f"epochs on 50,000. A short run may favour shallow networks, which fit faster: the original's gain with "
            f"depth under ReLU may need its longer training, while a loss under sigmoid and shrinking gradients need "
            f"not.")


