"""A projection, not a measurement: bench/device.sh's wall time on an H100 or H200, from what one step of each stack
does, counted on this machine's CPU, and from named assumptions about the GPU.

Counted here, for every cell (the runs that differ only in seed) of every grid in the queue: the kernels of one
stacked step (aten ops that compute, views and allocations aside, under a TorchDispatchMode over one eager step,
which is the step a CUDA graph captures), its FLOPs (torch.utils.flop_counter), and the same for one evaluation batch.
A stack's FLOPs are K times one run's (a stack of one): FlopCounterMode counts a grouped convolution's weight gradient
as if it were not grouped (3x too many FLOPs in its backward at groups = 5, torch 2.14.1), and stacking does not
change any run's arithmetic.

Then: a step takes max(kernels x per-kernel time, FLOPs / throughput); a stack takes its replayed steps at the
per-kernel time inside a graph, its eager steps (each batch shape's warm-up, the BN probe's batches) and evaluation
batches at the eager per-op time; a grid's stacks run side by side under MPS, `jobs` at a time, longest first, so a
grid takes max(the longest stack's schedule, all its FLOPs / throughput); the queue's grids run one after another;
the command adds its fixed parts (bench/device.sh's budgets, and its setup). Left out: the last epoch's BatchNorm
diagnostics (about 5,000 images' forward passes per run) and the checkpoints' writes. Counting takes minutes: each
cell's steps run for real on the CPU.

usage: python -m bench.project [GRID ...] [--kernel-us 3] [--eager-us 10] [--tflops 150] [--jobs 14]
(GRID default: bench/device.sh's queue)
"""
import argparse
import heapq
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from normlib import norms
from normlib.run import evaluation
from normlib.sweep.grid import GridError

ROOT = Path(__file__).resolve().parents[1]
DEVICE_SH = ROOT / "bench" / "device.sh"

# The assumptions, each with its source. Per-kernel times are for kernels this small (a few MFLOP each at K = 5).
KERNEL_US = 3.0  # µs per kernel inside a replayed CUDA graph on an H100: the stacked engine's design target (0.3 ms
#                  per step of a batch-size-2 stack of 5, whose step has 91 kernels); an estimate, not measured
EAGER_US = 10.0  # µs per op launched eagerly from Python (warm-up steps, the BN probe's steps, evaluation)
TFLOPS = 150.0  # TF32 FLOP/s achieved by all stacks together (the design target: 32 PFLOP in about 3.5 minutes);
#                 grouped convolutions may reach less
JOBS = 14  # stacks at once: bench/device.sh's JOBS on a GPU
START_S = 10  # per stack: a fresh process's imports, CUDA context, data onto the GPU, warm-up and capture (assumed)
SETUP_S = 30  # wheels installed from the carried folder, and the JPEG copy decoded once (14 s of CPU time here)
MARGIN_S = 15  # bench/device.sh: kept after the last sweep for the tarball
MEASURED_GRAPH_MS = 2.526  # the per-run engine's step (normlib.run.train), batch size 2, compiled with CUDA
#   graphs, H100
MEASURED_EAGER_MS = 4.044  # the same step eager; both in reports/full/device/step_latency.txt
NO_KERNEL = {"empty", "empty_strided", "_unsafe_view", "promote_types"}  # allocate or reinterpret; no kernel


@dataclass
class Cell:
    """What one stack of a grid does, counted: the projection's input."""
    label: str  # the cell's runs' name without the seed
    runs: int  # K, the runs stacked
    steps: int  # optimizer steps of each run
    eager_steps: int  # of them, run eagerly: each batch shape's warm-up and the BN probe's batches
    kernels: int  # per step of the stack
    flops: float  # per step of the stack
    eval_batches: int  # evaluation batches of all the stack's runs, over the whole training
    eval_kernels: int  # per evaluation batch
    eval_flops: float  # per evaluation batch


# ---------------------------------------------------------------- the projection's arithmetic

def step_seconds(kernels: int, us: float, flops: float, tflops: float) -> float:
    """A step bounded by its kernels' latency or by the throughput, whichever is slower."""
    return max(kernels * us * 1e-6, flops / (tflops * 1e12))


