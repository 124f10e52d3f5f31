"""The data-copy control: two grids that differ only in their pixels (the original CIFAR-10 images and the same
images as our JPEG copy decodes them), paired run by run, give what the JPEG copy costs in accuracy."""
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .load import Grid
from .stats import holm, paired_stats
from .tables import Table
from .text import mean_std, norm_label, plus_minus, pval

UNIT = ["norm", "batch_size", "seed"]  # one pair: the same run trained on each copy


def is_jpeg(grid: Grid) -> bool:
    """Whether a grid's data source is a JPEG copy, by its name."""
    names = {Path(str(s)).name.lower() for s in grid.ok.get("prov_data_source", pd.Series(dtype=str)).dropna()}
    return any("jpeg" in n or "jpg" in n for n in names)


def twins(a: Grid, b: Grid) -> bool:
    """Whether two grids run the same runs except for the data source: every protocol parameter equal on the runs
    they share, the sources different."""
    if a is b or a.ok.empty or b.ok.empty or "prov_data_source" not in a.ok or "prov_data_source" not in b.ok:
        return False
    shared = a.shared(b, by=("seed",))
    sources = set(a.ok.prov_data_source.dropna()), set(b.ok.prov_data_source.dropna())
    return len(shared) > 0 and not sources[0] & sources[1]


@dataclass
class Cost:
    """JPEG − original accuracy, paired run by run: per (norm, batch size) and over every pair."""
    original: Grid
    jpeg: Grid
    cells: pd.DataFrame  # norm, batch_size, n, original/jpeg mean and std, diff, ci95, p, p_holm
    overall: dict  # paired_stats over every pair, with n
    pairs: pd.DataFrame  # one row per pair: norm, batch_size, seed, d (JPEG − original)

    def text(self) -> str:
        """The overall cost in one phrase, e.g. '-2.10 points (95% CI [-3.0, -1.2], 40 paired runs)'."""
        o = self.overall
        return (f"{o['diff']:+.2f} points (95% CI [{o['diff'] - o['ci95']:+.2f}, {o['diff'] + o['ci95']:+.2f}], "
                f"{o['n']} pairs of runs, grids `{self.jpeg.name}` − `{self.original.name}`)")


    def robustness(self) -> str:
        """How far the pooled cost rests on single cells: the pooled difference without each cell whose removal
        changes whether its 95% CI excludes 0, and the largest cost any one cell's 95% CI leaves open."""
        c, o, out = self.cells, self.overall, []
        excludes = lambda r: r["diff"] + r["ci95"] < 0 or r["diff"] - r["ci95"] > 0
        for r in c.itertuples():
            rest = paired_stats(self.pairs.d[~((self.pairs.norm == r.norm) & (self.pairs.batch_size == r.batch_size))])
            if not pd.isna(rest["ci95"]) and excludes(rest) != excludes(o):
                out.append(f"without ({norm_label(r.norm)}, {r.batch_size}) it is {rest['diff']:+.2f} (95% CI "
                           f"[{rest['diff'] - rest['ci95']:+.2f}, {rest['diff'] + rest['ci95']:+.2f}])")
        text = ("Whether the pooled interval excludes 0 rests on single cells: " + "; ".join(out) + ". ") if out else ""
        worst = (c.ci95 - c["diff"]).dropna()
        if len(worst):
            text += (f"Per cell the intervals are wide: they leave open a cost of up to {worst.min():.2f} to "
                     f"{worst.max():.2f} points (the table's last column), so the pooled figure does not bound the "
                     f"cost of any one cell.")
        return text.strip()


def pixel_cost(grids: list, metric: str):
    """The first JPEG/original twin pair among the grids as a Cost; None without one."""
    for jpeg in (g for g in grids if is_jpeg(g)):
        for original in (g for g in grids if not is_jpeg(g) and twins(g, jpeg)):
            return cost(original, jpeg, metric)
    return None


