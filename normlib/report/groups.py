"""GroupNorm's number of groups: accuracy against channels per group, one line per batch size, each count against the
best at its batch size. The section appears for a grid that runs GroupNorm with more than one group count.

A group-count grid beside a main grid of the same protocol (params/cpu_groups.yaml beside cpu_all.yaml) borrows the
main grid's GroupNorm runs of the counts it lacks (the original's 4) at its batch sizes and seeds, so that every
count is compared paired by seed, and takes the main grid's BatchNorm runs there as the reference: expectation 3 is
then judged again at those batch sizes with the best count in place of the original's."""
from typing import NamedTuple

import pandas as pd

from .controls import confounds
from .load import Grid
from .original import TOL
from .plots import Figure, plot_groups
from .rules import number
from .stats import ALPHA, POWER, bands, compare, holm_detectable, stats, versus_best
from .tables import Table, best_vs_each
from .text import int_list, intro, mean_std_cells, plural, plus_minus, pval, sizes_text

ORIGINAL_GROUPS = 4  # the original's GroupNorm: 4 groups of 16 channels


class Judged(NamedTuple):
    """BatchNorm − GroupNorm with one group count at one batch size, under the within rule's test at one batch
    size."""
    groups: int
    diff: float
    lo: float
    hi: float
    label: str  # within | beyond | not shown | no test
    test: str
    level: float  # of the interval [lo, hi]: 1 - 2 alpha

    def text(self) -> str:
        interval = "" if pd.isna(self.lo) else f", {self.level:.0%} CI [{self.lo:+.2f}, {self.hi:+.2f}]"
        return f"with {plural(self.groups, 'group')} {self.diff:+.2f}{interval} ({self.test}): {self.label}"


class AtBatchSize(NamedTuple):
    """The group-count study at one batch size: each count's stats, the best against the original's 4, and
    expectation 3 judged with both (when BatchNorm runs are there)."""
    batch_size: int
    s: pd.DataFrame
    best: int
    four: pd.Series  # versus_best's row of 4 groups (diff = 4 - best), None when 4 is the best or was not run
    judged: list  # [Judged with 4 groups, Judged with the best] ([] without BatchNorm runs or without 4 groups)

    @property
    def change(self) -> str:
        """Whether expectation 3's verdict here differs between the original's 4 groups and the best count:
        'depends' when both verdicts are decided (within or beyond) and differ, 'same' when both are decided alike or
        the best count is the original's, 'not shown' when a count's runs do not decide it (a verdict that is not
        shown is no evidence that it differs), 'no test' when a count has one run, '' when it is not judged."""
        labels = [j.label for j in self.judged]
        if not labels:
            return ""
        if "no test" in labels:
            return "no test"
        if len(labels) == 1:
            return "same"
        if "not shown" in labels:
            return "not shown"
        return "depends" if len(set(labels)) > 1 else "same"

    def undecided(self) -> str:
        """The counts whose runs do not decide expectation 3 here, as text ('16 groups', '4 and 16 groups')."""
        counts = [str(j.groups) for j in self.judged if j.label == "not shown"]
        return f"{' and '.join(counts)} group{'s' if counts != ['1'] else ''}"


def is_study(grid: Grid) -> bool:
    """Whether a grid runs GroupNorm with more than one group count."""
    return grid.ok[grid.ok.norm == "group"].groups.nunique() > 1


def beside_main(grid: Grid, main) -> tuple:
    """A group-count grid's GroupNorm runs, with the main grid's GroupNorm runs of the counts it lacks at its batch
    sizes and seeds, where nothing but the groups differs: (GroupNorm runs, the counts taken, BatchNorm runs there)."""
    runs = grid.ok[grid.ok.norm == "group"]
    none = runs.iloc[:0]
    if main is None or main is grid or runs.empty:
        return runs, [], none
    base = main.ok[main.ok.batch_size.isin(set(runs.batch_size)) & main.ok.seed.isin(set(runs.seed))]
    if base.empty or [k for k in confounds(base, runs) if k != "groups"]:
        return runs, [], none
    taken = base[(base.norm == "group") & ~base.groups.isin(set(runs.groups))]
    return pd.concat([runs, taken], ignore_index=True), sorted(int(g) for g in taken.groups.unique()), \
        base[base.norm == "batch"]


