"""Engine vs the original's pipeline on this machine, in one command on the same images (each run in a fresh process):
per-run training and evaluation throughput, peak memory, achieved GFLOP/s against the device's FP32 peak, and the
wall time of a small grid run by the sweep (runs side by side) against the same runs through the original's pipeline in
turn, with the project's speed targets and, for a missed one, what bounds it.

usage: python -m bench.bench [--train-images 1024] [--test-images 1000] [--batch-sizes 2 16 128]
                             [--norms batch group] [--compile default|none|...] [--bf16] [--repeats 1]
                             [--grid params/bench.yaml | --no-grid] [--data PATH]
                             [--render reports/bench/cpu.json]
Writes reports/bench/<device>.md and .json (device: cpu, or cuda-<name>).
Needs CIFAR-10: set NORMLIB_DATA (see normlib/run/data.py).
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from normlib.run import data as datalib
from normlib.run import device as devices
from normlib.run import evaluation
from normlib.run import train as engine
from normlib import config, norms
from normlib.config import COMPILES, RunConfig
from normlib.run.model import network
from normlib.sweep.loop import load_grid, sweep

from . import reference
from .page import ROOT, TRAIN_FLOP_FACTOR, verdicts, write

FLOP_PER_CYCLE = 32  # FP32 per core and cycle: 2 FMA pipes x 8 lanes x 2 (AVX2, or AVX-512 double-pumped: Zen 4)
CUDA_FP32_TFLOPS = {"H100": 67.0, "H200": 67.0, "A100": 19.5, "L4": 30.3, "A10": 31.2, "T4": 8.1}  # non-tensor


def forward_flops(model, shape=(1, 3, 32, 32)) -> float:
    """FLOPs of one image's forward pass: 2 x multiply-adds of every convolution and linear layer."""
    total = []

    def hook(m, inputs, out):
        k = m.weight[0].numel()  # in_channels/groups x kh x kw, or in_features
        total.append(2.0 * out.numel() * k)

    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    with torch.no_grad():
        model.eval()(torch.zeros(shape))
    for h in handles:
        h.remove()
    return sum(total) / shape[0]


def device_info(device: torch.device) -> dict:
    """Name, file tag and FP32 peak (GFLOP/s, with how it was computed) of the device."""
    if device.type == "cuda":
        name = devices.name(device)
        tflops = next((v for k, v in CUDA_FP32_TFLOPS.items() if k in name), None)
        return {"name": name, "tag": "cuda-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
                "peak_gflops": tflops * 1e3 if tflops else None,
                "peak_how": f"FP32 non-tensor peak of {name} (datasheet)" if tflops else "unknown"}
    cpuinfo = Path("/proc/cpuinfo").read_text()
    mhz = max(float(v) for v in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M))
    model = (re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.M) or [platform.processor()])[0]
    cores = len(os.sched_getaffinity(0))
    return {"name": f"{model} ({cores} cores)", "tag": "cpu", "peak_gflops": cores * FLOP_PER_CYCLE * mhz / 1e3,
            "peak_how": f"{cores} cores x {FLOP_PER_CYCLE} FLOP/cycle x {mhz:.0f} MHz (/proc/cpuinfo)"}


