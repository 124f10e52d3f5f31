"""Epoch by epoch: our runs beside the single runs whose test accuracy the original's log prints at every epoch, the
expected outcomes decided again at every epoch, and the step budget that equal epochs give each batch size. The
section appears for a grid in the original's data regime (all training images) with both BatchNorm and GroupNorm
runs."""
import math
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats as st

from ..config import TRAIN_IMAGES
from .load import Grid
from .original import ORIGINAL_PROTOCOL, TOL
from .plots import Figure, plot_log_beside
from .sections import grid_outcomes, original_outcomes, pair_runs, steps_by_bs, verdict_cell
from .stats import ALPHA, Q95
from .tables import Table
from .text import intro, mean_std, norm_label, pval
from .rules.base import steps_note

# The original's printed log (its write-up prints one run's test accuracy after every epoch for these three cells;
# the log of BatchNorm at batch size 4 stops after 6 epochs). (norm, batch size): test accuracy % at epochs 1, 2, ...
ORIGINAL_LOG = {
    ("batch", 2): (44.94, 52.55, 54.83, 58.21, 60.30, 63.93, 66.70, 64.05, 68.09, 69.39),
    ("group", 2): (44.28, 54.44, 57.81, 61.56, 62.63, 68.48, 67.35, 72.20, 70.41, 71.22),
    ("batch", 4): (55.87, 60.45, 66.17, 68.30, 70.41, 71.26),
}


def in_regime(runs: pd.DataFrame) -> bool:
    """Whether runs trained on all of CIFAR-10's training images: the original's data regime."""
    return bool((runs.train_images == TRAIN_IMAGES).all())


def prediction_interval(values) -> tuple:
    """The 95% prediction interval of one further run from the runs' values (t with n - 1 degrees of freedom), or
    (nan, nan) below 2 runs: where a single run of the same protocol falls 19 times in 20."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return np.nan, np.nan
    half = st.t.ppf(Q95, len(v) - 1) * v.std(ddof=1) * math.sqrt(1 + 1 / len(v))
    return v.mean() - half, v.mean() + half


def where(value: float, values) -> str:
    """Where one run's accuracy falls among ours: inside or outside our 95% prediction interval, and against our
    lowest and highest run."""
    lo, hi = prediction_interval(values)
    if len(values) == 1:
        side = "above" if value > values[0] else "below" if value < values[0] else "equal to"
        return f"{side} our one run (no interval)"
    rank = f"above all {len(values)} of ours" if value > max(values) else (
        f"below all {len(values)} of ours" if value < min(values) else "within our runs' range")
    side = "inside" if lo <= value <= hi else ("above" if value > hi else "below")
    return f"{side} our 95% prediction interval [{lo:.2f}, {hi:.2f}]; {rank}"


def log_table(epochs: pd.DataFrame) -> pd.DataFrame:
    """A row per printed cell and epoch that our runs have: the original's run, ours (mean ± std, n), where it
    falls."""
    rows = []
    for (norm, bs), log in ORIGINAL_LOG.items():
        cell = epochs[(epochs.norm == norm) & (epochs.batch_size == bs)]
        for epoch, acc in cell.groupby("epoch").test_acc:
            if epoch > len(log):
                continue
            theirs = log[int(epoch) - 1]
            rows.append({"cell": f"{norm_label(norm)}, batch size {bs}", "epoch": int(epoch),
                         "the original's run (%)": f"{theirs:.2f}",
                         "ours (%)": mean_std(acc.mean(), acc.std(), len(acc)),
                         "ours − the original's": f"{acc.mean() - theirs:+.2f}".replace("-", "−"),
                         "where the original's run falls": where(theirs, acc.to_list())})
    return pd.DataFrame(rows)


def above_all_p(chances: list, observed: int) -> float:
    """P(at least `observed` of independent events happen), event i with probability chances[i] (Poisson-binomial,
    exact by convolution)."""
    dist = np.array([1.0])
    for q in chances:
        dist = np.convolve(dist, [1 - q, q])
    return float(dist[observed:].sum())


def placement(epochs: pd.DataFrame) -> dict:
    """Do the original's printed values sit above ours more than chance allows? Under exchangeability (the printed
    run drawn like ours), a printed value lies above all k of our runs at its epoch with probability 1 / (k + 1).
    `p_values`: P(as many or more above all of ours) over every printed value that our runs have, treated as
    independent (two epochs of one run are not, so it is optimistic); `p_runs`: the same over one value per printed
    run, its last epoch that ours have. Also how many values sit at or above our mean."""
    values, last = [], {}
    for (norm, bs), log in ORIGINAL_LOG.items():
        cell = epochs[(epochs.norm == norm) & (epochs.batch_size == bs)]
        for epoch, acc in cell.groupby("epoch").test_acc:
            if epoch <= len(log) and len(acc) > 1:
                theirs = log[int(epoch) - 1]
                values.append({"above": theirs > acc.max(), "over_mean": theirs >= acc.mean(), "k": len(acc)})
                last[(norm, bs)] = values[-1]
    if not values:
        return {}
    above = int(sum(v["above"] for v in values))
    runs_above = int(sum(v["above"] for v in last.values()))
    return {"n": len(values), "above": above, "over_mean": int(sum(v["over_mean"] for v in values)),
            "p_values": above_all_p([1 / (v["k"] + 1) for v in values], above), "runs": len(last),
            "runs_above": runs_above, "p_runs": above_all_p([1 / (v["k"] + 1) for v in last.values()], runs_above),
            "k": sorted({v["k"] for v in values})}


def placement_text(epochs: pd.DataFrame) -> str:
    """placement() in words, with what might cause a systematic gap; '' without printed values to place."""
    t = placement(epochs)
    if not t:
        return ""
    k = " or ".join(str(v) for v in t["k"])
    return (f"**Placed together, not one by one.** Of the {t['n']} printed values that our runs have, {t['over_mean']} "
            f"lie at or above our mean and {t['above']} above all {k} of our runs. If the original's printed runs were "
            f"drawn like ours (exchangeable), each value would lie above all of ours with probability 1 / ({k} + 1), "
            f"and {t['above']} or more of {t['n']} would happen with probability {pval(t['p_values'])}; that treats "
            f"the values as independent, which two epochs of one run are not, so it overstates the evidence. One "
            f"value per printed run (its last epoch that ours have): {t['runs_above']} of {t['runs']} above all of "
            f"ours, probability {pval(t['p_runs'])}. A systematic gap could come from the data copy (the original's "
            f"pixels against our JPEG copy), the device, or the original choosing which runs to print; these runs "
            f"cannot tell which.")


def at_epoch(grid: Grid, epoch: int, metric: str) -> Grid:
    """The grid with `metric` replaced by each run's test accuracy after `epoch` (runs without that epoch dropped)."""
    acc = grid.epochs[grid.epochs.epoch == epoch].set_index("run_id").test_acc
    runs = grid.runs[grid.runs.run_id.isin(acc.index)].copy()
    runs[metric] = runs.run_id.map(acc).to_numpy(float)
    return replace(grid, runs=runs, epochs=grid.epochs[grid.epochs.epoch <= epoch])


