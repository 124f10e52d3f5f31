"""Report sections for the further grids: BatchNorm diagnostics, controls, group counts, every norm, depth."""
import numpy as np
import pandas as pd

from .plots import plot_bn_gap, plot_control, plot_grad_profile, plot_lines
from .report import Grid, intro, seed_table, spread_table
from .stats import ALPHA, holm, paired, spread, stats, trend, welch_rows, welch_stats
from .text import PROTOCOL_KEYS, int_list, ms, ms_cells, norm_label, pm, plural, protocol, pval

CONTROL_KEYS = ("lr_scaling", "base_batch", "steps")  # what a control grid changes relative to its baseline


# ---------------------------------------------------------------- BatchNorm diagnostics

def bn_diagnostics_section(g: Grid) -> list:
    """BatchNorm's batch vs running statistics: their gap per epoch and batch size, and test accuracy when the test
    batch's own statistics replace the running ones."""
    from .config import DIAG_BATCHES, DIAG_TEST
    ep = g.epochs[(g.epochs.norm == "batch") & g.epochs.run_id.isin(g.ok.run_id)]
    if ep.empty or "bn_mean_gap" not in ep or ep.bn_mean_gap.isna().all():
        return []
    last = ep.sort_values("epoch").groupby("run_id").tail(1)
    has_acc = "diag_batchstat_acc" in last and last.diag_batchstat_acc.notna().any()
    items = [intro("BatchNorm diagnostics", g, [
        "gap between a training batch's statistics and the running statistics, per epoch (mean over seeds), one line "
        "per batch size: mean gap in running-std units and |log| variance ratio, averaged over BN layers and the "
        f"first {DIAG_BATCHES} batches of the epoch"] + ([
        "final model's test accuracy normalising with the running statistics (eval mode) and with each test batch's "
        "own statistics (batches of the training batch size), mean ± 95% CI over seeds"] if has_acc else []))]
    rows, diffs = [], {}  # diffs: batch size -> paired batch − running accuracy, 95% CI
    for bs, r in last.groupby("batch_size"):
        row = {"batch size": int(bs), "mean gap (final epoch)": f"{r.bn_mean_gap.mean():.3f}",
               "abs log var ratio (final epoch)": f"{r.bn_var_logratio.mean():.3f}"}
        if has_acc:
            d, h = diffs[int(bs)] = paired(r.diag_batchstat_acc - r.diag_running_acc)
            row.update({"running-stat acc": f"{r.diag_running_acc.mean():.2f}",
                        "batch-stat acc": f"{r.diag_batchstat_acc.mean():.2f}",
                        "batch − running (95% CI, paired)": pm(d, h)})
        rows.append(row)
    t = pd.DataFrame(rows)
    m = last.groupby("batch_size")[["bn_mean_gap", "bn_var_logratio"]].mean()
    text = (f"From batch size {int(m.index[0])} to {int(m.index[-1])} the mean gap goes from "
            f"{m.bn_mean_gap.iloc[0]:.3f} to {m.bn_mean_gap.iloc[-1]:.3f} and the |log variance ratio| from "
            f"{m.bn_var_logratio.iloc[0]:.3f} to {m.bn_var_logratio.iloc[-1]:.3f} (final epoch, mean over seeds).")
    if has_acc:
        n_diag = min(DIAG_TEST, int(last.test_images.min())) if "test_images" in last else DIAG_TEST
        text += (f" Evaluated on {n_diag} test images (a stratified subset of the test set), batch statistics "
                 "instead of running statistics change accuracy by "
                 + "; ".join(pm(d, h) + f" points at batch size {bs}" for bs, (d, h) in diffs.items()) + ".")
    items += [t, text, plot_bn_gap(ep)]
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
    sb, sc = stats(base, metric), stats(other, metric)
    shared = sb.merge(sc, on=["norm", "batch_size"], suffixes=("_b", "_c"))
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
        b, c = base[base.batch_size == bs], other[other.batch_size == bs]
        setup.append({"batch size": int(bs), "steps (main)": int_list(sorted(b.steps_run.unique())),
                      "steps (control)": int_list(sorted(c.steps_run.unique())),
                      "epochs run (control)": int_list(sorted(c.epochs_run.unique())),
                      "lr (main)": ", ".join(f"{v:.3g}" for v in sorted(b.effective_lr.unique())),
                      "lr (control)": ", ".join(f"{v:.3g}" for v in sorted(c.effective_lr.unique()))})
    items += ["**Setup per batch size** (from the records):", pd.DataFrame(setup)]
    rows, text = [], []
    for norm, g in shared.groupby("norm"):
        p = [welch_stats(r.mean_c, r.std_c, r.n_c, r.mean_b, r.std_b, r.n_b) for r in g.itertuples()]
        ph = holm([x["p"] for x in p])
        for r, x, h in zip(g.itertuples(), p, ph):
            rows.append({"norm": norm_label(norm), "batch size": int(r.batch_size),
                         "main": ms(r.mean_b, r.std_b, r.n_b), "control": ms(r.mean_c, r.std_c, r.n_c),
                         "control − main (95% CI)": pm(x["diff"], x["ci95"]), "Holm p": pval(h)})
        b = sb[sb.norm == norm]
        ref = int(b.batch_size.iloc[b["mean"].argmax()])
        tb = trend(b[b.batch_size >= ref])
        tc = trend(sc[(sc.norm == norm) & (sc.batch_size >= ref)])
        line = (f"**{norm_label(norm)}**: from its best batch size in the main grid ({ref}) upwards, accuracy changes "
                f"by {pm(tb['slope'], tb['ci95'])} points per doubling in the main grid and "
                f"{pm(tc['slope'], tc['ci95'])} in the control (slope ± 95% CI).")
        if np.isnan(tb["slope"]):
            line += " Only one batch size from there on: no trend to compare."
        elif np.isnan(tb["ci95"]) or tb["p"] >= alpha:
            line += f" The main grid's trend is not significant (p = {pval(tb['p'])}), so no share of it is attributed."
        else:
            line += (f" The control removes {1 - tc['slope'] / tb['slope']:.0%} of the main grid's trend "
                     f"(1 − control slope / main slope).")
        text.append(line)
    items += ["**Accuracy, main grid vs control** (Welch p Holm-corrected across batch sizes within each norm):",
              pd.DataFrame(rows), "\n\n".join(text)]
    items.append(plot_control(sb[sb.norm.isin(shared.norm)], sc[sc.norm.isin(shared.norm)], (main.name, ctrl.name),
                              metric))
    return items


