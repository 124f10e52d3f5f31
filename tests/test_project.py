"""bench/project.py: the projection's arithmetic on made-up counts, and what it counts as a kernel."""
import pytest
import torch

from bench import project
from bench.project import Cell

TFLOPS = 100.0  # round numbers: 1e14 FLOP/s


def cell(**kw) -> Cell:
    counts = dict(label="c", runs=5, steps=1000, eager_steps=0, kernels=100, flops=0.0, eval_batches=0,
                  eval_kernels=10, eval_flops=0.0)
    return Cell(**{**counts, **kw})


def test_a_step_takes_its_latency_or_its_flops_whichever_is_slower():
    assert project.step_seconds(100, 3.0, 1e9, TFLOPS) == pytest.approx(300e-6)  # 300 µs vs 10 µs of FLOPs
    assert project.step_seconds(100, 3.0, 1e11, TFLOPS) == pytest.approx(1e-3)  # 300 µs vs 1 ms of FLOPs


def test_a_stack_adds_replayed_eager_and_evaluation_steps():
    c = cell(steps=1000, eager_steps=10, kernels=100, eval_batches=20, eval_kernels=10)
    expected = project.START_S + 990 * 100 * 2e-6 + 10 * 100 * 10e-6 + 20 * 10 * 10e-6
    assert project.stack_seconds(c, kernel_us=2.0, eager_us=10.0, tflops=TFLOPS) == pytest.approx(expected)
    assert project.total_flops(cell(steps=10, flops=3.0, eval_batches=4, eval_flops=0.5)) == 32.0


def test_stacks_run_jobs_at_a_time_longest_first():
    assert project.makespan([3, 5, 3, 4], jobs=2) == 8  # 5 + 3 | 4 + 3
    assert project.makespan([3, 5, 3, 4], jobs=14) == 5
    assert project.makespan([], jobs=14) == 0


def test_a_grid_is_bounded_by_its_longest_stack_or_by_all_its_flops(monkeypatch):
    monkeypatch.setattr(project, "START_S", 1)
    slow, fast = cell(steps=100_000, kernels=100), cell(steps=10, kernels=100)  # 30 s and 0.003 s at 3 µs
    assert project.grid_seconds([slow, fast], 3.0, 10.0, TFLOPS, 14) == pytest.approx(1 + 30)
    heavy = [cell(steps=1000, flops=1e12)] * 4  # 4e15 FLOPs: 40 s at 1e14/s; each stack alone 10 s
    assert project.grid_seconds(heavy, 3.0, 10.0, TFLOPS, 14) == pytest.approx(1 + 40.0)


def test_the_summary_adds_the_fixed_parts_and_says_what_fits_one_call(monkeypatch):
    monkeypatch.setattr(project, "START_S", 0)
    grids = [("a", [cell(steps=100_000, kernels=1000)]), ("b", [cell(steps=200_000, kernels=1000)])]  # 300 s, 600 s
    lines = project.summary(grids, {"setup": 100}, 500, 3.0, 10.0, TFLOPS, 14, with_limits=False)
    assert "a: 1 stacks" in lines[0] and lines[0].endswith("300 s; finishes in the first call")
    assert lines[1].endswith("600 s; does not finish in the first call")
    assert "total 1000 s" in lines[-1] and "3 call(s)" in lines[-1]  # 900 s of training, 400 s per call


def test_the_limits_are_where_a_grid_stops_fitting(monkeypatch):
    monkeypatch.setattr(project, "START_S", 0)
    latency = [("a", [cell(steps=100_000, kernels=1000)])]  # 100 s per µs per kernel, no FLOPs
    assert "holds it up to 4.0 µs per kernel (at 100 TFLOP/s)" in project.limits(latency, 400, 3.0, 10.0, TFLOPS, 14)
    flops = [("b", [cell(steps=1000, kernels=1, flops=1e13)])]  # 1e16 FLOPs: 400 s at 25 TFLOP/s
    assert "from 25 TFLOP/s up (at 3 µs per kernel)" in project.limits(flops, 400, 3.0, 10.0, TFLOPS, 14)
    assert project.limits(flops, 0.05, 3.0, 10.0, TFLOPS, 14) == (  # its FLOPs take 0.1 s even at 1e5 TFLOP/s
        "the first call holds it at no per-kernel time (at 100 TFLOP/s), at no throughput (at 3 µs per kernel)")


def test_views_and_allocations_are_not_kernels():
    x = torch.ones(4)
    assert project.kernels(lambda: (x + 1).view(2, 2).t().sum()) == 2  # add, sum


def test_the_fixed_parts_and_the_queue_come_from_the_device_command():
    defaults = project.device_defaults(project.DEVICE_SH.read_text())
    assert defaults["QUEUE"].split() == ["params/full_stacked.yaml", "params/full_depth_stacked.yaml"]
    assert all((project.ROOT / g).exists() for g in defaults["QUEUE"].split())
    fixed = project.fixed_seconds(defaults)
    assert fixed["benchmark (BENCH_S)"] == int(defaults["BENCH_S"]) and int(defaults["BUDGET_S"]) <= 540
