"""Shared fixtures: tiny synthetic data so unit tests run in seconds on two cores; float64 models for the stacked
engine's exact comparisons; the report's sections on constructed grids, made once for the table and figure tests;
the smoke grid run once by the sweep's command (its records and notebooks), and its report rendered once with
constructed extra grids, for the sweep, section and browser tests."""
import sys

import pytest

from helpers.constructed import EXTRA, constructed, report_items
from normlib.run import data as datalib
from helpers.sweeps import ROOT, run_sweep

SMOKE = ROOT / "params" / "smoke.yaml"
pytest_plugins = ["fastloop", "pytester"]  # the fast loop's guard; pytester runs pytest inside a test (test_fastloop)


@pytest.fixture(autouse=True)
def close_new_figures():
    """Close the figures a test opened (session fixtures' figures stay), so that pyplot never holds more than a
    test's worth."""
    def open_figures():
        plt = sys.modules.get("matplotlib.pyplot")
        return set(plt.get_fignums()) if plt else set()
    before = open_figures()
    yield
    for number in open_figures() - before:
        sys.modules["matplotlib.pyplot"].close(number)


@pytest.fixture(scope="session")
def tiny():
    return datalib.synthetic(n_train=200, n_test=100, seed=0)


@pytest.fixture(scope="session")
def tiny_splits(tiny):
    return datalib.splits(tiny, train_size=0, test_size=0, val_size=0, seed=0)


@pytest.fixture(scope="session")
def first_images(tiny_splits):
    """The first n images of every tiny split (all of them for n=0)."""
    return lambda n: tiny_splits if not n else {k: (v[0][:n], v[1][:n]) for k, v in tiny_splits.items()}


@pytest.fixture
def float64():
    """Every model and the data in float64, so that stacked and separate runs differ by rounding alone (test_stacked,
    test_cuda)."""
    import torch

    from normlib.run.device import default_dtype
    with default_dtype(torch.float64):
        yield


@pytest.fixture(scope="session")
def section_items(tmp_path_factory):
    """Every item the summary notebook's sections give on constructed grids (constructed.report_items), made once for
    the table and figure tests; its figures are closed at the end."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from normlib.report.plots import Figure
    items = report_items(tmp_path_factory.mktemp("sections"))
    yield items
    for item in items:
        if isinstance(item, Figure):
            plt.close(item.fig)


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory):
    """(reports root, the finished sweep) of `python -m normlib.sweep params/smoke.yaml --no-report`."""
    root = tmp_path_factory.mktemp("reports")
    return root, run_sweep(SMOKE, root, "--no-report")


@pytest.fixture(scope="session")
def reports_root(smoke_sweep):
    """The smoke grid's folder (as the sweep wrote it) and constructed extra grids beside it."""
    root, done = smoke_sweep
    assert done.returncode == 0, done.stdout + done.stderr
    for name, (fixed, g) in EXTRA.items():
        constructed(root / name, fixed, g)
    return root


@pytest.fixture(scope="session")
def smoke_report(reports_root):
    """The report on the smoke grid and every constructed extra grid, rendered by the sweep's --report-only:
    report.html beside the executed summary.ipynb."""
    from normlib.sweep import loop as sweep
    assert sweep.main([str(SMOKE), "--out", str(reports_root), "--report-only", "--extra", ",".join(EXTRA)]) == 0
    return reports_root / "smoke" / "report.html"
