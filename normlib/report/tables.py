"""The tables the report's sections share, each built from runs or a stats() frame and ready to display; a section
pairs one with its caption as a Table."""
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .original import PAIR
from .stats import POWER, compare, holm_detectable, stats
from .text import ONE_BS, ONE_SEED, mean_std_cells, norm_label, plural, plus_minus, pval, std_text

# the run parameter `engine` as the provenance table names it (RunConfig's field holds the choices)
ENGINE = {"single": "single (a network per run)", "stacked": "stacked (a cell's seeds as one network)"}
PROVENANCE = {  # record provenance key -> (row name, how the table writes a value)
    "device": ("device", str),
    "cpu_type": ("CPU type", str),  # a marketing name such as "AMD EPYC" covers generations that round differently
    "cpu_capability": ("instruction set", str),  # the kernels torch picked (AVX2, AVX512, ...)
    "torch": ("torch", str), "python": ("python", str),
    "compile": ("compile", str),  # none, the compiler's mode, or cuda-graphs (the stacked engine's replayed steps)
    "git_commit": ("git commit", lambda v: v[:10]),
    "git_commit_given": ("commit given", lambda v: v[:10]),  # $NORMLIB_COMMIT: a device's checkout may not say it
    "code_sha256": ("code sha256", lambda v: v[:12] + "…"),
    "data_source": ("data", lambda v: Path(v).name),  # the file, not where it sat on the machine that ran
    "data_sha256": ("data sha256 (of the decoded images, not of the archive)", lambda v: v[:12] + "…"),
}
RECORDED_SINCE = {"cpu_type": "2026-11-25", "cpu_capability": "2026-11-25"}  # keys older records lack


class Table(NamedTuple):
    """A table and its caption: the page numbers it and writes the caption above it."""
    frame: pd.DataFrame
    caption: str


def results_table(runs: pd.DataFrame, metric: str = "final_acc") -> pd.DataFrame:
    """The original's layout: one row per batch size, one 'mean ± std (n)' column per norm."""
    table = mean_std_cells(stats(runs, metric), "batch_size", "norm")
    table.columns = [norm_label(c) for c in table.columns]
    return table.rename_axis("Batch size").reset_index()


def stats_table(s: pd.DataFrame, runs=None, metric: str = "final_acc") -> pd.DataFrame:
    """Per batch size: each norm's mean ± 95% CI (n and std are the results table's), BatchNorm − GroupNorm ± its
    95% CI, the two-sided p and Holm's, and the test (paired over seeds when `runs` give every seed both norms,
    Welch otherwise)."""
    cmp = compare(s, *PAIR, runs=runs, metric=metric).sort_values("batch_size")
    ci = s.set_index(["norm", "batch_size"]).ci95
    return pd.DataFrame({
        "batch size": cmp.batch_size.astype(int),
        **{f"{norm_label(n)} mean ± 95% CI": [plus_minus(m, ci.get((n, b), np.nan), signed=False)
                                               for m, b in zip(cmp[f"mean_{side}"], cmp.batch_size)]
           for n, side in zip(PAIR, "ab")},
        "BN − GN ± 95% CI": [plus_minus(d, h) for d, h in zip(cmp["diff"], cmp.ci95)],
        "p": [pval(p) for p in cmp.p], "Holm p": [pval(p) for p in cmp.p_holm],
        "test": [t if np.isfinite(p) else "none (fewer than 2 runs)" for t, p in zip(cmp.test, cmp.p)]})


def spread_table(sp: pd.DataFrame) -> pd.DataFrame:
    """A spread() frame in words: per norm, run-to-run spread, sensitivity to batch size and the range of the means."""
    return pd.DataFrame({
        "norm": [norm_label(n) for n in sp.norm],
        "run-to-run spread: std over seeds, mean over batch sizes": [std_text(v, ONE_SEED) for v in sp.run_to_run],
        "sensitivity to batch size: std across batch sizes of the means": [std_text(v, ONE_BS) for v in sp.across_bs],
        "range of the means": [f"{v:.2f} ({b:.2f} at {int(wb)} – {a:.2f} at {int(bb)})" for v, a, bb, b, wb in
                               zip(sp.range, sp.best, sp.best_bs, sp.worst, sp.worst_bs)]})


