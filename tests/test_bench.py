"""The benchmark command end to end on synthetic data, and its compute floor."""
import json
import subprocess
import sys

import pytest

from bench import bench
from helpers import ROOT
from normlib.config import RunConfig
from normlib.run.model import Network



def test_grid_floor_counts_training_evaluation_and_the_bn_diagnostic():
    flops = bench.forward_flops(Network("group"))
    assert flops == pytest.approx(0.306e9, rel=0.01)  # the original's CNN
    run = dict(norm="group", train_size=1000, test_size=500, epochs=2)
    assert bench.grid_floor([("a", run)], 100.0) == pytest.approx(2 * (1000 * 3 + 500) * flops / 100e9)
    bn = dict(run, norm="batch")  # + one forward over the diagnostic's test images
    assert bench.grid_floor([("b", bn)], 100.0) == pytest.approx((2 * 3500 + 500) * flops / 100e9, rel=1e-3)
    assert bench.grid_floor([("b", dict(bn, diagnostics=False))], 100.0) < bench.grid_floor([("b", bn)], 100.0)
    assert RunConfig().diagnostics  # the default the floor counts


def test_the_engine_row_uses_the_references_threads(monkeypatch, tiny_splits):
    """Both pipelines get the same cores: the engine runs with torch's thread count, not the run default of 1."""
    import torch
    seen = {}

    def train(cfg, splits):
        seen["threads"] = cfg.threads
        raise RuntimeError("stop after the config")
    monkeypatch.setattr(bench, "bench_splits", lambda *a: (tiny_splits, 200, 100))
    monkeypatch.setattr(bench.engine, "train", train)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    with pytest.raises(RuntimeError, match="stop after the config"):
        bench.engine_row("engine", {}, "batch", 2, 200, 100, "cpu")
    assert seen["threads"] == 3 != RunConfig().threads


def test_the_grid_timing_calls_the_sweep_as_it_is_declared(monkeypatch):
    """The grid comparison's call of normlib.sweep.loop.sweep matches its signature (autospec), so a change there fails
    here and not after a benchmark's per-run half."""
    from unittest import mock
    calls = mock.create_autospec(bench.sweep, return_value=0)
    monkeypatch.setattr(bench, "sweep", calls)
    assert bench.timed_sweep(ROOT / "params" / "bench.yaml") >= 0
    assert calls.call_args.kwargs["report"] is False


@pytest.mark.slow
def test_bench_command_writes_its_table(tmp_path):
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "bench.bench", "--data", "synthetic", "--train-images", "64", "--test-images", "40",
           "--batch-sizes", "2", "--norms", "group", "--compile", "none", "--no-grid", "--device", "cpu",
           "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "cpu.json").read_text())
    rows = {r["pipeline"]: r for r in result["runs"]}
    assert set(rows) == {"reference", "engine"}
    assert rows["reference"]["train_x"] == 1.0 and rows["engine"]["train_ips"] > 0
    assert rows["engine"]["train_x"] == pytest.approx(rows["engine"]["train_ips"] / rows["reference"]["train_ips"])
    table = (out / "cpu.md").read_text()
    assert "| group | 2 | engine |" in table and "| train bs 2 | >= 1.3x |" in table
    again = subprocess.run([sys.executable, "-m", "bench.bench", "--render", str(out / "cpu.json"), "--out",
                            str(tmp_path / "again")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "again" / "cpu.md").read_text() == table  # the table is a function of the saved numbers
