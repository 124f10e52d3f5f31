"""The report's sections beyond BatchNorm vs GroupNorm across batch sizes: BatchNorm diagnostics, controls against
the main grid, group counts, every normalization, depth. Each appears when its grid holds what it needs."""
import numpy as np
import pandas as pd

from ..config import DIAG_BATCHES, DIAG_TEST
from .load import Grid
from .plots import plot_bn_gap, plot_control, plot_grad_profile, plot_lines
from .sections import intro
from .stats import ALPHA, holm, paired, spread, stats, trend, welch_rows, welch_stats
from .tables import results_table, spread_table
from .text import PROTOCOL_KEYS, int_list, mean_std, mean_std_cells, norm_label, plural, plus_minus, protocol, pval

CONTROL_KEYS = ("lr_scaling", "base_batch", "steps")  # what a control grid changes relative to its baseline


# ---------------------------------------------------------------- BatchNorm diagnostics

def bn_diagnostics_section(grid: Grid) -> list:
    """BatchNorm's batch vs running statistics: their gap per epoch and batch size, and test accuracy when the test
    batch's own statistics replace the running ones."""
    ep = grid.epochs[(grid.epochs.norm == "batch") & grid.epochs.run_id.isin(grid.ok.run_id)]
    if ep.empty or "bn_mean_gap" not in ep or ep.bn_mean_gap.isna().all():
        return []
    last = ep.sort_values("epoch").groupby("run_id").tail(1)
    has_acc = "diag_batchstat_acc" in last and last.diag_batchstat_acc.notna().any()
    items = [intro("BatchNorm diagnostics", grid, [
        "gap between a training batch's statistics and the running statistics, per epoch (mean over seeds), one line "
        "per batch size: mean gap in running-std units and |log| variance ratio, averaged over BN layers and the "
        f"first {DIAG_BATCHES} batches of the epoch"] + ([
        "final model's test accuracy normalising with the running statistics (eval mode) and with each test batch's "
        "own statistics (batches of the training batch size), mean ± 95% CI over seeds"] if has_acc else []))]
    rows, diffs = [], {}  # diffs: batch size -> paired batch − running accuracy, 95% CI
    for bs, runs in last.groupby("batch_size"):
        row = {"batch size": int(bs), "mean gap (final epoch)": f"{runs.bn_mean_gap.mean():.3f}",
               "abs log var ratio (final epoch)": f"{runs.bn_var_logratio.mean():.3f}"}
        if has_acc:
            d, h = diffs[int(bs)] = paired(runs.diag_batchstat_acc - runs.diag_running_acc)
            row.update({"running-stat acc": f"{runs.diag_running_acc.mean():.2f}",
                        "batch-stat acc": f"{runs.diag_batchstat_acc.mean():.2f}",
                        "batch − running (95% CI, paired)": plus_minus(d, h)})
        rows.append(row)
    gaps = last.groupby("batch_size")[["bn_mean_gap", "bn_var_logratio"]].mean()
    text = (f"From batch size {int(gaps.index[0])} to {int(gaps.index[-1])} the mean gap goes from "
            f"{gaps.bn_mean_gap.iloc[0]:.3f} to {gaps.bn_mean_gap.iloc[-1]:.3f} and the |log variance ratio| from "
            f"{gaps.bn_var_logratio.iloc[0]:.3f} to {gaps.bn_var_logratio.iloc[-1]:.3f} (final epoch, mean over "
            f"seeds).")
    if has_acc:
        n_diag = min(DIAG_TEST, int(last.test_images.min())) if "test_images" in last else DIAG_TEST
        text += (f" Evaluated on {n_diag} test images (a stratified subset of the test set), batch statistics "
                 "instead of running statistics change accuracy by "
                 + "; ".join(plus_minus(d, h) + f" points at batch size {bs}" for bs, (d, h) in diffs.items()) + ".")
    items += [pd.DataFrame(rows), text, plot_bn_gap(ep)]
    if has_acc:
        long = pd.concat([last.assign(stat="running statistics", acc=last.diag_running_acc),
                          last.assign(stat="batch statistics", acc=last.diag_batchstat_acc)])
        items.append(plot_lines(stats(long, "acc", ("batch_size", "stat")), "batch_size", "stat",
                                "BatchNorm at test time: running vs batch statistics", label=str))
    return items