def status_table(runs: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    """Every expected run that has no successful record: failed or diverged (with the reason), or missing."""
    ok = set(runs.loc[runs.status == "ok", "run_id"]) if len(runs) else set()
    errors = dict(zip(runs.run_id, runs.error)) if len(runs) else {}
    status = dict(zip(runs.run_id, runs.status)) if len(runs) else {}
    rows = [{"run_id": r, "status": status.get(r, "missing"), "reason": errors.get(r) or ""}
            for r in (expected.run_id if len(expected) else []) if r not in ok]
    return pd.DataFrame(rows, columns=["run_id", "status", "reason"])


def _counted(values: pd.Series) -> str:
    """A column's distinct values, each with its run count when there are several."""
    counts = values.value_counts()
    return str(counts.index[0]) if len(counts) == 1 else ", ".join(f"{v} ({plural(n, 'run')})"
                                                                   for v, n in counts.items())


def provenance_column(runs: pd.DataFrame) -> dict:
    """Where the successful runs came from, one short value per row: the engine that trained them, device, versions,
    commit, data, and how many runs had uncommitted code changes."""
    ok = runs[runs.status == "ok"]
    engines = ok.get("engine", pd.Series(dtype=object)).dropna().map(lambda e: ENGINE.get(e, e))
    column = {"runs": str(len(ok)), "engine": _counted(engines) if len(engines) else "—"}
    for key, (row, short) in PROVENANCE.items():
        values = ok.get(f"prov_{key}", pd.Series(dtype=object)).dropna()
        column[row] = _counted(values.map(short)) if len(values) else (
            f"not recorded then (recorded since {RECORDED_SINCE[key]})" if key in RECORDED_SINCE else "—")
        if key == "git_commit" and "prov_git_dirty" in ok:
            column["uncommitted changes"] = f"{int(ok.prov_git_dirty.eq(True).sum())} of {plural(len(ok), 'run')}"
    return column


def either_way(size: float) -> str:
    """A difference's size either way, '±2.50'; '—' where no test gives one."""
    return "—" if np.isnan(size) else f"±{size:.2f}"


def detectable_range(rows: pd.DataFrame, alpha: float) -> str:
    """What tests left 'not shown' could have shown, for rows with se and df, one Holm family: 'at Holm's first step
    they detect differences of ±a to ±b points with 80% power'."""
    sizes = [holm_detectable(r.se, r.df, len(rows), alpha) for r in rows.itertuples()]
    sizes = [v for v in sizes if not np.isnan(v)]
    if not sizes:
        return "no test detects a difference (one run per cell)"
    span = either_way(min(sizes)) + ("" if max(sizes) - min(sizes) < 0.005 else f" to {either_way(max(sizes))}")
    return f"at Holm's first step they detect a difference of {span} points with {POWER:.0%} power"


def best_vs_each(vb: pd.DataFrame, key: str, label, what: str) -> tuple:
    """A versus_best() frame within batch sizes as a table, and the sentence saying how its p are corrected."""
    table = pd.DataFrame({"batch size": vb.batch_size.astype(int), "best": [label(v) for v in vb.best],
                          what: [label(v) for v in vb[key]], f"{what} − best (95% CI)": [
                              plus_minus(d, h) for d, h in zip(vb["diff"], vb.ci95)],
                          "Holm p": [pval(p) for p in vb.p_holm], "test": vb.test,
                          f"detectable ({POWER:.0%} power)": [either_way(holm_detectable(r.se, r.df, int(r.family)))
                                                              for r in vb.itertuples()]})
    tests = " and ".join(sorted(set(vb.test)))
    note = (f"At each batch size the best {what} is compared with every other: two-sided {tests} t-tests (paired over "
            f"seeds where both sides have every seed, since their runs share the initialisation seed and data "
            f"order), Holm-corrected over all {int(vb.family.iloc[0]) if len(vb) else 0} pairs of {what}s at every "
            f"batch size, so that picking the best on the same runs needs no further correction. 'Detectable': the "
            f"smallest difference, either way, that the pair's test detects with {POWER:.0%} power at Holm's first "
            f"step; a difference not shown may be up to that large.")
    return table, note