# ---------------------------------------------------------------- more normalizations

def groups_section(g: Grid, metric: str) -> list:
    """GroupNorm's group count: accuracy vs groups, one line per batch size."""
    runs = g.ok[g.ok.norm == "group"]
    if runs.groups.nunique() < 2:
        return []
    s = stats(runs, metric, ("batch_size", "groups"))
    width = int_list(sorted(runs.width.unique()))
    items = [intro("GroupNorm: number of groups", g, [
        "accuracy vs number of groups (log2 axis), one line per batch size, mean ± 95% CI"]),
             f"groups = 1 normalises over all channels of a position set (LayerNorm over C, H, W); groups = width "
             f"({width}) normalises each channel alone (InstanceNorm); the seed uses 4."]
    t = ms_cells(s, "groups", "batch_size")
    t.columns = [f"batch size {c}" for c in t.columns]
    items.append(t.rename_axis("groups").reset_index())
    lines = []
    for bs, r in s.groupby("batch_size"):
        best = r.loc[r["mean"].idxmax()]
        line = (f"Batch size {int(bs)}: best mean with {plural(best.groups, 'group')} ({best['mean']:.2f}%); range "
                f"over group counts {r['mean'].max() - r['mean'].min():.2f} points.")
        four = r[r.groups == 4]
        if len(four) and int(best.groups) != 4:
            f = four.iloc[0]
            x = welch_rows(f, best)
            line += f" The seed's 4 groups: {x['diff']:+.2f} points from the best (Welch p = {pval(x['p'])})."
        lines.append(line)
    items += ["\n\n".join(lines), plot_lines(s, "groups", "batch_size", f"GroupNorm: {metric} vs groups",
                                             label=lambda b: f"batch size {b}")]
    return items


