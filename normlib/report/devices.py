"""The same protocol on two devices: the main grid's runs beside an extra grid's runs of the same protocol trained on
another device (the original's protocol on this project's CPUs beside its H100 runs), cell by cell, under the best
and the final epoch. Whether CPU fp32 and GPU TF32 give the same levels; one run per cell on a side describes and
never decides."""
import pandas as pd

from .load import Grid
from .stats import welch_stats
from .tables import Table
from .text import mean_std, norm_label, plus_minus, pval

CELL = ["norm", "batch_size"]
METRICS = {"best_acc": "best epoch", "final_acc": "final epoch"}  # the original's metric first


def devices(grid: Grid) -> list:
    """The devices that trained a grid's successful runs, as their records name them."""
    return sorted(set(grid.ok.get("prov_device", pd.Series(dtype=str)).dropna()))


def shared_cells(a: Grid, b: Grid) -> pd.DataFrame:
    """The (norm, batch size) cells whose runs have the same protocol in both grids."""
    return a.shared(b)[CELL].drop_duplicates()


def on_other_devices(a: Grid, b: Grid) -> bool:
    """Whether b holds runs of a's protocol (in some cell) trained on devices a's runs never used."""
    if a is b or a.ok.empty or b.ok.empty or not devices(a) or not devices(b):
        return False
    return not set(devices(a)) & set(devices(b)) and len(shared_cells(a, b)) > 0


def device_rows(a: Grid, b: Grid) -> pd.DataFrame:
    """A row per shared cell: each side's mean ± std (n) and a − b (Welch's 95% CI and p where each side has
    >= 2 runs), under each metric of METRICS."""
    rows = []
    for cell in shared_cells(a, b).sort_values(CELL).itertuples(index=False):
        sides = [g.ok[(g.ok.norm == cell.norm) & (g.ok.batch_size == cell.batch_size)] for g in (a, b)]
        row = {"norm": norm_label(cell.norm), "batch size": int(cell.batch_size)}
        for metric, words in METRICS.items():
            x, y = (s[metric].dropna() for s in sides)
            t = welch_stats(x.mean(), x.std(), len(x), y.mean(), y.std(), len(y))
            row[f"{a.name}, {words}"] = mean_std(x.mean(), x.std(), len(x))
            row[f"{b.name}, {words}"] = mean_std(y.mean(), y.std(), len(y))
            row[f"difference, {words}"] = (plus_minus(t["diff"], t["ci95"]) + f" (p {pval(t['p'])})"
                                           if pd.notna(t["ci95"]) else f"{t['diff']:+.2f} (describes)")
        rows.append(row)
    return pd.DataFrame(rows)


def devices_section(grids: list) -> list:
    """The main grid beside each extra grid of its protocol on other devices; [] without one."""
    main, items = grids[0], []
    for other in (g for g in grids[1:] if on_other_devices(grids[0], g)):
        rows = device_rows(main, other)
        few = min(int(g.ok.groupby(CELL).size().min()) for g in (main, other))
        items += [
            f"## The same protocol on two devices: `{main.name}` and `{other.name}`",
            f"*`{main.name}` ran on {', '.join(devices(main))}; `{other.name}` on {', '.join(devices(other))}.* Every "
            f"protocol parameter is the same in the cells below (the norm, batch size, epochs, images, optimizer, "
            f"precision as the parameters name it), so a difference between the two sides is the device's: its "
            f"kernels, and on a GPU TF32 matrix products where fp32 is asked for.",
            Table(rows, "Test accuracy (%, mean ± std over seeds, n) of the cells both grids trained, under the best "
                        "epoch (the original's metric) and the final epoch, and the difference "
                        f"`{main.name}` − `{other.name}` (Welch's 95% CI and p where each side has at least 2 "
                        "runs)."),
            "With one run on a side a cell describes and never decides: its difference is listed, not tested."
            if few < 2 else "Per cell, p is Welch's two-sided p, not corrected across cells.",
        ]
    return items
