"""The report's sections on the main grid, BatchNorm vs GroupNorm: title, batch sizes, the original's outcomes, the
comparison with the original, the choice of metric, methods, provenance. Each returns a list of items for a Page:
markdown strings, Tables and Figures."""
import numpy as np
import pandas as pd

from .load import K, METRIC_HEADS, Grid, check_metric, metric_text
from .. import norms
from ..config import RunConfig
from .controls import control_kind, control_label, control_runs
from .original import (ORIGINAL_METRIC, ORIGINAL_RUNS, ORIGINAL_TABLE, PAIR, TOL, original_stats, original_steps,
                       protocol_differences)
from .by_metric import EPOCH_WORDS, SIDE_BY_SIDE, splits
from .rules import outcomes
from .rules.base import steps_note, tests_text
from .pixels import pixel_cost
from .plots import Figure, plot_accuracy, plot_curves
from .stats import ALPHA, compare, spread, stats, welch_rows
from .tables import (Table, detectable_range, provenance_column, results_table, spread_table, stats_table,
                     status_table)
from .text import (ONE_BS, ONE_SEED, intro, mean_std, norm_label, plural, plus_minus, protocol, pval,
                   sizes_text, std_text, varied)

TITLE = "BatchNorm vs GroupNorm across batch sizes on CIFAR-10"  # the heading; with the grid, the page title


def pair_runs(grid: Grid):
    """The grid's successful BatchNorm and GroupNorm runs; None unless it has both."""
    runs = grid.ok[grid.ok.norm.isin(PAIR)]
    return runs if set(runs.norm) == set(PAIR) else None


def without_pair(grid: Grid) -> str:
    """What a grid without successful runs of both BatchNorm and GroupNorm lacks, as a sentence."""
    if grid.ok.empty:
        return (f"No run of the main grid `{grid.name}` succeeded (its {plural(len(grid.runs), 'record')}: all "
                f"failed, each with its reason under Methods), so there is nothing to compare")
    have = [n for n in norms.NORMS if n in set(grid.ok.norm)]
    lacks = " and ".join(norm_label(n) for n in PAIR if n not in have)
    return (f"The main grid `{grid.name}` has no successful {lacks} run (its successful runs: "
            f"{', '.join(norm_label(n) for n in have)})")


def report_title(grid: Grid) -> str:
    """The report's heading: TITLE for a main grid with BatchNorm and GroupNorm, else the norms it has: in its run
    list and its records, failed and missing runs' too (the heading names what the grid set out to compare, such as
    the full grid's two norms while only BatchNorm's runs are done)."""
    present = {n for frame in (grid.runs, grid.expected) for n in frame.get("norm", pd.Series(dtype=object)).dropna()}
    if set(PAIR) <= present or not present:
        return TITLE
    order = list(norms.NORMS)
    names = [norm_label(n) for n in sorted(present, key=lambda n: (order + [n]).index(n))]
    return f"{' and '.join(names) if len(names) < 3 else ', '.join(names[:-1]) + ' and ' + names[-1]} across batch " \
           f"sizes on CIFAR-10"


def title_section(grids: list, metric: str, k: int = K) -> list:
    """The report's title; the main grid, how many of all the grids' runs succeeded and when they ended (each grid is
    listed under Methods); the metric."""
    check_metric(grids, metric)
    ended = pd.concat([g.ok.get("prov_ended", pd.Series(dtype=object)) for g in grids]).dropna().str[:10]
    dates = "" if ended.empty else f"Runs ended {ended.min()}" + (
        "" if ended.min() == ended.max() else f" to {ended.max()}") + ". "
    statuses = pd.concat([status_table(g.runs, g.expected).status for g in grids])
    unrun = int((statuses == "missing").sum())  # planned, no record yet (a campaign in progress)
    counts = {"without a result": len(statuses) - unrun, "not run yet": unrun}
    without = [f"{plural(n, 'run')} {words}" for words, n in counts.items() if n]
    main = grids[0]
    others = f" and {plural(len(grids) - 1, 'further grid')} (listed under Methods)" if len(grids) > 1 else ""
    return [f"# {report_title(main)}\n\nMain grid `{main.name}` ({main.description or 'no description'}): "
            f"{len(main.ok)} of {plural(main.n_expected, 'run')}{others}. {dates}Accuracy is "
            f"{metric_text(metric, k)} (`{metric}`)."
            + (f" **{' and '.join(without)}**, left out of every mean (listed under Methods)." if without else "")]