# ---------------------------------------------------------------- controls

def control_kind(runs: pd.DataFrame) -> str:
    """What a grid controls for, from its runs: equal steps and/or linear learning-rate scaling; '' for neither."""
    ok = runs[runs.status == "ok"]
    kinds = []
    if (ok.steps > 0).any():
        kinds.append(f"equal number of optimizer steps ({int_list(sorted(ok.steps.unique()))} for every batch size)")
    if (ok.lr_scaling == "linear").any():
        kinds.append(f"learning rate scaled linearly with the batch size (lr × batch size / "
                     f"{int_list(sorted(ok.base_batch.unique()))})")
    return " and ".join(kinds)


def control_section(main: Grid, ctrl: Grid, metric: str, alpha: float = ALPHA) -> list:
    """A control grid against the main grid: accuracy per norm and batch size in both, their difference, and how
    much of the large-batch trend the control removes."""
    kind = control_kind(ctrl.runs)
    if not kind or ctrl is main:
        return []
    base, other = main.ok, ctrl.ok
    if control_kind(main.runs):
        return [intro(f"Control: {kind}", ctrl), f"Not compared: the main grid `{main.name}` is itself a control "
                f"({control_kind(main.runs)}); render with the baseline grid as `grid`."]
    main_stats, ctrl_stats = stats(base, metric), stats(other, metric)
    shared = main_stats.merge(ctrl_stats, on=["norm", "batch_size"], suffixes=("_b", "_c"))
    if shared.empty:
        return [intro(f"Control: {kind}", ctrl), f"No (norm, batch size) in common with the main grid `{main.name}`."]
    confound = [k for k in PROTOCOL_KEYS if k not in ("norm", "batch_size", *CONTROL_KEYS) and k in base and k in other
                and sorted(base[k].unique().tolist()) != sorted(other[k].unique().tolist())]
    items = [intro(f"Control: {kind}", ctrl, [
        f"accuracy vs batch size, main grid `{main.name}` (solid) and this control (dashed), mean ± 95% CI"]),
        f"Baseline: the main grid `{main.name}` (protocol — {protocol(base)})."
        + (f" **The two grids also differ in {', '.join(confound)}: the comparison is confounded.**"
           if confound else "")]
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
    for norm, per_norm in shared.groupby("norm"):
        tests = [welch_stats(r.mean_c, r.std_c, r.n_c, r.mean_b, r.std_b, r.n_b) for r in per_norm.itertuples()]
        holm_p = holm([x["p"] for x in tests])
        for r, x, h in zip(per_norm.itertuples(), tests, holm_p):
            rows.append({"norm": norm_label(norm), "batch size": int(r.batch_size),
                         "main": mean_std(r.mean_b, r.std_b, r.n_b), "control": mean_std(r.mean_c, r.std_c, r.n_c),
                         "control − main (95% CI)": plus_minus(x["diff"], x["ci95"]), "Holm p": pval(h)})
        main_norm = main_stats[main_stats.norm == norm]
        ref = int(main_norm.batch_size.iloc[main_norm["mean"].argmax()])
        main_trend = trend(main_norm[main_norm.batch_size >= ref])
        ctrl_trend = trend(ctrl_stats[(ctrl_stats.norm == norm) & (ctrl_stats.batch_size >= ref)])
        line = (f"**{norm_label(norm)}**: from its best batch size in the main grid ({ref}) upwards, accuracy changes "
                f"by {plus_minus(main_trend['slope'], main_trend['ci95'])} points per doubling in the main grid and "
                f"{plus_minus(ctrl_trend['slope'], ctrl_trend['ci95'])} in the control (slope ± 95% CI).")
        if np.isnan(main_trend["slope"]):
            line += " Only one batch size from there on: no trend to compare."
        elif np.isnan(main_trend["ci95"]) or main_trend["p"] >= alpha:
            line += (f" The main grid's trend is not significant (p = {pval(main_trend['p'])}), so no share of it is "
                     f"attributed.")
        else:
            line += (f" The control removes {1 - ctrl_trend['slope'] / main_trend['slope']:.0%} of the main grid's "
                     f"trend (1 − control slope / main slope).")
        text.append(line)
    items += ["**Accuracy, main grid vs control** (Welch p Holm-corrected across batch sizes within each norm):",
              pd.DataFrame(rows), "\n\n".join(text)]
    items.append(plot_control(main_stats[main_stats.norm.isin(shared.norm)],
                              ctrl_stats[ctrl_stats.norm.isin(shared.norm)], (main.name, ctrl.name), metric))
    return items