def verdicts_by_epoch(grid: Grid, metric: str, tol: float = TOL, alpha: float = ALPHA) -> pd.DataFrame:
    """Each expected outcome's verdict on the test accuracy after every epoch that all of the grid's runs reached,
    and, for the direction they move in, on the original's table (its 10 epochs)."""
    last = int(pair_runs(grid).epochs_run.min())
    columns = {}
    for epoch in range(1, last + 1):
        outcomes = grid_outcomes(at_epoch(grid, epoch, metric), metric, tol, alpha)
        columns[f"after epoch {epoch}"] = [verdict_cell(o) for o in outcomes]
        claims = [f"{i}. {o.claim}" for i, o in enumerate(outcomes, 1)]
    theirs = original_outcomes(tol, alpha)
    columns[f"the original's table (best of {ORIGINAL_PROTOCOL['epochs']} epochs)"] = list(map(verdict_cell, theirs))
    return pd.DataFrame({"expected outcome": claims, **columns})


def epochs_section(grid: Grid, metric: str, tol: float = TOL, alpha: float = ALPHA) -> list:
    """Our runs epoch by epoch beside the original's printed ones, the verdicts after every epoch, the step budget."""
    runs = pair_runs(grid)
    if runs is None or not in_regime(runs):
        return []
    ours = grid.epochs[grid.epochs.run_id.isin(runs.run_id)]
    table = log_table(ours)
    items = [intro("Epoch by epoch, beside the original's printed runs", grid),
             "The original's write-up prints the test accuracy of one run after every epoch for three cells "
             "(BatchNorm at batch sizes 2 and 4, GroupNorm at 2). Each is one run, so it is placed in our spread, "
             "not tested: the 95% prediction interval is where one further run of our protocol would fall 19 times "
             "in 20."]
    if len(table):
        items += [Table(table, "The original's printed single runs beside ours after each epoch: our mean ± std "
                               "over seeds (n runs) and where the original's run falls among ours."),
                  placement_text(ours),
                  Figure(plot_log_beside(ours, ORIGINAL_LOG),
                         "Test accuracy after each epoch: the original's printed single run (line, all its printed "
                         "epochs) and our runs (points, one per seed) in the three cells it prints.")]
    items += [Table(verdicts_by_epoch(grid, metric, tol, alpha),
                    "The original's expected outcomes decided after each epoch, by the rules of the outcomes "
                    "section, and on the original's table: whether a verdict moves toward the original's as "
                    "training goes on."),
              f"**Equal epochs are not equal budgets.** {steps_note(steps_by_bs(runs))}"]
    return [item for item in items if not isinstance(item, str) or item]
