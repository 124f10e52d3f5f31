"""The report's sections beyond BatchNorm vs GroupNorm across batch sizes: BatchNorm diagnostics, controls against
the main grid, group counts, every normalization, depth. Each appears when its grid holds what it needs."""
import numpy as np
import pandas as pd

from ..config import DIAG_BATCHES, DIAG_TEST, PRECISE_BATCH, PRECISE_IMAGES
from .load import Grid
from .plots import Figure, plot_bn_gap, plot_control, plot_grad_profile, plot_lines
from .sections import intro
from .controls import confounds, control_kind, control_runs
from .stats import ALPHA, cell_test, holm, paired, samples, spread, stats, trend, versus_best, welch_rows
from .tables import results_table, spread_table
from .text import int_list, mean_std, mean_std_cells, norm_label, plural, plus_minus, protocol, pval

DIAG_STATS = {  # BatchNorm's test-time statistics: the final epoch's record field and the name the report gives it
    "running": ("diag_running_acc", "running statistics"),
    "precise": ("diag_precise_acc", "precise statistics"),
    "batch": ("diag_batchstat_acc", "per-batch statistics"),
}


# ---------------------------------------------------------------- BatchNorm diagnostics

def statistics_loss(acc: pd.DataFrame) -> str:
    """Where BatchNorm's small-batch loss comes from, from the mean test accuracies per batch size (rows) with running,
    precise and per-batch statistics (columns): against the batch size with the best running-statistics accuracy,
    the loss splits exactly into what precise statistics recover (the running statistics do not match the final
    weights) and what remains with them (the weights learned under batch noise)."""
    ref = int(acc.running.idxmax())
    parts = []
    for bs, r in acc.iterrows():
        loss = acc.running[ref] - r.running
        if bs == ref or loss <= 0:
            continue
        mismatch = (r.precise - r.running) - (acc.precise[ref] - acc.running[ref])
        parts.append(f"at batch size {int(bs)}, {loss:.2f} points below batch size {ref} with running statistics: "
                     f"{mismatch:+.2f} ({mismatch / loss:.0%}) from the statistics mismatch, "
                     f"{loss - mismatch:+.2f} ({1 - mismatch / loss:.0%}) remain with precise statistics; normalising "
                     f"each test batch by its own statistics costs {r.precise - r.batch:.2f} points against precise "
                     f"statistics (the batch noise itself at test time)")
    if not parts:
        return f"BatchNorm's running-statistics accuracy is highest at batch size {ref} and lower at none smaller."
    return ("Of BatchNorm's loss at small batch sizes (mean accuracies; the mismatch is precise − running relative "
            f"to the same difference at batch size {ref}): " + "; ".join(parts) + ".")


