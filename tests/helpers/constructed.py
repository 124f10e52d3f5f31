"""Constructed inputs (no training) for report tests: a grid folder with grid.json and records whose accuracies
follow a known rule, and runs frames like load's from accuracies per seed."""
import itertools
import json
import math

import pandas as pd

from normlib.store import records
from normlib.config import RunConfig
from normlib.report.stats import stats


def history(accs, val=None, bn=False, blocks=4, precise=True):
    """Per-epoch entries; BatchNorm's last one with the test-time diagnostics (precise=False: as in records made before
    diag_precise_acc)."""
    h = []
    for i, a in enumerate(accs):
        e = {"epoch": i + 1, "step": 10 * (i + 1), "train_loss": 1.0, "train_acc": a, "test_loss": 1.0,
             "test_acc": a, "grad_abs": [0.01 / (j + 1) for j in range(blocks + 1)]}
        if val is not None:
            e.update(val_loss=1.0, val_acc=val[i])
        if bn:
            e.update(bn_mean_gap=0.1, bn_var_logratio=0.2)
        h.append(e)
    if bn:
        h[-1].update(diag_running_acc=accs[-1], diag_batchstat_acc=accs[-1] - 5)
        if precise:
            h[-1].update(diag_precise_acc=accs[-1] + 1)
    return h


def write_records(folder, runs: dict, precise=True, device="cpu") -> None:
    """runs: {run_id: (params, accuracies per epoch[, validation accuracies])} -> grid.json and run records; the steps
    are those of 100 training images per epoch (or the `steps` parameter)."""
    records.write_json(folder / "grid.json", {"name": folder.name, "description": "constructed",
                                              "runs": [{"run_id": r, "params": p} for r, (p, *_) in runs.items()]})
    for rid, (params, accs, *val) in runs.items():
        full = RunConfig(**params).dict()
        hist = history(accs, val[0] if val else None, full["norm"] == "batch", full["num_blocks"], precise)
        records.write_json(folder / "runs" / f"{rid}.json", {
            "schema": records.SCHEMA, "status": "ok", "error": None, "params": full,
            "effective_lr": RunConfig(**params).effective_lr,
            "steps": full["steps"] or len(accs) * math.ceil(100 / full["batch_size"]),
            "images": {"train": 100, "test": 100}, "final_acc": accs[-1],
            "best_acc": max(accs), "history": hist,
            "provenance": {"device": device, "data_source": "constructed", "git_commit": "0" * 40}})


def acc(p: dict) -> float:
    """A deterministic, plausible final accuracy for a constructed run's parameters."""
    p = RunConfig(**p)
    return 60 + 2 * math.log2(p.batch_size) * (p.norm == "batch") - p.num_blocks * (p.activation == "sigmoid") \
        + 0.3 * p.groups ** 0.5 + p.seed


def constructed(folder, fixed: dict, grid: dict) -> None:
    """Every combination of the grid's values over the fixed parameters, named by the values it varies."""
    runs = {}
    for combo in itertools.product(*grid.values()):
        varied = dict(zip(grid, combo))
        p = {**fixed, **varied}
        a = acc(p)
        runs["_".join(f"{key}{value}" for key, value in varied.items())] = (p, [a - 5, a - 1, a])
    write_records(folder, runs)


EXTRA = {  # constructed records of every extra-section grid
    "c_lr": ({"lr_scaling": "linear", "base_batch": 32, "epochs": 2, "train_size": 200, "test_size": 100,
              "data": "synthetic"}, {"norm": ["batch", "group"], "batch_size": [2, 32], "seed": [0, 1]}),
    "c_groups": ({"norm": "group", "epochs": 2}, {"groups": [1, 4, 16], "batch_size": [2, 32], "seed": [0, 1]}),
    "c_norms": ({}, {"norm": ["batch", "group", "layer", "instance", "none"], "batch_size": [2, 32], "seed": [0, 1]}),
    "c_depth": ({"norm": "group"}, {"num_blocks": [1, 2, 4], "activation": ["relu", "sigmoid"], "seed": [0, 1]}),
}


def runs_frame(cells: dict) -> pd.DataFrame:
    """{(norm, batch_size): [accuracy per seed]} -> a runs DataFrame like load's."""
    return pd.DataFrame([{"norm": n, "batch_size": b, "seed": i, "status": "ok", "final_acc": float(a)}
                         for (n, b), accs in cells.items() for i, a in enumerate(accs)])


def summary(cells: dict) -> pd.DataFrame:
    """{(norm, batch_size): [accuracy per seed]} -> its stats() frame."""
    return stats(runs_frame(cells))


def pair_grid(folder, sizes, fixed=None, shift=None, seeds=(0.3, -0.5, 0.9), precise=True) -> None:
    """BatchNorm and GroupNorm at each batch size, one run per seed offset (2 epochs): GroupNorm at 60, BatchNorm
    2 points higher per doubling, plus shift(norm, batch size); a seed moves BatchNorm twice as far as GroupNorm, so
    the per-seed differences vary and paired tests have a spread."""
    runs = {}
    for norm in ("batch", "group"):
        for bs in sizes:
            for seed, offset in enumerate(seeds):
                a = (60 + 2 * math.log2(bs) * (norm == "batch") + offset * (1 + (norm == "batch"))
                     + (shift(norm, bs) if shift else 0.0))
                runs[f"{norm}_bs{bs}_seed{seed}"] = ({"norm": norm, "batch_size": bs, "seed": seed, "epochs": 2,
                                                     **(fixed or {})}, [a - 5, a])
    write_records(folder, runs, precise)


def report_items(root) -> list:
    """Every item the summary notebook's sections give on constructed grids under root: a main grid (BatchNorm and
    GroupNorm at batch sizes 2, 16, 128, with BatchNorm diagnostics), an equal-steps control far below it at batch
    size 2 (as the CPU edition's), and every EXTRA grid."""
    from normlib import report
    pair_grid(root / "c_main", (2, 16, 128))
    pair_grid(root / "c_steps", (2, 16, 128), fixed={"steps": 40}, shift=lambda norm, bs: -45.0 * (bs == 2))
    for name, (fixed, g) in EXTRA.items():
        constructed(root / name, fixed, g)
    grids = report.load_all(root, "c_main", ",".join(["c_steps", *EXTRA]))
    return [item for section in report.SECTIONS for item in section(grids, "final_acc", report.TOL, report.ALPHA)]


def summary_text(root, grid: str, monkeypatch) -> str:
    """The text the summary notebook displays (figures aside): its code cells executed here, as its kernel would."""
    import IPython.display

    from normlib.sweep import execute
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    nb = json.loads(execute.SUMMARY_NOTEBOOK.read_text())
    namespace = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec("".join(cell["source"]), namespace)
            if "parameters" in cell["metadata"].get("tags", []):
                namespace.update(grid=grid, reports=str(root))
    return "\n\n".join(item.data for item in shown if isinstance(item, IPython.display.Markdown))