def commits_text(runs: pd.DataFrame, taken: list) -> str:
    """Which commits the borrowed counts' runs and this grid's own ran at, from their records: where they differ, the
    pairing rests on the engine training alike at both, which the measurement under this grid's pairing/ folder
    checks on a whole run; '' where one commit made them all or the records do not say."""
    if "prov_git_commit" not in runs:
        return ""
    made = {borrowed: sorted({c[:7] for c in runs[runs.groups.isin(taken) == borrowed].prov_git_commit.dropna()})
            for borrowed in (True, False)}
    if not made[True] or not made[False] or made[True] == made[False]:
        return ""
    return (f" They ran at commit {', '.join(made[True])}, this grid's own runs at {', '.join(made[False])}: the "
            f"pairing assumes both commits train alike, which one of those runs, trained again at both commits on "
            f"one machine, measures (the pairing/ folder beside this grid's records).")


def judge(bn: pd.DataFrame, gn: pd.DataFrame, metric: str, tol: float, alpha: float) -> Judged:
    """BatchNorm − GroupNorm at one batch size (paired over seeds where both have every seed), judged by bands()."""
    both = pd.concat([bn, gn], ignore_index=True)
    row = compare(stats(both, metric), "batch", "group", runs=both, metric=metric)
    r = row.join(bands(row, tol, alpha)).iloc[0]
    return Judged(int(gn.groups.iloc[0]), float(r["diff"]), float(r.lo), float(r.hi), r.label, r.test, r.level)


def study(grid: Grid, main, metric: str, tol: float = TOL, alpha: float = ALPHA) -> tuple:
    """(GroupNorm runs, counts taken from the main grid, BatchNorm runs, versus_best frame, [AtBatchSize])."""
    runs, taken, bn = beside_main(grid, main)
    s = stats(runs, metric, ("batch_size", "groups"))
    vb = versus_best(s, "groups", within="batch_size", runs=runs, metric=metric)
    per = []
    for bs, cells in s.groupby("batch_size"):
        best = int(cells.loc[cells["mean"].idxmax()].groups)
        four = vb[(vb.batch_size == bs) & (vb.groups == ORIGINAL_GROUPS)]
        at = runs[runs.batch_size == bs]
        ref = bn[bn.batch_size == bs]
        judged = ([judge(ref, at[at.groups == g], metric, tol, alpha) for g in dict.fromkeys((ORIGINAL_GROUPS, best))]
                  if len(ref) and (at.groups == ORIGINAL_GROUPS).any() else [])
        per.append(AtBatchSize(int(bs), cells, best, four.iloc[0] if len(four) else None, judged))
    return runs, taken, bn, vb, per


def four_text(at: AtBatchSize, alpha: float = ALPHA) -> str:
    if at.best == ORIGINAL_GROUPS:
        return f"The original's {ORIGINAL_GROUPS} groups are the best count here."
    if at.four is None:
        return f"The original's {ORIGINAL_GROUPS} groups were not run here."
    f = at.four
    text = (f"Best − the original's {ORIGINAL_GROUPS} groups: {plus_minus(-f['diff'], f.ci95)} points (95% CI, "
            f"{f.test}), Holm p = {pval(f.p_holm)} in the family of {int(f.family)} pairs.")
    if f.p_holm < alpha:
        return text
    return text + (f" Not shown better, and these runs could not have shown much: at Holm's first step (two-sided, "
                   f"{alpha:g} / {int(f.family)}) they detect a difference of {power_text(f, alpha)}.")


def power_text(row, alpha: float = ALPHA) -> str:
    """The smallest difference a versus_best() row's test detects at Holm's first step, in words."""
    return f"about {holm_detectable(row.se, row.df, int(row.family), alpha):.1f} points with {POWER:.0%} power"


def within_text(at: AtBatchSize, tol: float, alpha: float) -> str:
    """The within expectation at one batch size with the original's 4 groups and with the best count, and whether it
    moves."""
    if not at.judged:
        return ""
    level, n = f"{1 - 2 * alpha:.0%}", number("within")
    text = (f"Expectation {n} at batch size {at.batch_size}, by rule {n}'s test at one batch size (BatchNorm − "
            f"GroupNorm: within when the {level} CI lies inside ±{tol:g}, beyond when it lies outside, not shown "
            f"otherwise): " + "; ".join(j.text() for j in at.judged) + ". ")
    if at.change == "no test":
        return text + "A cell with one run describes and never decides: the counts' verdicts are not compared."
    if len(at.judged) == 1:
        return text + "The best count is the original's, so the verdict there does not depend on it."
    return text + CHANGE_TEXT[at.change].format(undecided=at.undecided()) + (
        " The best count is picked on these runs, which flatters GroupNorm: read a change toward 'within' as an "
        "upper bound on what the choice of groups can do.")