def bn_diagnostics_section(grid: Grid) -> list:
    """BatchNorm's batch vs running statistics: their gap per epoch and batch size, and the final model's test
    accuracy with the running statistics, with precise statistics (recomputed with the final weights) and with each
    test batch's own statistics."""
    ep = grid.epochs[(grid.epochs.norm == "batch") & grid.epochs.run_id.isin(grid.ok.run_id)]
    if ep.empty or "bn_mean_gap" not in ep or ep.bn_mean_gap.isna().all():
        return []
    last = ep.sort_values("epoch").groupby("run_id").tail(1)
    have = [k for k, (col, _) in DIAG_STATS.items() if col in last and last[col].notna().any()]
    has_acc = {"running", "batch"} <= set(have)
    items = [intro("BatchNorm diagnostics", grid)]
    rows, acc = [], {}  # acc: batch size -> mean accuracy per statistics kind
    for bs, runs in last.groupby("batch_size"):
        row = {"batch size": int(bs), "mean gap (final epoch)": f"{runs.bn_mean_gap.mean():.3f}",
               "abs log var ratio (final epoch)": f"{runs.bn_var_logratio.mean():.3f}"}
        if has_acc:
            acc[int(bs)] = {k: runs[DIAG_STATS[k][0]].mean() for k in have}
            row.update({f"{DIAG_STATS[k][1]} acc": f"{acc[int(bs)][k]:.2f}" for k in have})
            pairs = ([("precise", "running"), ("batch", "precise")] if "precise" in have else [("batch", "running")])
            row.update({f"{a} − {b} (95% CI, paired)": plus_minus(*paired(
                runs[DIAG_STATS[a][0]] - runs[DIAG_STATS[b][0]])) for a, b in pairs})
        rows.append(row)
    gaps = last.groupby("batch_size")[["bn_mean_gap", "bn_var_logratio"]].mean()
    text = (f"At batch size {int(gaps.index[0])}, the only one, the mean gap is {gaps.bn_mean_gap.iloc[0]:.3f} and "
            f"the |log variance ratio| {gaps.bn_var_logratio.iloc[0]:.3f} (final epoch, mean over seeds)."
            if len(gaps) == 1 else
            f"From batch size {int(gaps.index[0])} to {int(gaps.index[-1])} the mean gap goes from "
            f"{gaps.bn_mean_gap.iloc[0]:.3f} to {gaps.bn_mean_gap.iloc[-1]:.3f} and the |log variance ratio| from "
            f"{gaps.bn_var_logratio.iloc[0]:.3f} to {gaps.bn_var_logratio.iloc[-1]:.3f} (final epoch, mean over "
            f"seeds).")
    if has_acc:
        n_diag = min(DIAG_TEST, int(last.test_images.min())) if "test_images" in last else DIAG_TEST
        ways = {"running": "with the running statistics (eval mode)",
                "precise": f"with precise statistics, recomputed over {PRECISE_IMAGES:,} training images (or all, if "
                           f"fewer) in batches of {PRECISE_BATCH} with the final weights (precise BN, Wu & Johnson 2021)",
                "batch": "with each test batch of the training batch size normalised by its own statistics"}
        measured = [ways[k] for k in have]
        text += (f" The final model is evaluated on {n_diag} test images (a stratified subset of the test set) "
                 + "; ".join(measured[:-1]) + ("; and " if len(measured) > 2 else " and ") + measured[-1] + ".")
        text += " " + (statistics_loss(pd.DataFrame(acc).T.sort_index()) if "precise" in have else (
            "Precise-BN accuracy is absent from these records (made before it was measured), so the loss cannot be "
            "split here into the statistics mismatch and the batch noise."))
    items += [pd.DataFrame(rows), text, Figure(plot_bn_gap(ep), (
        "Gap between a training batch's statistics and the running statistics per epoch (mean over seeds ± 95% CI), "
        "one line per batch size: mean gap in running-std units and |log| variance ratio, averaged over BN layers "
        f"and the first {DIAG_BATCHES} batches of the epoch."))]
    if has_acc:
        long = pd.concat([last.assign(stat=DIAG_STATS[k][1], acc=last[DIAG_STATS[k][0]]) for k in have])
        items.append(Figure(plot_lines(stats(long, "acc", ("batch_size", "stat")), "batch_size", "stat", label=str), (
            "BatchNorm at test time: the final model's test accuracy normalising with the running statistics (eval "
            "mode), with precise statistics recomputed with the final weights (where the records have them) and "
            "with each test batch's own statistics (batches of the training batch size), mean ± 95% CI over seeds.")))
    return items


# ---------------------------------------------------------------- controls