def stack_seconds(c: Cell, kernel_us: float = KERNEL_US, eager_us: float = EAGER_US, tflops: float = TFLOPS) -> float:
    return (START_S + (c.steps - c.eager_steps) * step_seconds(c.kernels, kernel_us, c.flops, tflops)
            + c.eager_steps * step_seconds(c.kernels, eager_us, c.flops, tflops)
            + c.eval_batches * step_seconds(c.eval_kernels, eager_us, c.eval_flops, tflops))


def total_flops(c: Cell) -> float:
    return c.steps * c.flops + c.eval_batches * c.eval_flops


def makespan(seconds: list, jobs: int = JOBS) -> float:
    """Wall time of tasks run `jobs` at a time, longest first, each started when a slot frees."""
    slots = [0.0] * min(jobs, len(seconds))
    for s in sorted(seconds, reverse=True):
        heapq.heappush(slots, heapq.heappop(slots) + s)
    return max(slots, default=0.0)


def grid_seconds(cells: list, kernel_us: float = KERNEL_US, eager_us: float = EAGER_US, tflops: float = TFLOPS,
                 jobs: int = JOBS) -> float:
    """A grid's stacks side by side: bounded by their schedule and by all their FLOPs at the throughput (once the
    stacks have started)."""
    stacks = [stack_seconds(c, kernel_us, eager_us, tflops) for c in cells]
    return max(makespan(stacks, jobs), START_S + sum(map(total_flops, cells)) / (tflops * 1e12))


def fixed_seconds(defaults: dict) -> dict:
    """The command's parts that do not depend on the grids, from bench/device.sh's defaults."""
    return {"setup (wheels, data)": SETUP_S, "benchmark (BENCH_S)": int(defaults["BENCH_S"]),
            "a grid's report (RENDER_S)": int(defaults["RENDER_S"]), "tarball": MARGIN_S}


def device_defaults(text: str) -> dict:
    """Every ${NAME:-default} of a shell script, the first one of each name."""
    found = {}
    for name, value in re.findall(r"\$\{(\w+):-([^}]*)\}", text):
        found.setdefault(name, value)
    return found


# ---------------------------------------------------------------- counting on the CPU

