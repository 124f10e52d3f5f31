"""Every normalization across batch sizes: accuracy, the two spreads, and the best at each batch size against every
other. The section appears for a grid with more than BatchNorm and GroupNorm; a norms control shows the main grid's
BatchNorm and GroupNorm beside its own."""
import pandas as pd

from .controls import confounds
from .load import Grid
from .plots import Figure, plot_lines
from .stats import ALPHA, pairwise, spread, stats, versus_best
from .tables import Table, best_vs_each, detectable_range, results_table, spread_table
from .text import intro, norm_label, plus_minus, pval


def beside_main(grid: Grid, main) -> tuple:
    """A norms grid's runs with the main grid's runs of the norms it lacks at its batch sizes, where nothing else in
    the protocol differs: (runs, the norms taken from the main grid)."""
    runs = grid.ok
    if main is None or main is grid or main.ok.empty or confounds(main.ok, runs):
        return runs, []
    extra = main.ok[~main.ok.norm.isin(set(runs.norm)) & main.ok.batch_size.isin(set(runs.batch_size))]
    return pd.concat([runs, extra], ignore_index=True), sorted(set(extra.norm))


def norms_section(grid: Grid, metric: str, main=None, alpha: float = ALPHA, any_norms: bool = False) -> list:
    """Every normalization in the grid across batch sizes, when it has more than BatchNorm and GroupNorm (any_norms:
    whatever norms it has, one included: a grid that no other section shows); a norms control shows the main grid's
    BatchNorm and GroupNorm beside its own."""
    runs, taken = beside_main(grid, main)
    if runs.empty or (runs.norm.nunique() < 3 and not any_norms):
        return []
    s = stats(runs, metric)
    one = runs.norm.nunique() == 1
    items = [intro(f"{norm_label(runs.norm.iloc[0])} across batch sizes" if one else
                   "All normalizations across batch sizes", grid)]
    if set(runs.norm) & {"layer", "instance", "none"}:
        items.append("LayerNorm here is GroupNorm with 1 group, InstanceNorm GroupNorm with one group per channel "
                     "(both with affine parameters); 'No norm' has none."
                     + (f" {', '.join(norm_label(n) for n in taken)}: the main grid `{main.name}`'s runs at these "
                        f"batch sizes (same protocol)." if taken else ""))
    items += [Table(results_table(runs, metric), f"Test accuracy (%, {metric}) of every normalization: mean ± sample "
                                                 f"std over seeds (n runs)."),
              Table(spread_table(spread(s)), "Every normalization's two standard deviations: run to run, and across "
                                             "batch sizes.")]
    if one:
        return items + [Figure(plot_lines(s, "batch_size", "norm"), f"Test accuracy ({metric}) against batch size, "
                                                                    f"mean ± 95% CI over seeds.")]
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
        pw = pairwise(s, "norm", within="batch_size", runs=runs, metric=metric)
        lines.append(family_text(pw, norm_label, alpha))
    items += [Table(table, note) if tested else one_run, "\n\n".join(lines),
              Figure(plot_lines(s, "batch_size", "norm"), f"Test accuracy ({metric}) against batch size, one line per "
                                                          f"normalization, mean ± 95% CI over seeds"
                     + ("." if tested else " (one run in some cells: no interval there)."))]
    return items


def family_text(pw: pd.DataFrame, label, alpha: float = ALPHA) -> str:
    """The whole Holm family of a pairwise() frame within batch sizes, in a sentence: every pair significant in it
    (the best-vs-other table shows only some of the pairs), or the smallest Holm p when none is."""
    sig = pw[pw.p_holm < alpha]
    head = f"In the whole family of {len(pw)} pairs (every pair at every batch size, one Holm correction)"
    if sig.empty:
        return (f"{head}, no pair differs significantly (smallest Holm p {pval(pw.p_holm.min())}); "
                f"{detectable_range(pw, alpha)}, so a smaller difference could go unseen.")
    return f"{head}, significant: " + "; ".join(
        f"batch size {int(r.batch_size)}, {label(r.a)} − {label(r.b)} {plus_minus(r.diff, r.ci95)} (95% CI), Holm p "
        f"{pval(r.p_holm)}" for r in sig.itertuples()) + (
        f". The other pairs are not shown to differ: {detectable_range(pw, alpha)}." if len(sig) < len(pw) else ".")