def control_section(main: Grid, ctrl: Grid, metric: str, alpha: float = ALPHA) -> list:
    """A control grid against the main grid: accuracy per norm and batch size in both (on the cells both ran), their
    difference, and how much of the large-batch trend the control removes (the control's cells completed from the
    main grid where its runs are what the control would have run)."""
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
    items = [intro(f"Control: {kind}", ctrl),
        f"Baseline: the main grid `{main.name}` (protocol — {protocol(base)})."
        + (f" **The two grids also differ in {', '.join(confound)}: the comparison is confounded.**"
           if confound else "")
        + (" Taken from the main grid, whose runs there already have the control's step count and learning rate: "
           + "; ".join(f"({norm_label(n)}, {b})" for n, b in taken) + "." if taken else "")]
    setup = []
    for bs in sorted(shared.batch_size.unique()):
        main_bs, ctrl_bs = base[base.batch_size == bs], other[other.batch_size == bs]
        setup.append({"batch size": int(bs), "steps (main)": int_list(sorted(main_bs.steps_run.unique())),
                      "steps (control)": int_list(sorted(ctrl_bs.steps_run.unique())),
                      "epochs run (control)": int_list(sorted(ctrl_bs.epochs_run.unique())),
                      "lr (main)": ", ".join(f"{v:.3g}" for v in sorted(main_bs.effective_lr.unique())),
                      "lr (control)": ", ".join(f"{v:.3g}" for v in sorted(ctrl_bs.effective_lr.unique()))})
    items += ["**Setup per batch size** (from the records):", pd.DataFrame(setup)]
    rows, text = [], []
    x_main, x_ctrl = samples(base, metric, ("norm", "batch_size")), samples(other, metric, ("norm", "batch_size"))
    for norm, per_norm in shared.groupby("norm"):
        tests = [cell_test(pd.Series({"mean": r.mean_c, "std": r.std_c, "n": r.n_c}),
                           pd.Series({"mean": r.mean_b, "std": r.std_b, "n": r.n_b}),
                           x_ctrl.get((norm, r.batch_size)), x_main.get((norm, r.batch_size)))
                 for r in per_norm.itertuples()]
        holm_p = holm([x["p"] for x in tests])
        for r, x, h in zip(per_norm.itertuples(), tests, holm_p):
            rows.append({"norm": norm_label(norm), "batch size": int(r.batch_size),
                         "main": mean_std(r.mean_b, r.std_b, r.n_b), "control": mean_std(r.mean_c, r.std_c, r.n_c),
                         "control − main (95% CI)": plus_minus(x["diff"], x["ci95"]), "Holm p": pval(h),
                         "test": x["test"]})
        main_norm = main_stats[main_stats.norm == norm]
        ref = int(main_norm.batch_size.iloc[main_norm["mean"].argmax()])
        main_trend = trend(main_norm[main_norm.batch_size >= ref])
        ctrl_trend = trend(full_stats[(full_stats.norm == norm) & (full_stats.batch_size >= ref)])
        line = f"**{norm_label(norm)}**: its best batch size in the main grid is {ref}"
        if np.isnan(main_trend["slope"]) or np.isnan(ctrl_trend["slope"]):
            text.append(line + "; the two grids do not both have two batch sizes from there on: no trend to compare.")
            continue
        line += (f"; from there upwards accuracy changes by {plus_minus(main_trend['slope'], main_trend['ci95'])} "
                 f"points per doubling in the main grid and {plus_minus(ctrl_trend['slope'], ctrl_trend['ci95'])} in "
                 f"the control (slope ± 95% CI).")
        if np.isnan(main_trend["ci95"]) or main_trend["p"] >= alpha:
            line += (f" The main grid's trend is not significant (p = {pval(main_trend['p'])}), so no share of it is "
                     f"attributed.")
        else:
            line += (f" The control removes {1 - ctrl_trend['slope'] / main_trend['slope']:.0%} of the main grid's "
                     f"trend (1 − control slope / main slope).")
        text.append(line)
    items += ["**Accuracy, main grid vs control**, on the cells both grids ran: a paired t-test over seeds where "
              "both have every seed (the runs share the initialisation seed and the data order), Welch's t-test "
              "otherwise; p Holm-corrected across batch sizes within each norm:",
              pd.DataFrame(rows), "\n\n".join(text)]
    items.append(Figure(plot_control(main_stats[main_stats.norm.isin(shared.norm)],
                                     full_stats[full_stats.norm.isin(shared.norm)], (main.name, ctrl.name)),
                        f"Test accuracy ({metric}) against batch size, main grid `{main.name}` (solid) and control "
                        f"`{ctrl.name}` (dashed), mean ± 95% CI over seeds."))
    return items


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
    items.append(table.rename_axis("groups").reset_index())
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
    items += [note, table, "\n\n".join(lines),
              Figure(plot_lines(s, "groups", "batch_size", label=lambda bs: f"batch size {bs}"),
                     f"GroupNorm's test accuracy ({metric}) against the number of groups, one line per batch size, "
                     f"mean ± 95% CI over seeds.")]
    return items