CHANGE_TEXT = {"depends": "**The verdict there depends on the number of groups.**",
               "same": "The verdict there is the same with either count.",
               "not shown": "Whether the verdict there depends on the number of groups is not shown: the runs with "
                            "{undecided} do not decide it."}
FINDING_TEXT = {  # the key findings' line, in this order, over the batch sizes of each kind; {n}: the within rule's
    "depends": "**Expectation {n}'s verdict at {sizes} depends on the number of groups.**",
    "not shown": "Whether expectation {n}'s verdict at {sizes} depends on the number of groups is not shown: the runs "
                 "with {undecided} do not decide it.",
    "same": "Expectation {n}'s verdict at {sizes} is the same with the original's and the best count.",
    "no test": "At {sizes} expectation {n} is not judged again: a cell with one run describes and never decides."}


def groups_section(grid: Grid, metric: str, main=None, tol: float = TOL, alpha: float = ALPHA) -> list:
    """GroupNorm's group count: accuracy vs channels per group, one line per batch size, the main grid's BatchNorm
    as a reference where the grid runs beside it, and expectation 3 with the best count."""
    if not is_study(grid):
        return []
    runs, taken, bn, vb, per = study(grid, main, metric, tol, alpha)
    width = int(runs.width.iloc[0])  # one width: the grid varies the groups
    items = [intro("GroupNorm: number of groups", grid),
             f"groups = 1 normalises over all channels of a position set (LayerNorm over C, H, W); groups = width "
             f"({width}) normalises each channel alone (InstanceNorm); the original uses {ORIGINAL_GROUPS}."
             + (f" Groups {int_list(taken)}: the main grid `{main.name}`'s runs at seeds "
                f"{int_list(sorted(runs.seed.unique()))}, not trained again." + commits_text(runs, taken)
                if taken else "")]
    s = pd.concat([a.s for a in per])
    table = mean_std_cells(s, "groups", "batch_size")
    table.columns = [f"batch size {c}" for c in table.columns]
    table.insert(0, "channels per group", [f"{width // int(g)}" for g in table.index])
    items.append(Table(table.rename_axis("groups").reset_index(), f"GroupNorm's test accuracy (%, {metric}) per "
                                                                  f"number of groups and batch size: mean ± std over "
                                                                  f"seeds (n runs)."))
    vb_table, note = best_vs_each(vb, "groups", lambda g: int(g), "group count")
    lines = [f"Batch size {a.batch_size}: best mean with {plural(a.best, 'group')} "
             f"({a.s['mean'].max():.2f}%); range over group counts {a.s['mean'].max() - a.s['mean'].min():.2f} "
             f"points. {four_text(a, alpha)} {within_text(a, tol, alpha)}".strip() for a in per]
    ref = stats(bn, metric) if len(bn) else None
    items += [Table(vb_table, note), "\n\n".join(lines),
              Figure(plot_groups(s, width, ref, ORIGINAL_GROUPS, runs, metric),
                     f"GroupNorm's test accuracy ({metric}) against channels per group (number of groups under it), "
                     f"one line per batch size, mean ± 95% CI over seeds and each run a dot; the dotted line marks "
                     f"the original's {ORIGINAL_GROUPS} groups"
                     + (f"; dashed, BatchNorm at the same batch size and seeds in `{main.name}` (band: its 95% CI)"
                        if ref is not None else "") + ".")]
    return items


def groups_finding(grids: list, metric: str, tol: float = TOL, alpha: float = ALPHA) -> str:
    """The key findings' line of a group-count grid beside the main grid: the best count against the original's,
    and whether expectation 3 moves with the count; '' without one."""
    main, n = grids[0], number("within")
    for grid in filter(is_study, grids[1:]):
        *_, per = study(grid, main, metric, tol, alpha)
        parts = [f"At batch size {a.batch_size} the best count is {plural(a.best, 'group')}. {four_text(a, alpha)}"
                 + (f" Expectation {n} there: " + "; ".join(j.text() for j in a.judged) + "." if a.judged else "")
                 for a in per]
        by = {change: [a for a in per if a.change == change] for change in FINDING_TEXT}
        undecided = "; ".join(a.undecided() + ("" if len(by["not shown"]) == 1 else f" at batch size {a.batch_size}")
                              for a in by["not shown"])
        said = [FINDING_TEXT[change].format(n=n, sizes=sizes_text(a.batch_size for a in ats), undecided=undecided)
                for change, ats in by.items() if ats]
        return (f"- **Group count** (`{grid.name}`). " + " ".join(parts) + " "
                + (" ".join(said) or f"No BatchNorm reference: expectation {n} is not judged again."))
    return ""
