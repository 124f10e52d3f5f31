"""The tables the report's sections share, each built from runs or a stats() frame and ready to display."""
import numpy as np
import pandas as pd

from .original import PAIR
from .stats import compare, stats
from .text import mean_std, mean_std_cells, norm_label, pval


def results_table(runs: pd.DataFrame, metric: str = "final_acc") -> pd.DataFrame:
    """The original's layout: one row per batch size, one 'mean ± std (n)' column per norm."""
    table = mean_std_cells(stats(runs, metric), "batch_size", "norm")
    table.columns = [norm_label(c) for c in table.columns]
    return table.rename_axis("Batch size").reset_index()


def stats_table(s: pd.DataFrame) -> pd.DataFrame:
    """Per batch size: each side's n, mean, std and 95% CI, BatchNorm − GroupNorm with its CI, Welch and Holm p."""
    cmp = compare(s, *PAIR).sort_values("batch_size")
    ci = s.set_index(["norm", "batch_size"]).ci95
    return pd.DataFrame({
        "batch size": cmp.batch_size.astype(int),
        "BN mean ± std (n)": [mean_std(*r) for r in zip(cmp.mean_a, cmp.std_a, cmp.n_a)],
        "BN 95% CI": [f"± {ci.get((PAIR[0], b), np.nan):.2f}" for b in cmp.batch_size],
        "GN mean ± std (n)": [mean_std(*r) for r in zip(cmp.mean_b, cmp.std_b, cmp.n_b)],
        "GN 95% CI": [f"± {ci.get((PAIR[1], b), np.nan):.2f}" for b in cmp.batch_size],
        "BN − GN (95% CI)": [f"{d:+.2f} ± {h:.2f}" for d, h in zip(cmp["diff"], cmp.ci95)],
        "Welch p": [pval(p) for p in cmp.p], "Holm p": [pval(p) for p in cmp.p_holm]})


def spread_table(sp: pd.DataFrame) -> pd.DataFrame:
    """A spread() frame in words: per norm, run-to-run spread, sensitivity to batch size and the range of the means."""
    return pd.DataFrame({
        "norm": [norm_label(n) for n in sp.norm],
        "run-to-run spread: std over seeds, mean over batch sizes": [f"{v:.2f}" for v in sp.run_to_run],
        "sensitivity to batch size: std across batch sizes of the means": [f"{v:.2f}" for v in sp.across_bs],
        "range of the means": [f"{v:.2f} ({b:.2f} at {int(wb)} – {a:.2f} at {int(bb)})" for v, a, bb, b, wb in
                               zip(sp.range, sp.best, sp.best_bs, sp.worst, sp.worst_bs)]})


def status_table(runs: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    """Every expected run that has no successful record: failed (with the reason) or missing."""
    ok = set(runs.loc[runs.status == "ok", "run_id"]) if len(runs) else set()
    errors = dict(zip(runs.run_id, runs.error)) if len(runs) else {}
    rows = [{"run_id": r, "status": "failed" if r in errors else "missing", "reason": errors.get(r) or ""}
            for r in (expected.run_id if len(expected) else []) if r not in ok]
    return pd.DataFrame(rows, columns=["run_id", "status", "reason"])


def provenance_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Distinct environments the records came from, with how many runs each."""
    cols = [c for c in ("prov_device", "prov_torch", "prov_python", "prov_git_commit", "prov_git_dirty",
                        "prov_data_source", "prov_data_sha256") if c in runs]
    ok = runs[runs.status == "ok"]
    if not cols or ok.empty:
        return pd.DataFrame()
    table = ok[cols].astype(str).value_counts().rename("runs").reset_index()
    table.columns = [c.removeprefix("prov_") for c in table.columns[:-1]] + ["runs"]
    return table
