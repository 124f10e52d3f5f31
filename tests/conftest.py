"""Shared fixtures: tiny synthetic data so unit tests run in seconds on two cores, and one report rendered on the
smoke grid's records (trained in-process) plus constructed extra grids, for the section and browser tests."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from constructed import EXTRA, constructed
from normlib import data as datalib


@pytest.fixture(scope="session")
def tiny():
    return datalib.synthetic(n_train=200, n_test=100, seed=0)


@pytest.fixture(scope="session")
def tiny_splits(tiny):
    return datalib.splits(tiny, train_size=0, test_size=0, val_size=0, seed=0)


@pytest.fixture(scope="session")
def reports_root(tmp_path_factory):
    """The smoke grid run in-process (one record per run, as the sweep writes them) and constructed extra grids."""
    from normlib import records, runner
    from normlib.grid import load_grid
    from normlib.report import render
    root = tmp_path_factory.mktemp("reports")
    grid = load_grid(render.ROOT / "params" / "smoke.yaml")
    folder = root / grid["name"]
    records.write_json(folder / "grid.json", {"name": grid["name"], "description": grid["description"],
                                              "runs": [{"run_id": i, "params": p} for i, p in grid["runs"]]})
    with ThreadPoolExecutor(2) as pool:  # two single-threaded runs at a time, as the sweep's two jobs
        list(pool.map(lambda r: runner.run({**r[1], "threads": 1, "out": str(folder / "runs" / f"{r[0]}.json")}),
                      grid["runs"]))
    for name, (fixed, g) in EXTRA.items():
        constructed(root / name, fixed, g)
    return root


@pytest.fixture(scope="session")
def smoke_report(reports_root):
    """The report on the smoke grid and every constructed extra grid: report.html beside the executed summary.ipynb."""
    from normlib.report import render
    return render.render("smoke", reports_root / "smoke", extra=",".join(EXTRA))
