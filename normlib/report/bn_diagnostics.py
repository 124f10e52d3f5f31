"""BatchNorm diagnostics: the gap between a training batch's statistics and the running ones, per epoch and batch
size, and the final model's test accuracy with running, precise and per-batch statistics, which says where BatchNorm's
small-batch loss comes from. The section appears for a grid whose BatchNorm records carry the diagnostics."""
import pandas as pd

from ..config import DIAG_BATCHES, DIAG_TEST, PRECISE_BATCH, PRECISE_IMAGES
from .load import Grid
from .plots import Figure, plot_bn_gap, plot_lines
from .stats import paired, stats
from .tables import Table
from .text import intro, plus_minus, sizes_text

DIAG_STATS = {  # BatchNorm's test-time statistics: the final epoch's record field and the name the report gives it
    "running": ("diag_running_acc", "running statistics"),
    "precise": ("diag_precise_acc", "precise statistics"),
    "batch": ("diag_batchstat_acc", "per-batch statistics"),
}
TIE = 1e-6  # accuracy points: means closer than this are equal (different seeds' means differ in the last bits)


def statistics_loss(acc: pd.DataFrame) -> pd.DataFrame:
    """Where BatchNorm's small-batch loss comes from, from the mean test accuracies per batch size (rows) with running,
    precise and per-batch statistics (columns): against the batch size `ref` with the best running-statistics
    accuracy, the loss splits exactly into what precise statistics recover (`mismatch`: the running statistics do
    not match the final weights) and what remains with them (`rest`: the weights learned under batch noise); `noise`
    is what normalising each test batch by its own statistics costs against precise statistics. A row per batch size
    below ref's accuracy (a tie is no loss)."""
    ref = int(acc.running.idxmax())
    loss = acc.running[ref] - acc.running
    mismatch = (acc.precise - acc.running) - (acc.precise[ref] - acc.running[ref])
    out = pd.DataFrame({"ref": ref, "loss": loss, "mismatch": mismatch, "rest": loss - mismatch,
                        "noise": acc.precise - acc.batch})
    return out[(out.index != ref) & (out.loss > TIE)]


def loss_cells(split: pd.DataFrame, bs: int) -> dict:
    """A batch size's row of statistics_loss as table cells (a dash where it has none: the reference, or no loss)."""
    ref = int(split.ref.iloc[0]) if len(split) else None
    r = split.loc[bs] if bs in split.index else None
    return {f"loss vs batch size {ref} (running)": "—" if r is None else f"{r.loss:.2f}",
            "of it: statistics mismatch": "—" if r is None else f"{r.mismatch:+.2f} ({r.mismatch / r.loss:.0%})",
            "of it: remains (precise)": "—" if r is None else f"{r.rest:+.2f} ({r.rest / r.loss:.0%})"}


def loss_sentences(split: pd.DataFrame, ref: int) -> list:
    """statistics_loss in a few sentences, one per finding; the numbers for each batch size are the table's."""
    if split.empty:
        return [f"With running statistics BatchNorm does best at batch size {ref}, and no smaller batch size loses "
                f"accuracy against it."]
    most = split.index[split.mismatch > split.loss / 2]
    least = split.index[split.mismatch <= split.loss / 2]
    return [f"With running statistics BatchNorm does best at batch size {ref}; it loses up to "
            f"{split.loss.max():.2f} points at {sizes_text(split.index)}.",
            (f"As point estimates (not tests: the key findings test precise against running statistics per batch "
             f"size with Holm and averaged over the batch sizes), precise statistics recover more than half of that "
             f"loss at {sizes_text(most)}: there the running statistics may not have matched the final weights."
             if len(most) else
             "Precise statistics recover less than half of that loss at every batch size."),
            *([f"At {sizes_text(least)}, more than half remains with precise statistics: it lies in the "
               f"weights learned under batch noise."] if len(least) and len(most) else []),
            f"Normalising each test batch by its own statistics costs up to {split.noise.max():.2f} points against "
            f"precise statistics (at batch size {int(split.noise.idxmax())}): the batch noise itself at test time."]


def bn_diagnostics_section(grid: Grid) -> list:
    """BatchNorm's batch vs running statistics: their gap per epoch and batch size, and the final model's test
    accuracy with the running statistics, with precise statistics (recomputed with the final weights) and with each
    test batch's own statistics: a table of the numbers, a sentence per finding, two figures."""
    ep = grid.epochs[(grid.epochs.norm == "batch") & grid.epochs.run_id.isin(grid.ok.run_id)]
    if ep.empty or "bn_mean_gap" not in ep or ep.bn_mean_gap.isna().all():
        return []
    last = ep.sort_values("epoch").groupby("run_id").tail(1)
    have = accuracy_stats(last)
    acc = last.groupby("batch_size")[[DIAG_STATS[k][0] for k in have]].mean().set_axis(have, axis=1) if have else None
    split = statistics_loss(acc) if "precise" in have else None
    rows = [{**gap_cells(bs, runs), **accuracy_cells(bs, runs, have, acc),
             **({} if split is None else loss_cells(split, bs))} for bs, runs in last.groupby("batch_size")]
    text = [gap_sentence(last)] + (accuracy_sentences(acc, split) if have else [])
    items = [intro("BatchNorm diagnostics", grid), Table(pd.DataFrame(rows), diagnostics_caption(last, have, split)),
             "\n".join(f"- {t}" for t in text), gap_figure(ep)]
    return items + ([accuracy_figure(last, have)] if have else [])