class PeakMemory:
    """Peak memory added by a block, MiB: on CUDA the allocator's peak; on a CPU this process's resident-set
    high-water mark, reset on entry through /proc/self/clear_refs (DataLoader workers are not counted)."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    @staticmethod
    def _status(key) -> int:
        return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
            self.base = self._status("VmRSS:")
        return self

    def __exit__(self, *exc):
        peak = torch.cuda.max_memory_allocated() if self.cuda else self._status("VmHWM:")
        self.mib = (peak - self.base) / 2**20


def timed_eval(model, x, y, batch, device, amp) -> float:
    """Seconds to evaluate the whole set once (after one warm-up chunk)."""
    evaluation.evaluate(model, x[:batch], y[:batch], batch, amp)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    evaluation.evaluate(model, x, y, batch, amp)
    return time.perf_counter() - t


def variants(compile_mode: str, bf16: bool) -> list:
    """(label, engine settings) of the engine rows: eager FP32 (the default), then the optional ones."""
    out = [("engine", {})]
    if compile_mode not in ("auto", "none"):
        out.append((f"engine, compile={compile_mode}", {"compile": compile_mode}))
    if bf16:
        out.append(("engine, bf16 autocast", {"precision": "bf16"}))
    return out


def bench_splits(train_images: int, test_images: int) -> tuple:
    """(splits, training images, test images): the same stratified subsets for every run of the benchmark."""
    splits = datalib.splits(datalib.load(), train_images, test_images, 0, 0)
    return splits, len(splits["train"][1]), len(splits["test"][1])


def reference_row(norm: str, batch_size: int, train_images: int, test_images: int, device: str) -> dict:
    """One epoch of the original's pipeline on the benchmark's images, with its peak memory."""
    device = torch.device(device)
    splits, n_train, n_test = bench_splits(train_images, test_images)
    with PeakMemory(device) as mem:
        ref = reference.run(norm, batch_size, seed=0, epochs=1, splits=splits, device=device)["history"][0]
    return {"pipeline": "reference", "train_ips": n_train / ref["train_seconds"],
            "eval_ips": n_test / ref["eval_seconds"], "eval_batch": batch_size, "peak_mib": mem.mib,
            "test_acc": ref["test_acc"]}


def reference_grid(grid_path: str, device: str) -> float:
    """Wall seconds of a grid's runs through the original's pipeline, one after another in one process."""
    data = datalib.load()
    t = time.perf_counter()
    for _, p in load_grid(grid_path)["runs"]:
        c = RunConfig(**p)
        splits = datalib.splits(data, c.train_size, c.test_size, c.val_size, c.subset_seed)
        reference.run(c.norm, c.batch_size, c.seed, c.epochs, splits, torch.device(device), c.num_blocks)
    return time.perf_counter() - t


def in_fresh_process(fn, **kwargs):
    """fn(**kwargs) in a new Python process, as a notebook kernel of the sweep would run it: the engine's
    process-wide settings (normlib.run.device.configure) must not reach the reference, and its retained memory must
    not hide the next run's peak. (A multiprocessing child will not do: DataLoader workers forked from one run
    ten times slower.)"""
    call = json.dumps({"fn": fn.__name__, "kwargs": kwargs})
    done = subprocess.run([sys.executable, "-m", "bench.bench", "--call", call], cwd=ROOT, capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(f"{fn.__name__}({kwargs}) failed in its process:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def engine_row(label: str, settings: dict, norm: str, batch_size: int, train_images: int, test_images: int,
               device: str) -> dict:
    """One engine run on the benchmark's images (two epochs when compiling), with its peak memory and its
    evaluation speed. It uses the reference's thread count (torch's default in a fresh process), not the run
    parameter's default of 1 thread, so that both pipelines get the same cores."""
    device = torch.device(device)
    splits, n_train, n_test = bench_splits(train_images, test_images)
    cfg = RunConfig(norm=norm, batch_size=batch_size, train_size=n_train, test_size=n_test, device=device.type,
                    **{"threads": torch.get_num_threads(), **settings})
    compiling = devices.compile_mode(cfg, device) != "none"
    if compiling:
        cfg.epochs = 2
    with PeakMemory(device) as mem:
        out = engine.train(cfg, splits)
    hist = out["history"]
    x, y = engine.to_device(*splits["test"], device)
    amp = lambda: devices.autocast(cfg, device)  # noqa: E731
    row = {"pipeline": label, "train_ips": n_train / hist[0]["train_seconds"],
           "eval_ips": n_test / timed_eval(out["model"], x, y, cfg.eval_batch, device, amp),
           "eval_batch": cfg.eval_batch, "peak_mib": mem.mib, "test_acc": hist[0]["test_acc"]}
    if compiling:  # the first epoch pays for compilation; the second shows the steady state
        row["train_ips_steady"] = n_train / hist[1]["train_seconds"]
    return row