def methods_section(grids: list, metric: str, tol: float = TOL, alpha: float = ALPHA) -> list:
    """How the numbers are made: the statistics, the grids with their protocols, and any run without a result."""
    items = ["## Methods",
             f"Every table and figure uses **{metric}**. Means are over seeds; ± is the sample std over seeds unless "
             f"marked as a 95% CI (t distribution); tests are over seeds, Holm-corrected across batch sizes where one "
             f"claim rests on several batch sizes; significance level {alpha:g}; tolerance for 'similar' {tol:g} "
             f"accuracy points. A verdict is *holds* or *does not hold* only on evidence; *not shown* where the "
             f"evidence is too weak either way; one run per cell describes and never decides.",
             Table(pd.DataFrame({"grid": [f"`{g.name}`" for g in grids],
                                 "what it runs": [g.description or "no description" for g in grids],
                                 "runs": [f"{len(g.ok)} of {g.n_expected}" for g in grids]}),
                   "The grids this report reads; the first is the main grid.")]
    for grid in grids:
        missing = status_table(grid.runs, grid.expected)
        items.append(f"**Grid `{grid.name}`**: {protocol(grid.ok)}.")
        if not missing.empty:
            items.append(Table(missing, f"Runs of grid `{grid.name}` without a result, left out of every mean."))
    return items


# ---------------------------------------------------------------- BatchNorm vs GroupNorm across batch sizes

def analysis(runs: pd.DataFrame, metric: str = "final_acc", alpha: float = ALPHA) -> str:
    """Markdown paragraphs on BatchNorm vs GroupNorm whose every number is computed from the records."""
    runs = runs[runs.norm.isin(PAIR)]
    s = stats(runs, metric)
    lines = []
    for _, r in spread(s).iterrows():
        per_bs = s[s.norm == r.norm].sort_values("batch_size")
        level = (f"mean accuracy {r.best:.2f}% at batch size {int(r.best_bs)}, the only one" if len(per_bs) == 1 else
                 f"mean accuracy ranges from {r.worst:.2f}% (batch size {int(r.worst_bs)}) to {r.best:.2f}% (batch "
                 f"size {int(r.best_bs)}); from batch size {int(per_bs.batch_size.iloc[0])} to "
                 f"{int(per_bs.batch_size.iloc[-1])} it changes by "
                 f"{per_bs['mean'].iloc[-1] - per_bs['mean'].iloc[0]:+.2f} points")
        lines.append(f"**{norm_label(r.norm)}**: {level}. Run-to-run spread {std_text(r.run_to_run, ONE_SEED)}; "
                     f"sensitivity to batch size {std_text(r.across_bs, ONE_BS)}.")
    cmp = compare(s, *PAIR, runs=runs, metric=metric).sort_values("batch_size")
    tested = cmp[cmp.p.notna()]
    untested = sorted(set(s.batch_size) - set(tested.batch_size))
    if len(tested):
        sig = tested[tested.p_holm < alpha]
        low = tested.loc[tested.p_holm.idxmin()]
        lines.append((f"BatchNorm − GroupNorm differs significantly at batch size{'s' if len(sig) > 1 else ''} "
                      + "; ".join(
            f"{int(b)} ({d:+.2f} points, Holm p = {pval(p)})" for b, d, p in zip(sig.batch_size, sig["diff"],
                                                                               sig.p_holm)) + "." if len(sig) else
                      f"No batch size shows a significant BatchNorm − GroupNorm difference; the closest is batch "
                      f"size {int(low.batch_size)} ({low['diff']:+.2f} points, Holm p = {pval(low.p_holm)}); "
                      f"{detectable_range(tested, alpha)}.")
                     + f" Tests: two-sided {tests_text(tested)} (a paired test where every seed has both norms at a "
                       f"batch size, whose two runs share the initialisation seed and data order; Welch's otherwise), "
                       f"Holm-corrected across the {len(tested)} batch sizes both norms have with ≥ 2 runs.")
    if untested:
        lines.append(f"Not tested (a norm has fewer than 2 runs there): {sizes_text(untested)}.")
    return "\n\n".join(lines)


