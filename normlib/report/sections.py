"""The report's sections on the main grid, BatchNorm vs GroupNorm: header, batch sizes, the original's outcomes, the
comparison with the original, the choice of metric, provenance. Each returns a list of items for show()."""
import pandas as pd

from .load import K, Grid, check_metric, metric_text
from .original import ORIGINAL_PROTOCOL, ORIGINAL_RUNS, ORIGINAL_TABLE, PAIR, TOL, original_stats, outcomes
from .plots import plot_accuracy, plot_curves, plot_spread
from .stats import ALPHA, compare, spread, stats
from .tables import provenance_table, results_table, spread_table, stats_table, status_table
from .text import mean_std, norm_label, param_text, protocol, pval, varied


def intro(title: str, grid: Grid, figures=()) -> str:
    """A section's opening: its title, grid, how many runs, protocol and a list of its figures."""
    figs = " Figures: " + "; ".join(f"({i}) {f}" for i, f in enumerate(figures, 1)) + "." if figures else ""
    return (f"## {title}\n\nGrid `{grid.name}` ({grid.description or 'no description'}): {len(grid.ok)} successful "
            f"runs of {grid.n_expected} expected. Protocol — {protocol(grid.ok)}.{figs}")


def show(items) -> None:
    """Display a section: strings as markdown, DataFrames as markdown tables, figures as images."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display
    for item in items:
        if isinstance(item, str):
            display(Markdown(item))
        elif isinstance(item, pd.DataFrame):
            display(Markdown(item.to_markdown(index=False) if len(item) else "(empty table)"))
        else:
            display(item)
            plt.close(item)


def pair_runs(grid: Grid):
    """The grid's successful BatchNorm and GroupNorm runs; None unless it has both."""
    runs = grid.ok[grid.ok.norm.isin(PAIR)]
    return runs if set(runs.norm) == set(PAIR) else None


def header_section(grids: list, metric: str, k: int = K, tol: float = TOL, alpha: float = ALPHA) -> list:
    """What the report shows: the grids, the metric, the statistics, and any run without a result."""
    check_metric(grids, metric)
    main = grids[0]
    items = [f"Main grid `{main.name}`" + (f"; further grids: {', '.join(f'`{g.name}`' for g in grids[1:])}"
                                           if len(grids) > 1 else "") + ". "
             f"Every table and figure uses **{metric}**: {metric_text(metric, k)}. Means are over seeds; ± is the "
             f"sample std over seeds unless marked as a 95% CI (t distribution); tests are Welch's t-tests over seeds, "
             f"Holm-corrected across batch sizes where one claim rests on several batch sizes; significance level "
             f"{alpha:g}; tolerance for 'similar' {tol:g} accuracy points."]
    for grid in grids:
        missing = status_table(grid.runs, grid.expected)
        items.append(f"**Grid `{grid.name}`**: {len(grid.ok)} successful runs of {grid.n_expected} expected."
                     + ("" if missing.empty else " Runs without a result (left out of every mean):"))
        if not missing.empty:
            items.append(missing)
    return items


# ---------------------------------------------------------------- BatchNorm vs GroupNorm across batch sizes

def analysis(runs: pd.DataFrame, metric: str = "final_acc", alpha: float = ALPHA) -> str:
    """Markdown paragraphs on BatchNorm vs GroupNorm whose every number is computed from the records."""
    s = stats(runs[runs.norm.isin(PAIR)], metric)
    lines = []
    for _, r in spread(s).iterrows():
        per_bs = s[s.norm == r.norm].sort_values("batch_size")
        lines.append(f"**{norm_label(r.norm)}**: mean accuracy ranges from {r.worst:.2f}% (batch size "
                     f"{int(r.worst_bs)}) to {r.best:.2f}% (batch size {int(r.best_bs)}); from batch size "
                     f"{int(per_bs.batch_size.iloc[0])} to {int(per_bs.batch_size.iloc[-1])} it changes by "
                     f"{per_bs['mean'].iloc[-1] - per_bs['mean'].iloc[0]:+.2f} points. Run-to-run spread "
                     f"{r.run_to_run:.2f}; sensitivity to batch size {r.across_bs:.2f}.")
    cmp = compare(s, *PAIR).sort_values("batch_size")
    sig = cmp[cmp.p_holm < alpha]
    if len(sig):
        lines.append("BatchNorm − GroupNorm is significant after Holm's correction at batch size(s) "
                     + "; ".join(f"{int(b)} ({d:+.2f} points, Holm p = {pval(p)})"
                                 for b, d, p in zip(sig.batch_size, sig["diff"], sig.p_holm)) + ".")
    else:
        lines.append("BatchNorm − GroupNorm is significant after Holm's correction at no batch size"
                     + ("" if cmp.p.notna().all() else " (some batch sizes have fewer than 2 runs per norm: no test)")
                     + ".")
    return "\n\n".join(lines)