def best(rows: list) -> dict:
    """The repeats of one measurement merged: the highest speed of each kind (the least disturbed run)."""
    out = dict(rows[0])
    for key in ("train_ips", "eval_ips", "train_ips_steady"):
        if key in out:
            out[key] = max(r[key] for r in rows)
    return out


def per_run(norm, batch_size, images: dict, device, engines, flops, repeats: int = 1) -> list:
    """Rows for one (norm, batch size): the original's pipeline, then each engine variant, each in a fresh process
    on the same images; with repeats, each speed is the best of that many interleaved runs."""
    run = dict(norm=norm, batch_size=batch_size, device=str(device), **images)
    trials = []
    for _ in range(repeats):
        trial = [in_fresh_process(reference_row, **run)]
        trial += [in_fresh_process(engine_row, label=label, settings=settings, **run) for label, settings in engines]
        trials.append(trial)
    rows = [best(list(same)) for same in zip(*trials)]
    for row in rows:
        row.update(norm=norm, batch_size=batch_size, train_gflops=row["train_ips"] * flops * TRAIN_FLOP_FACTOR / 1e9,
                   eval_gflops=row["eval_ips"] * flops / 1e9, train_x=row["train_ips"] / rows[0]["train_ips"],
                   eval_x=row["eval_ips"] / rows[0]["eval_ips"])
    return rows


def timed_sweep(grid_path) -> float:
    """Wall seconds of the sweep of a grid, into a temporary folder."""
    out_root = Path(tempfile.mkdtemp(prefix="normlib-bench-"))
    env = dict(os.environ)
    try:
        t = time.perf_counter()
        code = sweep(grid_path, out_root=out_root, report=False)
        seconds = time.perf_counter() - t
    finally:
        os.environ.clear()
        os.environ.update(env)  # the sweep sets OMP_NUM_THREADS for its kernels
        shutil.rmtree(out_root, ignore_errors=True)
    if code:
        raise RuntimeError(f"grid={grid_path}: the sweep failed (exit code {code})")
    return seconds


def grid_floor(runs: list, peak_gflops: float) -> float:
    """Seconds the grid's runs would take at the device's nominal FP32 peak doing only their convolution and
    linear-layer FLOPs (training, per-epoch evaluation, BatchNorm's batch-statistics diagnostic): no pipeline,
    however fast, runs them in less without fewer FLOPs or lower precision."""
    total = 0.0
    for _, p in runs:
        c = RunConfig(**p)
        flops = forward_flops(network(c))
        train = (c.train_size or config.TRAIN_IMAGES) - c.val_size
        test = c.test_size or config.TEST_IMAGES
        total += c.epochs * (train * TRAIN_FLOP_FACTOR + test + c.val_size) * flops
        if c.diagnostics and norms.running_stats(c.norm):
            total += min(config.DIAG_TEST, test) * flops
    return total / (peak_gflops * 1e9)