def norms_section(g: Grid, metric: str) -> list:
    """Every normalization in the grid across batch sizes, when it has more than BatchNorm and GroupNorm."""
    runs = g.ok
    if runs.norm.nunique() < 3:
        return []
    s = stats(runs, metric)
    items = [intro("All normalizations across batch sizes", g, [
        "accuracy vs batch size, one line per normalization, mean ± 95% CI"]),
             "LayerNorm here is GroupNorm with 1 group, InstanceNorm GroupNorm with one group per channel (both with "
             "affine parameters); 'No norm' has none.", seed_table(runs, metric), spread_table(spread(s))]
    lines = []
    for bs, r in s.groupby("batch_size"):
        r = r.sort_values("mean", ascending=False)
        a, b = r.iloc[0], r.iloc[1] if len(r) > 1 else None
        line = f"Batch size {int(bs)}: best {norm_label(a.norm)} ({a['mean']:.2f}%)"
        if b is not None:
            x = welch_rows(a, b)
            line += f", ahead of {norm_label(b.norm)} by {x['diff']:.2f} points (Welch p = {pval(x['p'])})"
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


def depth_section(g: Grid, metric: str) -> list:
    """Accuracy vs number of blocks per activation, and gradient magnitude vs layer depth."""
    runs = g.ok
    if runs.num_blocks.nunique() < 2:
        return []
    runs = runs.assign(setting=[f"{a}, {norm_label(n)}" for a, n in zip(runs.activation, runs.norm)])
    s = stats(runs, metric, ("setting", "num_blocks"))
    prof = grad_profile(g.epochs[g.epochs.run_id.isin(runs.run_id)])
    items = [intro("Depth: accuracy and gradients vs number of blocks", g, [
        "accuracy vs number of blocks, one line per activation (and norm), mean ± 95% CI",
        "mean |gradient| of each conv layer's weights in the first epoch (layer 0 = stem), mean over seeds, one line "
        "per number of blocks, log scale"]),
             "The seed lists accuracy and gradient magnitude by number of blocks without the code behind them; here "
             "both are measured from the records."]
    items.append(ms_cells(s, "num_blocks", "setting").rename_axis("blocks").reset_index())
    lines = []
    for setting, r in s.groupby("setting"):
        r = r.sort_values("num_blocks")
        a, b = r.iloc[0], r.iloc[-1]
        x = welch_rows(b, a)
        act, norm = setting.split(", ")
        p = prof[(prof.activation == act) & (prof.norm.map(norm_label) == norm)]
        line = (f"**{setting}**: {int(a.num_blocks)} → {int(b.num_blocks)} blocks, accuracy {a['mean']:.2f}% → "
                f"{b['mean']:.2f}% ({x['diff']:+.2f} points, Welch p = {pval(x['p'])}).")
        if len(p):
            avg = p.groupby("num_blocks").grad.mean()
            deep = p[p.num_blocks == p.num_blocks.max()].sort_values("layer")
            line += (f" Mean |gradient| over layers (first epoch): {avg.iloc[0]:.2e} with "
                     f"{plural(avg.index[0], 'block')}, {avg.iloc[-1]:.2e} with {plural(avg.index[-1], 'block')} "
                     f"({avg.iloc[-1] / avg.iloc[0] - 1:+.0%}). In the "
                     f"{int(deep.num_blocks.iloc[0])}-block network the stem's gradient is {deep.grad.iloc[0]:.2e} and "
                     f"the last conv's {deep.grad.iloc[-1]:.2e} "
                     f"(stem / last = {deep.grad.iloc[0] / deep.grad.iloc[-1]:.2f}).")
        lines.append(line)
    items += ["\n\n".join(lines), plot_lines(s, "num_blocks", "setting", f"{metric} vs depth", label=str)]
    if len(prof):
        items.append(plot_grad_profile(prof))
    return items