def batch_size_section(grid: Grid, metric: str, alpha: float = ALPHA) -> list:
    """BatchNorm vs GroupNorm across batch sizes: the original's layout, statistics, the two spreads, figures,
    analysis."""
    runs = pair_runs(grid)
    if runs is None:
        return []
    s = stats(runs, metric)
    items = [intro("BatchNorm vs GroupNorm across batch sizes", grid, [
        "accuracy vs batch size, mean ± 95% CI over seeds", "every run's accuracy",
        "learning curves (test accuracy per epoch, mean over seeds)"]),
             f"**Results** ({metric}, %, mean ± sample std over seeds, the original's layout):",
             results_table(runs, metric),
             f"**Statistics per batch size**: 95% CI of each mean; BatchNorm − GroupNorm with the 95% CI of the "
             f"difference (Welch), Welch's two-sided p and the Holm-corrected p across the "
             f"{s.batch_size.nunique()} batch sizes:", stats_table(s),
             "**Two different standard deviations** (the original reports only the second and calls it an average "
             "standard deviation):", spread_table(spread(s))]
    items += ["**Analysis**\n\n" + analysis(runs, metric, alpha),
              plot_accuracy(runs, metric), plot_spread(runs, metric),
              plot_curves(grid.epochs[grid.epochs.run_id.isin(runs.run_id)], PAIR)]
    return items


# ---------------------------------------------------------------- the original

def outcomes_section(grid: Grid, metric: str, tol: float = TOL, alpha: float = ALPHA) -> list:
    """The original's three expected outcomes, each decided by a stated rule on our records and on the original's
    table."""
    ours = pair_runs(grid)
    if ours is None:
        return []
    mine, theirs = outcomes(stats(ours, metric), tol, alpha), outcomes(original_stats(), tol, alpha)
    items = [intro("The original's expected outcomes", grid),
             "Each expectation is decided by the rule stated under it, on our runs and, with the same rule, on the "
             f"original's published table (n = {ORIGINAL_RUNS} per cell)."]
    summary = pd.DataFrame({"expected outcome": [f"{i}. {o.claim}" for i, o in enumerate(mine, 1)],
                            f"ours ({metric})": [o.verdict for o in mine],
                            "original's table (best_acc)": [o.verdict for o in theirs]})
    items.append(summary)
    for i, (o, their) in enumerate(zip(mine, theirs), 1):
        items.append(f"**{i}. {o.claim}**\n\n*Rule*: {o.rule}\n\n- Ours: **{o.verdict}** — {o.evidence}.\n"
                     f"- The original's table: **{their.verdict}** — {their.evidence}.")
    return items


