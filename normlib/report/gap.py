"""The gap to the original's levels at its own protocol: how far below the original's table each cell of ours sits
(the best epoch, its metric), and whether that gap is the same in every cell or differs between norms and batch
sizes. A gap alike everywhere points at something every run shares (the data copy, the device); one that differs
points at the training itself."""
import numpy as np
import pandas as pd
from scipy import stats as st

from .load import Grid
from .original import ORIGINAL_METRIC, PAIR, original_stats, protocol_differences
from .stats import ALPHA, POWER, stats
from .text import norm_label, plus_minus, pval


def cell_gaps(runs: pd.DataFrame) -> pd.DataFrame:
    """A row per cell that both tables have: ours − the original's mean (best epoch) and that difference's variance
    (each table's std² / n)."""
    ours = stats(runs, ORIGINAL_METRIC)
    both = ours.merge(original_stats(), on=["norm", "batch_size"], suffixes=("", "_o"))
    both["gap"] = both["mean"] - both["mean_o"]
    both["var"] = both["std"] ** 2 / both.n + both.std_o ** 2 / both.n_o
    return both[["norm", "batch_size", "n", "gap", "var"]]


def heterogeneity(g: pd.DataFrame) -> dict:
    """Cochran's Q: whether the cells' gaps differ more than their variances allow (chi-square, cells − 1 df)."""
    w = 1 / g["var"]
    pooled = (w * g.gap).sum() / w.sum()
    q = float((w * (g.gap - pooled) ** 2).sum())
    return {"pooled": pooled, "pooled_ci95": st.norm.ppf(0.975) / np.sqrt(w.sum()), "q": q, "df": len(g) - 1,
            "p": float(st.chi2.sf(q, len(g) - 1))}


def norm_contrast(g: pd.DataFrame) -> dict:
    """BatchNorm's mean gap − GroupNorm's over the batch sizes both have, its 95% CI and p (normal approximation from
    the cells' variances) and the smallest contrast it detects with POWER."""
    sides = [g[g.norm == n].set_index("batch_size") for n in PAIR]
    shared = sides[0].index.intersection(sides[1].index)
    means = [s.loc[shared, "gap"].mean() for s in sides]
    se = np.sqrt(sum(s.loc[shared, "var"].sum() for s in sides)) / len(shared)
    diff, z = means[0] - means[1], st.norm.ppf(1 - ALPHA / 2)
    return {"diff": diff, "ci95": z * se, "p": float(2 * st.norm.sf(abs(diff) / se)), "sizes": len(shared),
            "detectable": (z + st.norm.ppf(POWER)) * se}


def gap_section(grid: Grid) -> list:
    """The gap's section for a grid of the original's protocol (the data copy aside) with both norms; [] otherwise."""
    ours = grid.ok[grid.ok.norm.isin(PAIR)]
    if set(ours.norm) != set(PAIR) or not all(
            d.startswith("data: ") for d in protocol_differences(ours, ORIGINAL_METRIC, grid.k)):
        return []
    g = cell_gaps(ours)
    lo, hi = (g.loc[i] for i in (g.gap.idxmin(), g.gap.idxmax()))
    spread = (f"is {lo.gap:+.2f} points in every one of its {len(g)} cells" if round(hi.gap - lo.gap, 2) == 0 else
              f"runs from {lo.gap:+.2f} points ({norm_label(lo.norm)} at batch size {lo.batch_size}) to "
              f"{hi.gap:+.2f} ({norm_label(hi.norm)} at {hi.batch_size}), {g.gap.mean():+.2f} on average over "
              f"{len(g)} cells")
    text = [f"Ours − the original's table (`{ORIGINAL_METRIC}`; the two stand side by side, cell by cell, in the "
            f"comparison with the original above) {spread}."]
    if (g.n < 2).any():
        text.append("A cell with one run of ours describes and never decides: whether the gap differs between cells "
                    "is tested once every cell has at least 2 runs.")
    else:
        h, c = heterogeneity(g), norm_contrast(g)
        same = "differs between cells" if h["p"] < ALPHA else "is not shown to differ between cells"
        text.append(f"The gap {same}: Cochran's Q = {h['q']:.1f} on {h['df']} df, p = {pval(h['p'])} (each cell's "
                    f"variance from both tables' std and n); its inverse-variance mean is "
                    f"{plus_minus(h['pooled'], h['pooled_ci95'])} points (95% CI).")
        shown = "differs" if c["p"] < ALPHA else "is not shown to differ"
        text.append(f"Between the norms it {shown}: BatchNorm's mean gap − GroupNorm's over {c['sizes']} batch sizes "
                    f"is {plus_minus(c['diff'], c['ci95'])} (95% CI, normal approximation), p = {pval(c['p'])}; a "
                    f"contrast of {c['detectable']:.2f} points would be detected with {POWER:.0%} power.")
        text.append("A gap alike in every cell points at what every run shares (the data copy, the device); a gap "
                    "that differs between norms or batch sizes points at the training itself.")
    return ["## The gap to the original's levels", "\n\n".join(text)]