def batch_size_section(grid: Grid, metric: str, alpha: float = ALPHA) -> list:
    """BatchNorm vs GroupNorm across batch sizes: the original's layout, statistics, the two spreads, figures,
    analysis."""
    runs = pair_runs(grid)
    if runs is None:
        return []
    s = stats(runs, metric)
    return [intro("BatchNorm vs GroupNorm across batch sizes", grid),
            Table(results_table(runs, metric), f"Test accuracy (%, {metric}) in the original's layout: mean ± sample "
                                               f"std over seeds (n runs)."),
            Figure(plot_accuracy(runs, metric), f"Test accuracy ({metric}) against batch size: mean ± 95% CI over "
                                                f"seeds (bars) and every run (dots beside their mean)."),
            Figure(plot_curves(grid.epochs[grid.epochs.run_id.isin(runs.run_id)], PAIR),
                   "Learning curves: test accuracy per epoch, mean over seeds ± 95% CI (band), one panel per batch "
                   "size with one line per norm; the panels share the y axis."),
            Table(stats_table(s, runs, metric), "Statistics per batch size: 95% CI of each mean; BatchNorm − "
                                                "GroupNorm with the 95% CI of the difference, the two-sided p and "
                                                "the Holm-corrected p across the batch sizes; a paired t-test over "
                                                "seeds where every seed has both norms, Welch's otherwise."),
            Table(spread_table(spread(s)), "Two different standard deviations (the original reports only the second "
                                           "and calls it an average standard deviation)."),
            "**Analysis**\n\n" + analysis(runs, metric, alpha)]


# ---------------------------------------------------------------- the original

def tested_sizes(grid: Grid) -> list:
    """The batch sizes at which the grid runs BatchNorm or GroupNorm: its run list and its records, failed ones too."""
    default = RunConfig()
    frames = [f.reindex(columns=["norm", "batch_size"]).fillna({"norm": default.norm, "batch_size": default.batch_size})
              for f in (grid.runs, grid.expected) if len(f)]
    return sorted({int(b) for f in frames for b in f.batch_size[f.norm.isin(PAIR)]})


def steps_by_bs(runs: pd.DataFrame) -> dict:
    """{batch size: optimizer steps of each run} from the records."""
    return {int(bs): list(steps) for bs, steps in runs.groupby("batch_size").steps_run}


def grid_outcomes(grid: Grid, metric: str, tol: float = TOL, alpha: float = ALPHA) -> list:
    """The original's outcomes on a grid's BatchNorm and GroupNorm runs: paired where the seeds allow, every batch
    size the grid tests, the step counts of the records."""
    runs = pair_runs(grid)
    return outcomes(stats(runs, metric), tol, alpha, runs=runs, metric=metric, batch_sizes=tested_sizes(grid),
                    steps=steps_by_bs(runs))


def original_outcomes(tol: float = TOL, alpha: float = ALPHA) -> list:
    """The original's outcomes on its own published table (Welch tests, its step counts)."""
    return outcomes(original_stats(), tol, alpha, steps=original_steps())