def kernels(fn) -> int:
    """Kernels of fn() run once: the aten ops that compute (views and allocations aside)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.namespace == "aten" and not func.is_view and func.overloadpacket.__name__ not in NO_KERNEL:
                self.n += 1
            return func(*args, **(kwargs or {}))

    with Count() as count:
        fn()
    return count.n


def flops(fn) -> float:
    """FLOPs of fn() run once (matrix products and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as f:
        fn()
    return f.get_total_flops()


def stack_counts(params: dict, runs: int) -> tuple:
    """(kernels of one step of a stack of `runs`, FLOPs of one step of one run, kernels and FLOPs of one evaluation
    batch), on synthetic images after a first step (Adam's state exists)."""
    import torch
    from normlib.run import data as datalib
    from normlib.run import stacked, train
    from normlib.config import RunConfig

    p = {k: v for k, v in params.items() if k not in ("out", "seed")}
    cfgs = [RunConfig(**{**p, "seed": s, "device": "cpu", "data": "synthetic"}) for s in range(runs)]
    n = 2 * max(cfgs[0].batch_size, cfgs[0].eval_batch)
    splits = datalib.splits(datalib.synthetic(n_train=n, n_test=cfgs[0].eval_batch), n, cfgs[0].eval_batch, 0, 0)

    def one_step(st):
        st.shuffle()
        offsets = torch.arange(cfgs[0].batch_size)
        st.step(offsets)
        return lambda: st.step(offsets)

    net, (x, y) = train.seeded_model(cfgs[0], torch.device("cpu")), splits["test"]
    x, y = train.to_device(x, y, torch.device("cpu"))
    evaluate = lambda: evaluation.evaluate(net, x, y, cfgs[0].eval_batch)  # noqa: E731
    return (kernels(one_step(stacked.Stack(cfgs, splits))), flops(one_step(stacked.Stack(cfgs[:1], splits))),
            kernels(evaluate), flops(evaluate))


def cell_of(stack: list) -> Cell:
    """A stack of (run id, params) counted."""
    from normlib.run import stacked
    from normlib.config import DIAG_BATCHES, TEST_IMAGES, TRAIN_IMAGES, RunConfig, planned_steps

    rid, params = stack[0][:2]
    cfg, runs = RunConfig(**{k: v for k, v in params.items() if k != "out"}), len(stack)
    step_kernels, run_flops, eval_kernels, eval_flops = stack_counts(params, runs)
    train_n, test_n = cfg.train_size or TRAIN_IMAGES, cfg.test_size or TEST_IMAGES
    shapes = 1 + bool(train_n % cfg.batch_size)  # the partial last batch has a graph of its own
    probe = DIAG_BATCHES * cfg.epochs if cfg.diagnostics and norms.running_stats(cfg.norm) else 0
    steps = planned_steps(params)
    label = "_".join(part for part in rid.split("_") if not re.fullmatch(r"seed\d+", part))
    return Cell(label=label, runs=runs, steps=steps,
                eager_steps=min(steps, stacked.WARMUP_STEPS * shapes + probe), kernels=step_kernels,
                flops=runs * run_flops, eval_batches=runs * cfg.epochs * math.ceil(test_n / cfg.eval_batch),
                eval_kernels=eval_kernels, eval_flops=eval_flops)


def grid_cells(path) -> tuple:
    """(grid name, its cells counted), a stack per cell as the sweep forms them (normlib.sweep.grid.stacks)."""
    from normlib.sweep.grid import Run, load_grid, stacks

    grid = load_grid(path)
    return grid["name"], [cell_of(st) for st in stacks([Run(rid, p, None) for rid, p in grid["runs"]])]


def one_run_kernels() -> int:
    """Kernels of the step the former engine's measured latency is of: one run, BatchNorm, batch size 2."""
    return stack_counts({"norm": "batch", "batch_size": 2}, 1)[0]


# ---------------------------------------------------------------- the printed projection

def table(grids: list, kernel_us: float, eager_us: float, tflops: float) -> list:
    lines = ["| grid | cell | K | steps | eager steps | kernels / step | GFLOP / step | latency-bound ms | "
             "FLOP-bound ms | stack s |", "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for name, cells in grids:
        for c in cells:
            lines.append(f"| {name} | {c.label} | {c.runs} | {c.steps} | {c.eager_steps} | {c.kernels} | "
                         f"{c.flops / 1e9:.1f} | {c.kernels * kernel_us / 1e3:.3f} | {c.flops / tflops / 1e9:.3f} | "
                         f"{stack_seconds(c, kernel_us, eager_us, tflops):.0f} |")
    return lines


def turning_point(fits, good: float, bad: float) -> float:
    """Where fits(x) stops holding between `good` (where it holds) and `bad` (where it does not), by bisection."""
    for _ in range(60):
        mid = (good + bad) / 2
        good, bad = (mid, bad) if fits(mid) else (good, mid)
    return good


def limits(grids: list, left: float, kernel_us: float, eager_us: float, tflops: float, jobs: int) -> str:
    """How far each assumption may move, the other held, before the last of `grids` no longer finishes in `left`
    seconds: the highest per-kernel time and the lowest throughput."""
    def queue(k, t):
        return sum(grid_seconds(cells, k, eager_us, t, jobs) for _, cells in grids)
    if queue(0.0, tflops) > left:
        us = "at no per-kernel time"
    else:
        us = f"up to {turning_point(lambda k: queue(k, tflops) <= left, 0.0, 1000.0):.1f} µs per kernel"
    if queue(kernel_us, 1e5) > left:
        tf = "at no throughput"
    else:
        tf = f"from {turning_point(lambda t: queue(kernel_us, t) <= left, 1e5, 0.0):.0f} TFLOP/s up"
    return f"the first call holds it {us} (at {tflops:g} TFLOP/s), {tf} (at {kernel_us:g} µs per kernel)"


def summary(grids: list, fixed: dict, budget: int, kernel_us: float, eager_us: float, tflops: float,
            jobs: int, with_limits: bool = True) -> list:
    """Each grid's bounds and the command's total, with what fits one call of `budget` seconds."""
    lines, done = [], 0.0
    left = budget - sum(fixed.values())  # the grids' share of one call
    for i, (name, cells) in enumerate(grids):
        g = grid_seconds(cells, kernel_us, eager_us, tflops, jobs)
        longest = max(stack_seconds(c, kernel_us, eager_us, tflops) for c in cells)
        flops = sum(map(total_flops, cells))
        done += g
        fits = "finishes in the first call" if done <= left else "does not finish in the first call"
        lines.append(f"- {name}: {len(cells)} stacks, {flops / 1e15:.1f} PFLOP ({flops / tflops / 1e12:.0f} s at "
                     f"{tflops:g} TFLOP/s), longest stack {longest:.0f} s: {g:.0f} s; {fits}"
                     + (f"; {limits(grids[:i + 1], left, kernel_us, eager_us, tflops, jobs)}" if with_limits else ""))
    total = done + sum(fixed.values())
    lines.append(f"- fixed parts: {', '.join(f'{k} {v} s' for k, v in fixed.items())}")
    lines.append(f"- **total {total:.0f} s ({total / 60:.1f} min)** against one call's budget of {budget} s "
                 f"(BUDGET_S); {math.ceil(done / left) if left > 0 else '?'} call(s) for the whole queue")
    return lines


def main(argv=None) -> int:
    defaults = device_defaults(DEVICE_SH.read_text())
    ap = argparse.ArgumentParser(prog="python -m bench.project", description=__doc__.splitlines()[0])
    ap.add_argument("grids", nargs="*", default=defaults["QUEUE"].split(), help="params files, in queue order")
    ap.add_argument("--kernel-us", type=float, default=KERNEL_US, help="µs per kernel in a replayed CUDA graph")
    ap.add_argument("--eager-us", type=float, default=EAGER_US, help="µs per op launched eagerly")
    ap.add_argument("--tflops", type=float, default=TFLOPS, help="TFLOP/s achieved by all stacks together")
    ap.add_argument("--jobs", type=int, default=JOBS, help="stacks at once")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    t0 = time.time()
    try:
        grids = [grid_cells(ROOT / g) for g in a.grids]  # an absolute path stays itself
    except GridError as e:
        print("\n".join(f"error: {line}" for line in str(e).splitlines()), file=sys.stderr)
        return 2
    fixed, budget = fixed_seconds(defaults), int(defaults["BUDGET_S"])
    ref = one_run_kernels()
    measured = (1e3 * MEASURED_GRAPH_MS / ref, 1e3 * MEASURED_EAGER_MS / ref)  # µs per kernel, graph and eager
    out = ["# A projection, not a measurement: bench/device.sh on an H100 or H200", "",
           f"Counted on this machine's CPU (torch {torch.__version__}, {time.strftime('%Y-%m-%d')}, "
           f"{time.time() - t0:.0f} s); assumed: {a.kernel_us:g} µs per kernel in a replayed CUDA graph, "
           f"{a.eager_us:g} µs per eager op, {a.tflops:g} TFLOP/s achieved in TF32, {a.jobs} stacks at once under "
           f"MPS, {START_S} s to start each stack, setup {SETUP_S} s.", "",
           *table(grids, a.kernel_us, a.eager_us, a.tflops), "",
           *summary(grids, fixed, budget, a.kernel_us, a.eager_us, a.tflops, a.jobs), "",
           f"Pessimistic latency, from the one measured step: the former engine's step (one run, BatchNorm, batch "
           f"size 2: {ref} kernels counted as above) took {MEASURED_GRAPH_MS} ms with CUDA graphs and "
           f"{MEASURED_EAGER_MS} ms eager on an H100, {measured[0]:.1f} and {measured[1]:.1f} µs per kernel "
           f"(its graphs were three per step with eager work between them):", "",
           *summary(grids, fixed, budget, *measured, a.tflops, a.jobs, with_limits=False)]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