def original_section(grid: Grid, metric: str) -> list:
    """Our numbers next to the original's published table, and the original's spread claims recomputed from that
    table."""
    ours = pair_runs(grid)
    if ours is None:
        return []
    original = original_stats()
    mine = {m: stats(ours, m).set_index(["norm", "batch_size"]) for m in dict.fromkeys(["best_acc", metric])}
    rows = []
    for bs in sorted(set(ORIGINAL_TABLE) | set(ours.batch_size)):
        row = {"batch size": int(bs)}
        for norm, short in zip(PAIR, ("BN", "GN")):
            cell = original[(original.norm == norm) & (original.batch_size == bs)]
            row[f"original {short} (published)"] = (f"{cell['mean'].iloc[0]:.2f} ± {cell['std'].iloc[0]:.2f}"
                                                    if len(cell) else "—")
            for m, ours_m in mine.items():
                r = ours_m.loc[(norm, bs)] if (norm, bs) in ours_m.index else None
                row[f"ours {short} {m}"] = mean_std(r["mean"], r["std"], r.n) if r is not None else "—"
        rows.append(row)
    original_spread = spread(original).set_index("norm")
    our_spread = spread(stats(ours, metric))
    bn_original, gn_original = original_spread.loc["batch"], original_spread.loc["group"]
    bn_means = original[original.norm == "batch"].set_index("batch_size")["mean"]
    ours_protocol = {k: sorted(ours[k].unique().tolist(), key=str) for k in ORIGINAL_PROTOCOL}
    differ = {k: v for k, v in ours_protocol.items() if v != [ORIGINAL_PROTOCOL[k]]}
    text = [
        "The original's columns are its published table, typed in once (best of 10 epochs picked on the test set, "
        f"mean ± std over {ORIGINAL_RUNS} runs); `best_acc` is the same selection on our runs. Our protocol "
        + ("matches the original's code (10 epochs, all of CIFAR-10, 4 blocks, Adam lr 1e-3, 4 groups), so the levels "
           "are comparable." if not differ else "differs from the original's code in " + "; ".join(
               f"{k} {', '.join(param_text(k, v) for v in vals)} (original: {param_text(k, ORIGINAL_PROTOCOL[k])})"
               for k, vals in differ.items()) + ": compare the shape across batch sizes, not the levels."),
        f"The original's 'average standard deviation' (BatchNorm, GroupNorm) is, recomputed from its own table, the "
        f"sample std across batch sizes of the per-batch-size means: {bn_original.across_bs:.2f} and "
        f"{gn_original.across_bs:.2f}, a measure of sensitivity to batch size. Its run-to-run spread (mean of the "
        f"per-batch-size stds over seeds) is {bn_original.run_to_run:.2f} and {gn_original.run_to_run:.2f}. "
        f"Ours ({metric}): sensitivity "
        + ", ".join(f"{r.across_bs:.2f} ({norm_label(r.norm)})" for _, r in our_spread.iterrows())
        + "; run-to-run spread "
        + ", ".join(f"{r.run_to_run:.2f} ({norm_label(r.norm)})" for _, r in our_spread.iterrows()) + ".",
        f"By the original's table, BatchNorm gains {bn_means[16] - bn_means[2]:.2f} points from batch size 2 to 16; "
        f"the original's prose gives the gain from 2 to 4 ({bn_means[4] - bn_means[2]:.2f}) for it."]
    return [intro("Comparison with the original", grid), pd.DataFrame(rows), "\n\n".join(text)]


# ---------------------------------------------------------------- metric and provenance

def metrics_section(grid: Grid, metric: str) -> list:
    """How much the choice of per-run metric matters: every available metric's mean per norm and batch size."""
    names = grid.metrics
    ok = grid.ok
    if ok.empty:
        return []
    keys = varied(ok) or ["norm"]
    means = ok.groupby(keys)[names].mean().reset_index()
    gap = means.best_acc - means.final_acc
    table = pd.DataFrame({**{k: [norm_label(v) if k == "norm" else v for v in means[k]] for k in keys},
                          **{n: [f"{v:.2f}" for v in means[n]] for n in names}})
    epochs = int(ok.epochs_run.median())
    text = (f"Picking the best epoch on the test set (the original's metric) instead of taking the final epoch raises "
            f"the mean accuracy by {gap.mean():+.2f} points on average over the {len(means)} settings (from "
            f"{gap.min():+.2f} to {gap.max():+.2f}). median_last_k uses the last min(k, epochs) = "
            f"{min(grid.k, epochs)} of {epochs} epochs (median over runs).")
    if grid.has_val:
        val_gap = means.val_selected_acc - means.final_acc
        text += (f" Selecting the epoch on the validation split changes the mean by {val_gap.mean():+.2f} points on "
                 f"average relative to the final epoch.")
    else:
        text += " val_selected_acc is not available: these runs hold out no validation split (val_size=0)."
    return [intro("Choice of metric", grid),
            f"Mean test accuracy (%) over seeds under each per-run metric; the report uses **{metric}**.", table, text]


def provenance_section(grids: list) -> list:
    """One table of the environments every grid's successful runs came from."""
    tables = [provenance_table(grid.runs) for grid in grids]
    table = pd.concat([t.assign(grid=grid.name) for grid, t in zip(grids, tables) if len(t)], ignore_index=True)
    return ["## Provenance\n\nThe environments the successful runs came from, per grid.",
            table[["grid"] + [c for c in table.columns if c != "grid"]]]