def grid_wall(grid_path, device, bf16: bool, peak_gflops=None) -> dict:
    """Wall seconds of a grid: through the sweep (papermill, runs side by side; also with precision bf16 if asked)
    and through the original's pipeline, one run after another in this process."""
    grid = load_grid(grid_path)
    out = {"grid": str(grid_path), "runs": len(grid["runs"]), "jobs": grid["jobs"] or os.cpu_count(),
           "params": grid["runs"][0][1], "engine_seconds": timed_sweep(grid_path)}
    if bf16:
        spec = yaml.safe_load(Path(grid_path).read_text())
        spec["fixed"] = {**spec.get("fixed", {}), "precision": "bf16"}
        tmp = Path(tempfile.mkdtemp(prefix="normlib-bench-grid-"))
        try:
            path = tmp / f"{Path(grid_path).stem}_bf16.yaml"
            path.write_text(yaml.safe_dump(spec))
            out["engine_bf16_seconds"] = timed_sweep(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    out["reference_seconds"] = in_fresh_process(reference_grid, grid_path=str(grid_path), device=str(device))
    out["ratio"] = out["engine_seconds"] / out["reference_seconds"]
    if peak_gflops:
        out["floor_seconds"] = grid_floor(grid["runs"], peak_gflops)
        out["floor_ratio"] = out["floor_seconds"] / out["reference_seconds"]
    if bf16:
        out["ratio_bf16"] = out["engine_bf16_seconds"] / out["reference_seconds"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--train-images", type=int, default=1024, help="training images per run (default 1024)")
    ap.add_argument("--test-images", type=int, default=1000, help="test images per run (default 1000)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 16, 128])
    ap.add_argument("--norms", nargs="+", default=["batch", "group"], choices=list(norms.NAMES))
    ap.add_argument("--compile", default="default", choices=COMPILES,
                    help="also time the engine under torch.compile with this mode, two epochs (none: skip)")
    ap.add_argument("--bf16", action="store_true",
                    help="also time the engine with bf16 autocast (precision=bf16), per run and on the grid")
    ap.add_argument("--repeats", type=int, default=1,
                    help="per-run measurements repeated, interleaved; the best speed of each counts (default 1)")
    ap.add_argument("--grid", default=str(ROOT / "params" / "bench.yaml"), help="grid for the wall-time comparison")
    ap.add_argument("--no-grid", action="store_true", help="skip the grid comparison")
    ap.add_argument("--data", default="", help="CIFAR-10 folder or archive (default: $NORMLIB_DATA, see README)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench"), help="folder for <device>.md and .json")
    ap.add_argument("--render", metavar="JSON", help="only write the table again from a saved <device>.json")
    ap.add_argument("--call", help=argparse.SUPPRESS)  # in_fresh_process: run one reference function, print JSON
    a = ap.parse_args(argv)
    if a.call:
        spec = json.loads(a.call)
        fn = {f.__name__: f for f in (reference_row, engine_row, reference_grid)}[spec["fn"]]
        print(json.dumps(fn(**spec["kwargs"])))
        return 0
    if a.data:
        os.environ["NORMLIB_DATA"] = a.data  # read by every run: reference, engine and the grid's kernels
    if a.render:
        saved = json.loads(Path(a.render).read_text())
        meta, rows, grid = saved["meta"], saved["runs"], saved["grid"]
        meta["verdicts"] = verdicts(rows, grid, meta["device"]["peak_gflops"])
        return write(meta, rows, grid, Path(a.out))
    device = devices.pick(a.device)
    info = device_info(device)
    data = datalib.load()  # decoded and cached once, before the runs' processes read it
    splits = datalib.splits(data, a.train_images, a.test_images, 0, 0)
    images = {"train_images": len(splits["train"][1]), "test_images": len(splits["test"][1])}
    meta = {"command": "python -m bench.bench " + " ".join(sys.argv[1:] if argv is None else argv),
            "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "device": info, "load_before": os.getloadavg()[0],
            **images, "gflop_forward": forward_flops(network(RunConfig(norm="batch"))) / 1e9,
            "data_sha256": data.sha256, "repeats": a.repeats}
    rows, engines = [], variants(a.compile, a.bf16)
    for bs in a.batch_sizes:
        for norm in a.norms:
            new = per_run(norm, bs, images, device, engines, meta["gflop_forward"] * 1e9, a.repeats)
            rows += new
            for r in new:
                print(f"{norm:6s} bs {bs:4d} {r['pipeline']:28s} train {r['train_ips']:7.1f} img/s "
                      f"({r['train_x']:.2f}x)  eval {r['eval_ips']:7.0f} img/s ({r['eval_x']:.2f}x)", flush=True)
    grid = None if a.no_grid else grid_wall(a.grid, device, a.bf16, info["peak_gflops"])
    meta["load_after"] = os.getloadavg()[0]
    meta["verdicts"] = verdicts(rows, grid, info["peak_gflops"])
    return write(meta, rows, grid, Path(a.out))


if __name__ == "__main__":
    sys.exit(main())