def control_outcomes(main: Grid, controls, metric: str, tol: float = TOL, alpha: float = ALPHA) -> list:
    """(control grid, its outcomes, cells taken from the main grid) for every control grid among `controls` with
    both norms; none when the main grid is itself a control."""
    if control_kind(main.runs):
        return []
    out = []
    for ctrl in controls:
        if ctrl is main or not control_kind(ctrl.runs):
            continue
        cells, taken = control_runs(main, ctrl)
        cells = cells[cells.norm.isin(PAIR)]
        if set(cells.norm) == set(PAIR):
            sizes = sorted(set(tested_sizes(ctrl)) | {b for _, b in taken})
            out.append((ctrl, outcomes(stats(cells, metric), tol, alpha, runs=cells, metric=metric,
                                       batch_sizes=sizes, steps=steps_by_bs(cells),
                                       borrowed=sorted({b for _, b in taken})), taken))
    return out


def verdict_cell(o) -> str:
    return o.verdict + (f" (below its own best: {o.alt})" if o.alt else "")


def outcomes_section(grid: Grid, metric: str, tol: float = TOL, alpha: float = ALPHA, controls=()) -> list:
    """The original's three expected outcomes, each decided by a stated rule on our records, on each control grid
    among `controls` and on the original's table."""
    ours = pair_runs(grid)
    if ours is None:
        return []
    mine = grid_outcomes(grid, metric, tol, alpha)
    theirs = original_outcomes(tol, alpha)
    ctrl = control_outcomes(grid, controls, metric, tol, alpha)
    items = [intro("The original's expected outcomes", grid),
             "Each expectation is decided by the rule stated under it, on our runs"
             + (", on each control grid (its cells completed from the main grid where the main grid's runs are what "
                "the control would have run)" if ctrl else "")
             + f" and, with the same rule, on the original's published table (n = {ORIGINAL_RUNS} per cell; Welch's "
               f"t-tests, as the table has no per-seed results). {steps_note(steps_by_bs(ours))}"]
    side = {m: mine if m == metric else grid_outcomes(grid, m, tol, alpha)
            for m in dict.fromkeys([metric, *SIDE_BY_SIDE])}
    summary = pd.DataFrame({"expected outcome": [f"{i}. {o.claim}" for i, o in enumerate(mine, 1)],
                            **{f"ours ({m})": [verdict_cell(o) for o in side[m]] for m in side},
                            **{f"control `{g.name}` ({control_label(g.runs)})": [verdict_cell(o) for o in oc]
                               for g, oc, _ in ctrl},
                            "original's table (best_acc)": [verdict_cell(o) for o in theirs]})
    items.append(Table(summary, "The original's three expected outcomes and their verdicts: on our runs"
                             + (", on each control grid" if ctrl else "") + " and on the original's published table "
                             "(each rule and the numbers behind each verdict below): ours under the final and "
                             "the best epoch side by side, the second the original's own metric."))
    items.append(metric_splits_text(grid, tol, alpha))
    for i, (o, their) in enumerate(zip(mine, theirs)):
        items.append(f"**{i + 1}. {o.claim}**\n\n*Rule*: {o.rule}\n\n- Ours: **{o.verdict}** — {o.evidence}"
                     f"{o.standing()}\n"
                     + "".join(f"- Control `{g.name}` ({control_label(g.runs)}): **{oc[i].verdict}** — "
                               f"{oc[i].evidence}\n" for g, oc, _ in ctrl)
                     + f"- The original's table: **{their.verdict}** — {their.evidence}")
    return items


def metric_splits_text(grid: Grid, tol: float = TOL, alpha: float = ALPHA) -> str:
    """Whether the verdicts on our runs change between the final and the best epoch, and where they do, the runs
    that make the difference."""
    found = [s for s in splits(pair_runs(grid), tested_sizes(grid), tol, alpha) if s.differ]
    head = f"**{EPOCH_WORDS[SIDE_BY_SIDE[0]].capitalize()} against {EPOCH_WORDS[SIDE_BY_SIDE[1]]}.** "
    if not found:
        return head + "Every expectation has the same verdict under both."
    return head + " ".join(f"Expectation {s.number} changes with the metric: {s.text()}. The numbers behind each: "
                           + " ".join(f"`{m}`: {short}" for m, short in s.shorts.items()) for s in found)