def accuracy_stats(last: pd.DataFrame) -> list:
    """The DIAG_STATS keys whose test-time accuracy the final epochs carry; [] unless running and per-batch both."""
    have = [k for k, (col, _) in DIAG_STATS.items() if col in last and last[col].notna().any()]
    return have if {"running", "batch"} <= set(have) else []


def gap_cells(bs: int, runs: pd.DataFrame) -> dict:
    """A batch size's final-epoch gap between batch and running statistics, as table cells."""
    return {"batch size": int(bs), "mean gap (final epoch)": f"{runs.bn_mean_gap.mean():.3f}",
            "abs log var ratio (final epoch)": f"{runs.bn_var_logratio.mean():.3f}"}


def accuracy_cells(bs: int, runs: pd.DataFrame, have: list, acc: pd.DataFrame) -> dict:
    """A batch size's mean test-time accuracies and their paired differences, as table cells ({} without them)."""
    if not have:
        return {}
    pairs = [("precise", "running"), ("batch", "precise")] if "precise" in have else [("batch", "running")]
    return {**{f"{DIAG_STATS[k][1]} acc": f"{acc[k][bs]:.2f}" for k in have},
            **{f"{a} − {b} (95% CI, paired)": plus_minus(*paired(runs[DIAG_STATS[a][0]] - runs[DIAG_STATS[b][0]]))
               for a, b in pairs}}


def gap_sentence(last: pd.DataFrame) -> str:
    """Whether the gap between batch and running statistics is larger at the smallest batch size than the largest."""
    gaps = last.groupby("batch_size")[["bn_mean_gap", "bn_var_logratio"]].mean()
    if len(gaps) == 1:
        return (f"At batch size {int(gaps.index[0])}, the only one, the mean gap is {gaps.bn_mean_gap.iloc[0]:.3f} and "
                f"the |log variance ratio| {gaps.bn_var_logratio.iloc[0]:.3f} (final epoch, mean over seeds).")
    mean, var = ("larger" if gaps[c].iloc[0] > gaps[c].iloc[-1] else "not larger" for c in gaps)
    return ("The gap between a training batch's statistics and the running ones is "
            + (f"{mean} in the mean and the variance" if mean == var else f"{mean} in the mean and {var} in the "
               f"variance") + f" at batch size {int(gaps.index[0])} than at {int(gaps.index[-1])}.")


def accuracy_sentences(acc: pd.DataFrame, split) -> list:
    """What the test-time accuracies say: where the loss at small batch sizes comes from, or why that cannot be said."""
    if split is None:
        return ["Precise-BN accuracy is absent from these records (made before it was measured), so the loss cannot be "
                "split here into the statistics mismatch and the batch noise."]
    return loss_sentences(split, int(acc.running.idxmax()))


def diagnostics_caption(last: pd.DataFrame, have: list, split) -> str:
    """The diagnostics table's caption: what each column measured, and on how many test images."""
    caption = ("BatchNorm's statistics at the final epoch, mean over seeds: the gap between a training batch's "
               "statistics and the running ones (mean gap in running-std units, |log| variance ratio)")
    if have:
        n_diag = min(DIAG_TEST, int(last.test_images.min())) if "test_images" in last else DIAG_TEST
        ways = {"running": "with the running statistics (eval mode)",
                "precise": f"with precise statistics, recomputed over {PRECISE_IMAGES:,} training images (or all, if "
                           f"fewer) in batches of {PRECISE_BATCH} with the final weights (precise BN, Wu & Johnson "
                           "2021)",
                "batch": "with each test batch of the training batch size normalised by its own statistics"}
        measured = [ways[k] for k in have]
        caption += (f"; the final model's accuracy on {n_diag} test images (a stratified subset of the test set) "
                    + "; ".join(measured[:-1]) + ("; and " if len(measured) > 2 else " and ") + measured[-1])
    if split is not None and len(split):
        ref = int(split.ref.iloc[0])
        caption += (f"; the loss against batch size {ref} with running statistics, split into what precise "
                    f"statistics recover (the statistics mismatch: precise − running, relative to the same "
                    f"difference at batch size {ref}) and what remains with them")
    return caption + "."


def gap_figure(ep: pd.DataFrame) -> Figure:
    return Figure(plot_bn_gap(ep), (
        "Gap between a training batch's statistics and the running statistics per epoch (mean over seeds; log "
        "axes), one line per batch size: mean gap in running-std units and |log| variance ratio, averaged "
        f"over BN layers and the first {DIAG_BATCHES} batches of the epoch."))


def accuracy_figure(last: pd.DataFrame, have: list) -> Figure:
    long = pd.concat([last.assign(stat=DIAG_STATS[k][1], acc=last[DIAG_STATS[k][0]]) for k in have])
    return Figure(plot_lines(stats(long, "acc", ("batch_size", "stat")), "batch_size", "stat", label=str), (
        "BatchNorm at test time: the final model's test accuracy normalising with the running statistics (eval "
        "mode), with precise statistics recomputed with the final weights (where the records have them) and "
        "with each test batch's own statistics (batches of the training batch size), mean ± 95% CI over seeds."))