def cost(original: Grid, jpeg: Grid, metric: str) -> Cost:
    """JPEG − original, paired by (norm, batch size, seed)."""
    pairs = original.ok[UNIT + [metric]].merge(jpeg.ok[UNIT + [metric]], on=UNIT, suffixes=("_o", "_j"))
    pairs["d"] = pairs[f"{metric}_j"] - pairs[f"{metric}_o"]
    rows = []
    for (norm, bs), cell in pairs.groupby(["norm", "batch_size"]):
        rows.append({"norm": norm, "batch_size": int(bs), "n": len(cell),
                     "original": mean_std(cell[f"{metric}_o"].mean(), cell[f"{metric}_o"].std(), len(cell)),
                     "jpeg": mean_std(cell[f"{metric}_j"].mean(), cell[f"{metric}_j"].std(), len(cell)),
                     **paired_stats(cell.d)})
    cells = pd.DataFrame(rows)
    if len(cells):
        cells["p_holm"] = holm(cells.p)
    return Cost(original, jpeg, cells, {**paired_stats(pairs.d), "n": len(pairs)}, pairs[UNIT + ["d"]])


def pixels_section(grids: list, metric: str) -> list:
    """What the JPEG copy costs, from a twin pair of grids among `grids`; [] without one."""
    c = pixel_cost(grids, metric)
    if c is None:
        return []
    ok = c.original.ok
    images = f"{int(ok.train_images.iloc[0]):,} training and {int(ok.test_images.iloc[0]):,} test images" if (
        "train_images" in ok) else "the same images"
    table = pd.DataFrame({"norm": [norm_label(n) for n in c.cells.norm], "batch size": c.cells.batch_size,
                          "original pixels": c.cells.original, "JPEG copy": c.cells.jpeg})
    if (c.cells.n >= 2).all():  # one pair per cell describes the cell; the tests are over the pairs
        table["JPEG − original (95% CI, paired)"] = [plus_minus(d, h) for d, h in zip(c.cells["diff"], c.cells.ci95)]
        table["p"], table["Holm p"] = [pval(p) for p in c.cells.p], [pval(p) for p in c.cells.p_holm]
        table["largest cost not ruled out"] = [f"{h - d:.2f}" for d, h in zip(c.cells["diff"], c.cells.ci95)]
    else:
        table["JPEG − original"] = [f"{d:+.2f}" for d in c.cells["diff"]]
    o = c.overall
    verdict = ("costs accuracy" if o["diff"] + o["ci95"] < 0 else "gains accuracy" if o["diff"] - o["ci95"] > 0
               else "has no cost shown")
    worst = o["ci95"] - o["diff"]  # the largest cost the interval leaves open
    bound = (f" The interval rules out a cost larger than {worst:.2f} points at this scale." if
             verdict == "has no cost shown" and worst > 0 else "")
    return [
        "## Data copy: what the JPEG copy costs",
        f"*Grids `{c.original.name}` (original pixels) and `{c.jpeg.name}` (JPEG pixels).* Both train on {images}: "
        f"the same images, once with their original CIFAR-10 pixels and once as our JPEG copy (quality about 75, "
        f"4:2:0 chroma) decodes them, test images included. Every other parameter is the same, so each (norm, batch "
        f"size, seed) trained on both is a pair whose difference is the copy's cost alone.",
        Table(table, "Test accuracy (%, mean ± std over seeds, n pairs) on the same images with their original "
                     "pixels and with the JPEG copy's, the difference paired run by run, and the largest cost its "
                     "95% CI leaves open."),
        f"Over all {o['n']} pairs the JPEG copy {verdict}: JPEG − original = {c.text()}; p = {pval(o['p'])} "
        f"(paired t-test over the pairs).{bound}" + (f" Per cell, p is Holm-corrected across the {len(c.cells)} cells."
                                              if (c.cells.n >= 2).all() else " One pair per cell: the cells describe."),
        "What this can tell: whether, at this protocol's scale, training and testing on the JPEG copy changes "
        "accuracy, and by about how much, for both norms and a small and a large batch size. What it cannot: the "
        "cost at the original's scale (50,000 training images, 10 epochs), where more data and more epochs may fit "
        "the JPEG artefacts differently, and at batch sizes it did not run. " + c.robustness()]