def original_section(grid: Grid, metric: str, grids=()) -> list:
    """Our numbers next to the original's published table (for whichever of its norms the grid ran), ours − the
    original's per cell, the original's spread claims recomputed from that table, and what the JPEG copy costs where
    `grids` hold the data-copy control."""
    ours = grid.ok[grid.ok.norm.isin(PAIR)]
    if ours.empty:
        return []
    # ours − the original's only where the levels are comparable: the same protocol but for the copy of the data
    levels = all(d.startswith("data: ") for d in protocol_differences(ours, ORIGINAL_METRIC, grid.k))
    text = original_text(grid, ours, metric)
    cost = pixel_cost(list(grids), metric)
    if cost is not None:
        text.insert(1, f"**The JPEG copy's cost**, measured by the data-copy control (the same images with original "
                       f"and with JPEG pixels, paired run by run; its own section below): JPEG − original = "
                       f"{cost.text()}. It is measured on {cost.original.description or 'a subset'}, not at this "
                       f"grid's scale.")
    return [intro("Comparison with the original", grid),
            Table(pd.DataFrame(original_rows(ours, metric, levels)),
                  f"Our test accuracy (%, mean ± std over seeds, n runs; `{ORIGINAL_METRIC}` and `{metric}`) beside "
                  f"the original's published table (mean ± std over {ORIGINAL_RUNS} runs, the best of 10 epochs)"
                  + (f", and ours − the original's on the same selection (`{ORIGINAL_METRIC}`): the difference ± "
                     f"its 95% CI half-width and its p, by Welch's t-test on the two tables' means and stds, per cell, "
                     f"not corrected for the cells compared." if levels else ".")), "\n\n".join(text)]


def original_rows(ours: pd.DataFrame, metric: str, levels: bool) -> list:
    """A row per batch size of ours or the original's: the original's published cell and ours under its metric and
    `metric`, per norm of the pair that we ran; with `levels`, ours − the original's."""
    original = original_stats().set_index(["norm", "batch_size"])
    mine = {m: stats(ours, m).set_index(["norm", "batch_size"]) for m in dict.fromkeys([ORIGINAL_METRIC, metric])}
    ran = [(norm, short) for norm, short in zip(PAIR, ("BN", "GN")) if norm in set(ours.norm)]
    rows = []
    for bs in sorted(set(ORIGINAL_TABLE) | set(ours.batch_size)):
        row = {"batch size": int(bs)}
        for norm, short in ran:
            cell = original.loc[(norm, bs)] if (norm, bs) in original.index else None
            row[f"original {short} (published)"] = f"{cell['mean']:.2f} ± {cell['std']:.2f}" if cell is not None \
                else "—"
            for m, ours_m in mine.items():
                r = ours_m.loc[(norm, bs)] if (norm, bs) in ours_m.index else None
                row[f"ours {short} {m}"] = mean_std(r["mean"], r["std"], r.n) if r is not None else "—"
            if levels:
                best = mine[ORIGINAL_METRIC].loc[(norm, bs)] if (norm, bs) in mine[ORIGINAL_METRIC].index else None
                row[f"{short}: ours − original ({ORIGINAL_METRIC})"] = versus_published(best, cell)
        rows.append(row)
    return rows


