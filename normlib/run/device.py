"""The device of a run in one place: which one, whether it exists, its process-wide settings (threads, cuDNN, TF32,
memory reuse), the compile and CUDA-graph policy of both engines, and its description in a record.

On CUDA: cuDNN autotuning, TF32, and by default (compile=auto) torch.compile in 'reduce-overhead' mode, which replays
each training step of the per-run engine from CUDA graphs; the stacked engine captures its step itself. On a CPU
compilation is off by default: it costs seconds per run and the benchmark (reports/bench) shows no reliable gain per
step there. Figures live in reports/bench/<device>.md, which `python -m bench.bench` regenerates.
"""
import ctypes
import os
import platform
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

MODES = ("none", "default", "reduce-overhead")  # torch.compile modes a run's `compile` maps to (compile_mode)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc mallopt() parameters


@contextmanager
def default_dtype(dtype: torch.dtype):
    """torch's default dtype while it lasts: every new model's, and the images' (normlib.run.train.to_device). float64
    makes stacked and separate runs differ by rounding alone (tests/test_stacked.py, bench/bias_drift.py)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def pick(name: str) -> torch.device:
    """The device a run's `device` names; auto: CUDA when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cuda_count() -> int:
    """CUDA devices this process sees (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def keep_freed_memory() -> bool:
    """glibc: serve every allocation from the heap and keep freed memory for reuse instead of returning it to the
    OS. By default each step's large buffers (an activation is 32 MiB at batch 128) are mapped afresh and
    zero-filled one page fault at a time, a large share of the step time at large batches (reports/bench).
    Process-wide; the price is that the process keeps its peak memory.
    False (nothing done) on other C libraries."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    return bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) and libc.mallopt(M_MMAP_MAX, 0))


def configure(device: torch.device) -> None:
    """Fastest kernels per device (global settings): cuDNN autotuning and TF32 on CUDA; oneDNN and memory reuse
    on CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolution once
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
    elif device.type == "cpu":
        if not torch.backends.mkldnn.is_available():
            raise RuntimeError("device=cpu: this torch build has no oneDNN (mkldnn); channels_last convolutions "
                               "would fall back to slow kernels")
        keep_freed_memory()


def start(cfg) -> torch.device:
    """The device of a run, with its process-wide settings applied."""
    device = pick(cfg.device)
    configure(device)
    torch.set_num_threads(cfg.threads)  # a run parameter: reduction orders, and so the numbers, depend on it
    return device


def autocast(cfg, device):
    return torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext()


def compile_mode(cfg, device: torch.device) -> str:
    """The torch.compile mode of a per-run engine's run. auto: on CUDA 'reduce-overhead', which captures the compiled
    forward, backward and Adam step in CUDA graphs (small batches are bound by kernel-launch overhead there); on a
    CPU 'none', since compilation costs seconds per run for no reliable gain (reports/bench/cpu.md, rows
    'compile=default')."""
    if cfg.compile == "auto":
        return "reduce-overhead" if device.type == "cuda" else "none"
    return cfg.compile


def compiled(model, opt, mode: str) -> tuple:
    """(forward, optimizer step), through torch.compile unless mode is 'none'."""
    if mode not in MODES:
        raise ValueError(f"compile={mode!r}: allowed {', '.join(MODES)}")
    if mode == "none":
        return model, opt.step
    mode = None if mode == "default" else mode
    step = torch.compile(opt.step, mode=mode)
    return torch.compile(model, mode=mode), step


def step_graphs(mode: str, device: torch.device) -> bool:
    """Whether the per-run engine's compiled step replays CUDA graphs (each step must then be marked)."""
    return mode == "reduce-overhead" and device.type == "cuda"


def stack_graphs(cfg, device: torch.device) -> bool:
    """Whether the stacked engine captures its step as CUDA graphs: on CUDA unless compile=none."""
    return device.type == "cuda" and cfg.compile != "none"


def name(device: torch.device) -> str:
    """The device's model: the GPU's name, or the CPU's model name with its core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or "cpu"


def cpu_type() -> str:
    """The CPU's family and model, e.g. 'x86_64 family 25 model 1': a marketing name such as 'AMD EPYC' covers
    generations whose kernels round differently."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    parts = [platform.machine()] + [f"{k} {fields[k]}" for k in ("cpu family", "model") if k in fields]
    return " ".join(p for p in parts if p)


def describe(device: torch.device) -> dict:
    """The device in a record: its name, the CPU's type and the instruction set its kernels use (oneDNN picks
    kernels by it, so records from two CPU types may differ in the last bits), torch's CUDA and the threads."""
    return {"torch_cuda": torch.version.cuda, "device": name(device), "cpu_type": cpu_type(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads()}