# ---------------------------------------------------------------- more normalizations

def groups_section(grid: Grid, metric: str) -> list:
    """GroupNorm's group count: accuracy vs groups, one line per batch size."""
    runs = grid.ok[grid.ok.norm == "group"]
    if runs.groups.nunique() < 2:
        return []
    s = stats(runs, metric, ("batch_size", "groups"))
    width = int_list(sorted(runs.width.unique()))
    items = [intro("GroupNorm: number of groups", grid, [
        "accuracy vs number of groups (log2 axis), one line per batch size, mean ± 95% CI"]),
             f"groups = 1 normalises over all channels of a position set (LayerNorm over C, H, W); groups = width "
             f"({width}) normalises each channel alone (InstanceNorm); the original uses 4."]
    table = mean_std_cells(s, "groups", "batch_size")
    table.columns = [f"batch size {c}" for c in table.columns]
    items.append(table.rename_axis("groups").reset_index())
    lines = []
    for bs, per_groups in s.groupby("batch_size"):
        best = per_groups.loc[per_groups["mean"].idxmax()]
        line = (f"Batch size {int(bs)}: best mean with {plural(best.groups, 'group')} ({best['mean']:.2f}%); range "
                f"over group counts {per_groups['mean'].max() - per_groups['mean'].min():.2f} points.")
        four = per_groups[per_groups.groups == 4]
        if len(four) and int(best.groups) != 4:
            x = welch_rows(four.iloc[0], best)
            line += f" The original's 4 groups: {x['diff']:+.2f} points from the best (Welch p = {pval(x['p'])})."
        lines.append(line)
    items += ["\n\n".join(lines), plot_lines(s, "groups", "batch_size", f"GroupNorm: {metric} vs groups",
                                             label=lambda bs: f"batch size {bs}")]
    return items


def norms_section(grid: Grid, metric: str) -> list:
    """Every normalization in the grid across batch sizes, when it has more than BatchNorm and GroupNorm."""
    runs = grid.ok
    if runs.norm.nunique() < 3:
        return []
    s = stats(runs, metric)
    items = [intro("All normalizations across batch sizes", grid, [
        "accuracy vs batch size, one line per normalization, mean ± 95% CI"]),
             "LayerNorm here is GroupNorm with 1 group, InstanceNorm GroupNorm with one group per channel (both with "
             "affine parameters); 'No norm' has none.", results_table(runs, metric), spread_table(spread(s))]
    lines = []
    for bs, per_norm in s.groupby("batch_size"):
        ranked = per_norm.sort_values("mean", ascending=False)
        first, second = ranked.iloc[0], ranked.iloc[1] if len(ranked) > 1 else None
        line = f"Batch size {int(bs)}: best {norm_label(first.norm)} ({first['mean']:.2f}%)"
        if second is not None:
            x = welch_rows(first, second)
            line += f", ahead of {norm_label(second.norm)} by {x['diff']:.2f} points (Welch p = {pval(x['p'])})"
        lines.append(line + ".")
    items += ["\n\n".join(lines), plot_lines(s, "batch_size", "norm", f"{metric} vs batch size, every normalization")]
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
    items = [intro("Depth: accuracy and gradients vs number of blocks", grid, [
        "accuracy vs number of blocks, one line per activation (and norm), mean ± 95% CI",
        "mean |gradient| of each conv layer's weights in the first epoch (layer 0 = stem), mean over seeds, one line "
        "per number of blocks, log scale"]),
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
    items += ["\n\n".join(lines), plot_lines(s, "num_blocks", "setting", f"{metric} vs depth", label=str)]
    if len(prof):
        items.append(plot_grad_profile(prof))
    return items