def original_text(grid: Grid, ours: pd.DataFrame, metric: str) -> list:
    """The comparison's paragraphs: whether the protocols match, the original's two spreads recomputed from its table
    beside ours, and BatchNorm's gain with the batch size by the original's table."""
    original = original_stats().set_index(["norm", "batch_size"])
    original_spread = spread(original.reset_index()).set_index("norm")
    our_spread = spread(stats(ours, metric))
    bn_original, gn_original = original_spread.loc["batch"], original_spread.loc["group"]
    bn_means = original.loc["batch"]["mean"]
    differ = protocol_differences(ours, metric, grid.k)
    return [
        "The original's columns are its published table, typed in once (best of 10 epochs picked on the test set, "
        f"mean ± std over {ORIGINAL_RUNS} runs); `best_acc` is the same selection on our runs. Our protocol "
        + ("matches the original's in every respect the records hold (data: CIFAR-10's python pickles; fp32; all "
           "training and test images, no validation split; 10 epochs; 4 blocks of width 64; Adam lr 1e-3; 4 groups; "
           "the metric), so the levels are comparable." if not differ else
           "differs from the original's in: " + "; ".join(differ) + ". Compare the shape across batch sizes, not the "
           "levels."),
        f"The original's 'average standard deviation' (BatchNorm, GroupNorm) is, recomputed from its own table, the "
        f"sample std across batch sizes of the per-batch-size means: {bn_original.across_bs:.2f} and "
        f"{gn_original.across_bs:.2f}, a measure of sensitivity to batch size. Its run-to-run spread (mean of the "
        f"per-batch-size stds over seeds) is {bn_original.run_to_run:.2f} and {gn_original.run_to_run:.2f}. "
        f"Ours ({metric}): sensitivity "
        + ", ".join(f"{std_text(r.across_bs, ONE_BS)} ({norm_label(r.norm)})" for _, r in our_spread.iterrows())
        + "; run-to-run spread "
        + ", ".join(f"{std_text(r.run_to_run, ONE_SEED)} ({norm_label(r.norm)})" for _, r in our_spread.iterrows())
        + ".",
        f"By the original's table, BatchNorm gains {bn_means[16] - bn_means[2]:.2f} points from batch size 2 to 16; "
        f"the original's prose gives the gain from 2 to 4 ({bn_means[4] - bn_means[2]:.2f}) for it."]


def versus_published(ours, published) -> str:
    """Ours − the original's mean of one cell (two stats() rows, either None) as '±CI (p …)'; '—' without
    both."""
    if ours is None or published is None:
        return "—"
    w = welch_rows(ours, published)
    return plus_minus(w["diff"], w["ci95"]) + ("" if np.isnan(w["p"]) else f" (p {pval(w['p'])})")


# ---------------------------------------------------------------- metric and provenance

def metrics_section(grid: Grid, metric: str) -> list:
    """How much the choice of per-run metric matters: every available metric's mean per norm and batch size."""
    names = grid.metrics
    ok = grid.ok
    if ok.empty:
        return []
    keys = list(dict.fromkeys(["norm", *varied(ok)]))  # the norm always: a one-norm grid's table says which
    means = ok.groupby(keys)[names].mean().reset_index()
    gap = means.best_acc - means.final_acc
    table = pd.DataFrame({**{k.replace("_", " "): [norm_label(v) if k == "norm" else v for v in means[k]]
                             for k in keys},
                          **{METRIC_HEADS.get(n, n): [f"{v:.2f}" for v in means[n]] for n in names}})
    epochs = int(ok.epochs_run.median())
    text = (f"Picking the best epoch on the test set (the original's metric) instead of taking the final epoch raises "
            f"the mean accuracy by {gap.mean():+.2f} points on average over the {len(means)} settings (from "
            f"{gap.min():+.2f} to {gap.max():+.2f}). The median of the last k epochs (`median_last_k`) uses "
            f"min(k, epochs) = "
            f"{min(grid.k, epochs)} of {plural(epochs, 'epoch')} (median over runs).")
    if grid.has_val:
        val_gap = means.val_selected_acc - means.final_acc
        text += (f" Selecting the epoch on the validation split changes the mean by {val_gap.mean():+.2f} points on "
                 f"average relative to the final epoch.")
    else:
        text += " val_selected_acc is not available: these runs hold out no validation split (val_size=0)."
    return [intro("Choice of metric", grid),
            Table(table, "Mean test accuracy (%) over seeds under each per-run metric (columns in order: "
                         + ", ".join(f"`{n}`" for n in names) + f"); the report uses `{metric}`."),
            text]


def provenance_section(grids: list) -> list:
    """Where each grid's successful runs came from, one column per grid."""
    table = pd.DataFrame({f"grid {g.name}": provenance_column(g.runs) for g in grids})
    return ["## Provenance", Table(table.rename_axis("").reset_index(), "The engine and the environments the "
                                  "successful runs came from; a value with a run count where the runs differ.")]