def norms_section(grid: Grid, metric: str) -> list:
    """Every normalization in the grid across batch sizes, when it has more than BatchNorm and GroupNorm."""
    runs = grid.ok
    if runs.norm.nunique() < 3:
        return []
    s = stats(runs, metric)
    items = [intro("All normalizations across batch sizes", grid),
             "LayerNorm here is GroupNorm with 1 group, InstanceNorm GroupNorm with one group per channel (both with "
             "affine parameters); 'No norm' has none.", results_table(runs, metric), spread_table(spread(s))]
    vb = versus_best(s, "norm", within="batch_size", runs=runs, metric=metric)
    table, note = best_vs_each(vb, "norm", norm_label, "normalization")
    lines = []
    for bs, per_norm in s.groupby("batch_size"):
        best = per_norm.loc[per_norm["mean"].idxmax()]
        line = f"Batch size {int(bs)}: best {norm_label(best.norm)} ({best['mean']:.2f}%)"
        others = vb[vb.batch_size == bs]
        if len(others):
            second = others.loc[others["diff"].idxmax()]
            line += (f", ahead of {norm_label(second.norm)} by {-second['diff']:.2f} points (Holm p = "
                     f"{pval(second.p_holm)})")
        lines.append(line + ".")
    items += [note, table, "\n\n".join(lines),
              Figure(plot_lines(s, "batch_size", "norm"), f"Test accuracy ({metric}) against batch size, one line per "
                                                          f"normalization, mean ± 95% CI over seeds.")]
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


def depth_section(grid: Grid, metric: str) -> list:
    """Accuracy vs number of blocks per activation, and gradient magnitude vs layer depth."""
    runs = grid.ok
    if runs.num_blocks.nunique() < 2:
        return []
    runs = runs.assign(setting=[f"{a}, {norm_label(n)}" for a, n in zip(runs.activation, runs.norm)])
    s = stats(runs, metric, ("setting", "num_blocks"))
    prof = grad_profile(grid.epochs[grid.epochs.run_id.isin(runs.run_id)])
    items = [intro("Depth: accuracy and gradients vs number of blocks", grid),
             "The original lists accuracy and gradient magnitude by number of blocks without the code behind them; "
             "here both are measured from the records."]
    items.append(mean_std_cells(s, "num_blocks", "setting").rename_axis("blocks").reset_index())
    lines = []
    for setting, per_depth in s.groupby("setting"):
        per_depth = per_depth.sort_values("num_blocks")
        shallow, deep = per_depth.iloc[0], per_depth.iloc[-1]
        x = welch_rows(deep, shallow)
        act, norm = setting.split(", ")
        profile = prof[(prof.activation == act) & (prof.norm.map(norm_label) == norm)]
        line = (f"**{setting}**: {int(shallow.num_blocks)} → {int(deep.num_blocks)} blocks, accuracy "
                f"{shallow['mean']:.2f}% → {deep['mean']:.2f}% ({x['diff']:+.2f} points, Welch p = {pval(x['p'])}).")
        if len(profile):
            avg = profile.groupby("num_blocks").grad.mean()
            deepest = profile[profile.num_blocks == profile.num_blocks.max()].sort_values("layer")
            line += (f" Mean |gradient| over layers (first epoch): {avg.iloc[0]:.2e} with "
                     f"{plural(avg.index[0], 'block')}, {avg.iloc[-1]:.2e} with {plural(avg.index[-1], 'block')} "
                     f"({avg.iloc[-1] / avg.iloc[0] - 1:+.0%}). In the "
                     f"{int(deepest.num_blocks.iloc[0])}-block network the stem's gradient is "
                     f"{deepest.grad.iloc[0]:.2e} and the last conv's {deepest.grad.iloc[-1]:.2e} "
                     f"(stem / last = {deepest.grad.iloc[0] / deepest.grad.iloc[-1]:.2f}).")
        lines.append(line)
    items += ["\n\n".join(lines), Figure(plot_lines(s, "num_blocks", "setting", label=str), (
        f"Test accuracy ({metric}) against the number of blocks, one line per activation and norm, mean ± 95% CI over "
        "seeds."))]
    if len(prof):
        items.append(Figure(plot_grad_profile(prof), (
            "Mean |gradient| of each conv layer's weights in the first epoch (layer 0 = stem), mean over seeds, one "
            "line per number of blocks; the panels share the (log) y axis.")))
    return items
