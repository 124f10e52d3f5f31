"""A grid's run records as DataFrames: one row per run with every per-run metric, one row per run and epoch."""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..store import records
from ..config import PROTOCOL_KEYS, RunConfig

METRICS = {  # per-run accuracy that tables, tests and outcomes use; the notebook's `metric` picks one
    "final_acc": "the final epoch's test accuracy",
    "median_last_k": "the median test accuracy of the last {k} epochs (Wu & He's protocol)",
    "best_acc": "the best epoch's test accuracy (the original's metric: the epoch is picked on the test set, so it "
                "is optimistic)",
    "val_selected_acc": "the test accuracy of the epoch with the best validation accuracy (earliest on ties)",
}
K = 5  # epochs of median_last_k
METRIC_HEADS = {"final_acc": "final epoch", "median_last_k": "median of the last k epochs",  # as a column head
                "best_acc": "best epoch (the original's)", "val_selected_acc": "epoch picked on validation"}


@dataclass
class Grid:
    """One grid's records: `runs` (one row per record, every metric a column), `epochs` (one row per run and
    epoch), `expected` (the grid's run list), and the k of median_last_k."""
    name: str
    description: str
    runs: pd.DataFrame
    epochs: pd.DataFrame
    expected: pd.DataFrame
    k: int = K

    @property
    def ok(self) -> pd.DataFrame:
        return self.runs[self.runs.status == "ok"]

    @property
    def has_val(self) -> bool:
        return bool(self.ok.get("val_selected_acc", pd.Series(dtype=float)).notna().any())

    @property
    def metrics(self) -> list:
        """The per-run metrics this grid has: every one of METRICS, val_selected_acc only with a validation split."""
        return [m for m in METRICS if m != "val_selected_acc" or self.has_val]

    def shared(self, other: "Grid", by=()) -> pd.DataFrame:
        """The protocol parameters (and the `by` columns) of the successful runs both grids hold, once each."""
        keys = [k for k in PROTOCOL_KEYS if k in self.ok and k in other.ok] + list(by)
        return self.ok[keys].drop_duplicates().merge(other.ok[keys].drop_duplicates(), on=keys)

    @property
    def n_expected(self) -> int:
        """The grid's run count: its run list, else (no grid.json) its records."""
        return len(self.expected) or len(self.runs)


def grid_info(folder) -> dict:
    path = Path(folder) / "grid.json"
    return json.loads(path.read_text()) if path.exists() else {"runs": [], "description": ""}


def _val_selected(history: pd.DataFrame) -> float:
    val = history.val_acc.to_numpy(float)
    return np.nan if np.isnan(val).all() else float(history.test_acc.iloc[int(np.nanargmax(val))])


def per_run_metrics(epochs: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per run: median test accuracy of the last k epochs, and the test accuracy at the best-validation epoch."""
    out = pd.DataFrame(columns=["median_last_k", "val_selected_acc"], dtype=float)
    if epochs.empty:
        return out
    by_run = epochs.sort_values("epoch").groupby("run_id")
    out = pd.DataFrame({"median_last_k": by_run.test_acc.apply(lambda s: s.iloc[-k:].median())})
    out["val_selected_acc"] = by_run.apply(_val_selected, include_groups=False) if "val_acc" in epochs else np.nan
    return out


def load(folder, k: int = K) -> Grid:
    """A grid's records from <folder>/runs/*.json and <folder>/grid.json; FileNotFoundError when there are none."""
    folder = Path(folder)
    if k < 1:
        raise ValueError(f"k={k!r}: must be >= 1")
    info = grid_info(folder)
    defaults = RunConfig().dict()  # a failed record holds only the grid's overrides
    rows, epochs = [], []
    for path in sorted((folder / "runs").glob("*.json")):
        rec = records.read(path)
        if rec is None:
            continue
        params = {**defaults, **rec["params"]}
        why = records.diverged(rec["history"]) if rec["status"] == "ok" else ""  # a diverged run has no result
        rows.append({"run_id": path.stem, **params, "status": "diverged" if why else rec["status"],
                     "error": why or rec.get("error"),
                     "final_acc": rec.get("final_acc", np.nan), "best_acc": rec.get("best_acc", np.nan),
                     "steps_run": rec.get("steps", np.nan), "effective_lr": rec.get("effective_lr", np.nan),
                     "epochs_run": len(rec["history"]), "test_images": rec.get("images", {}).get("test", np.nan),
                     "train_images": rec.get("images", {}).get("train", np.nan),
                     **{f"prov_{key}": v for key, v in rec.get("provenance", {}).items()}})
        epochs += [{"run_id": path.stem, **params, "test_images": rows[-1]["test_images"], **h}
                   for h in rec["history"]]
    if not rows:
        raise FileNotFoundError(f"grid={folder.name!r}: no run records in {folder / 'runs'}; "
                                f"run `python -m normlib.sweep params/{folder.name}.yaml`")
    runs = pd.DataFrame(rows)
    epochs = pd.DataFrame(epochs, columns=None if epochs else ["run_id", *defaults, "test_images", "epoch", "test_acc"])
    runs = runs.join(per_run_metrics(epochs, k), on="run_id")
    expected = pd.DataFrame([{"run_id": r["run_id"], **r["params"]} for r in info["runs"]])
    return Grid(folder.name, info.get("description", ""), runs, epochs, expected, k)


def load_all(root, grid: str, extra: str = "", k: int = K) -> list:
    """The main grid, then every grid named in `extra` (comma-separated), all under the reports root."""
    names = [grid] + [n.strip() for n in extra.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"extra={extra!r}: names a grid twice or repeats grid={grid!r}")
    return [load(Path(root) / n, k) for n in names]


def metric_text(metric: str, k: int = K) -> str:
    return METRICS[metric].format(k=k)


def check_metric(grids: list, metric: str) -> None:
    """ValueError naming the metric and what is allowed, when it is unknown or some grid lacks it."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: allowed {', '.join(METRICS)}")
    for grid in grids:
        if metric == "val_selected_acc" and not grid.has_val:
            raise ValueError(f"metric='val_selected_acc': grid {grid.name!r} has no validation accuracy (its runs "
                             f"have val_size=0); allowed there: {', '.join(grid.metrics)}")
