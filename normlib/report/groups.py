"""GroupNorm's number of groups: accuracy against the group count, one line per batch size, each count against the
best at its batch size. The section appears for a grid that runs GroupNorm with more than one group count."""
from .load import Grid
from .plots import Figure, plot_lines
from .stats import stats, versus_best
from .tables import Table, best_vs_each
from .text import int_list, intro, mean_std_cells, plural, pval


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
