"""Which statistics BatchNorm is evaluated with: the final model's test accuracy with the running averages and with
precise statistics (recomputed with the final weights), tested over seeds, and whether the small-batch verdict
changes with them."""
import numpy as np
import pandas as pd

from .load import Grid
from .original import PAIR
from .rules import number
from .stats import ALPHA, holm, paired_stats, stats, versus_best
from .text import int_list, pval

COLUMNS = {"running": "diag_running_acc", "precise": "diag_precise_acc"}  # the final epoch's record fields


def bn_final(grid: Grid) -> pd.DataFrame:
    """BatchNorm's successful runs at their final epoch (batch_size, seed, running, precise); empty without both."""
    ep = grid.epochs[(grid.epochs.norm == PAIR[0]) & grid.epochs.run_id.isin(grid.ok.run_id)]
    if ep.empty or any(c not in ep or ep[c].isna().all() for c in COLUMNS.values()):
        return pd.DataFrame(columns=["batch_size", "seed", *COLUMNS])
    last = ep.sort_values("epoch").groupby("run_id").tail(1)
    return last[["batch_size", "seed", *COLUMNS.values()]].rename(columns={v: k for k, v in COLUMNS.items()}).dropna()


def precise_gain(last: pd.DataFrame) -> tuple:
    """precise − running: per batch size (paired over seeds, Holm across the batch sizes) and averaged per seed over
    the batch sizes, over the seeds that have every one: (per-batch-size frame, pooled paired_stats)."""
    last = last.assign(gap=last.precise - last.running)
    rows = pd.DataFrame([{"batch_size": int(bs), **paired_stats(g.gap)} for bs, g in last.groupby("batch_size")])
    rows["p_holm"] = holm(rows.p)
    wide = last.pivot_table(index="seed", columns="batch_size", values="gap").dropna()
    return rows, paired_stats(wide.mean(axis=1))


def below_best(last: pd.DataFrame, which: str) -> dict:
    """The smallest batch size against BatchNorm's best under one kind of statistics: versus_best's row (diff, Holm p
    over all pairs of batch sizes), or {} where the smallest is the best."""
    vb = versus_best(stats(last, which, ("batch_size",)), "batch_size", runs=last, metric=which)
    row = vb[vb.batch_size == last.batch_size.min()]
    return {} if row.empty else row.iloc[0].to_dict()


def statistics_caveat(grid: Grid, alpha: float = ALPHA, whole: str = "") -> str:
    """How much BatchNorm's verdicts depend on the statistics it evaluates with, tested: precise − running per batch
    size and pooled, and the smallest batch size against the best under each, on the diagnostic test subset where
    both are measured; `whole` (the threshold rule's verdict by its other definition, on the whole test set with the
    running averages) is named where the subset's running-statistics verdict differs from it. '' without precise
    statistics."""
    last = bn_final(grid)
    if last.batch_size.nunique() < 2:
        return ""
    rows, pooled = precise_gain(last)
    small = int(last.batch_size.min())
    ends = {k: below_best(last, k) for k in COLUMNS}
    tested = rows.p.notna()
    text = (f"- **Which statistics BatchNorm evaluates with.** Precise statistics (recomputed with the final weights) "
            f"score {' / '.join(f'{d:+.1f}' for d in rows['diff'])} points against the running averages at batch "
            f"sizes {int_list(rows.batch_size)} (diagnostic test subset). ")
    if tested.any():
        k = int(((rows["diff"] - rows.ci95 > 0) | (rows["diff"] + rows.ci95 < 0)).sum())
        text += (f"Per batch size, {k} of the {int(tested.sum())} paired 95% CIs exclude{'s' if k == 1 else ''} 0 and "
                 f"{int((rows.p_holm < alpha).sum())} survive Holm (smallest Holm p {pval(rows.p_holm.min())}). ")
    if not np.isnan(pooled["se"]):
        text += (f"Averaged per seed over the batch sizes, precise − running is {pooled['diff']:+.2f} points (95% CI "
                 f"[{pooled['diff'] - pooled['ci95']:+.2f}, {pooled['diff'] + pooled['ci95']:+.2f}], p "
                 f"{pval(pooled['p'])}). ")
    if not all(ends.values()):
        return text.rstrip()
    said = {k: f"{r['diff']:+.2f} points from its best batch size ({int(r['best'])}, Holm p {pval(r['p_holm'])})"
            for k, r in ends.items()}
    shown = {k: r["p_holm"] < alpha for k, r in ends.items()}
    verdict = ("with either it is significantly below its best" if all(shown.values()) else
               "with neither is it significantly below its best, so that verdict does not change" if not any(
                   shown.values()) else "it is significantly below its best with "
               + ("precise" if shown["precise"] else "running") + " statistics only: the verdict depends on them")
    text += (f"On that subset, BatchNorm at batch size {small} is {said['running']} with the running averages and "
             f"{said['precise']} with precise statistics: {verdict}.")
    if whole and (whole == "holds") != shown["running"]:
        text += (f" On the whole test set the running averages give '{whole}' (rule {number('threshold')} by its "
                 f"other definition, above): the subset and the whole set disagree at these seeds, so this describes "
                 f"and does not decide.")
    return text
