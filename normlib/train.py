"""Training engine: data resident on the device as one tensor, batches by indexing a seeded permutation.

Speed is measured by `python -m bench.bench` against the original's pipeline (bench/reference.py); the figures
live in reports/bench/<device>.md, which that command regenerates. On a CPU the convolutions run near the FP32
peak either way, so the gains come from what surrounds them: freed memory reused instead of page-faulted in afresh
every step (keep_freed_memory), channels_last activations (oneDNN's native layout), no DataLoader (one indexing op
per batch from a device-side permutation; x[idx] stays channels_last), fused Adam, evaluation in batches of
eval_batch, and diagnostics without extra passes or host syncs in the loop. On CUDA: cuDNN autotuning, TF32, and
by default (compile=auto) torch.compile in 'reduce-overhead' mode, which replays each training step from CUDA
graphs. On a CPU compilation is off by default: it costs seconds per run and the benchmark shows no reliable gain
per step there.
"""
import copy
import ctypes
import math
import platform
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data as datalib
from .config import DIAG_BATCHES, DIAG_TEST, PRECISE_BATCH, PRECISE_IMAGES, RunConfig, total_steps
from .model import Network

MODES = ("none", "default", "reduce-overhead")  # torch.compile modes a run's `compile` maps to (compile_mode)
GUARDED_STEPS = 3  # first compiled steps that fall back to eager on an error (compilation, CUDA-graph capture)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc mallopt() parameters


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def to_device(x: np.ndarray, y: np.ndarray, device) -> tuple:
    """uint8 (N, 32, 32, 3) -> normalised float (N, 3, 32, 32) in channels_last, as the original: (x/255 - 0.5)/0.5."""
    x = torch.from_numpy(x).to(device).permute(0, 3, 1, 2)  # a channels_last view, no copy
    return x.float().div_(127.5).sub_(1.0), torch.from_numpy(y).to(device)


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """bf16 logits in fp32 for the loss; fp32 (the runs) and fp64 (the stacked engine's exactness test) as they are."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def autocast(cfg: RunConfig, device):
    return torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext()


@torch.inference_mode()
def evaluate(model, x, y, batch: int, amp=nullcontext) -> tuple:
    """(mean loss per image, top-1 %) over the whole set in eval mode; independent of `batch` up to rounding."""
    model.eval()
    loss, correct = torch.zeros((), device=x.device), torch.zeros((), device=x.device, dtype=torch.long)
    for i in range(0, len(x), batch):
        with amp():
            out = model(x[i:i + batch]).float()
        loss += F.cross_entropy(out, y[i:i + batch], reduction="sum")
        correct += (out.argmax(1) == y[i:i + batch]).sum()
    return loss.item() / len(x), 100.0 * correct.item() / len(x)


@torch.no_grad()
def batch_stat_accuracy(model, x, y, batch: int) -> float:
    """Top-1 % with BatchNorm normalising by each test batch's own statistics (running stats left untouched)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in bns]
    model.train()
    for m in bns:
        m.momentum = 0.0  # running = (1 - 0) * running: unchanged
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for i in range(0, len(x), batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    return 100.0 * correct.item() / len(x)


@torch.no_grad()
def precise_bn_accuracy(model, x_train, x, y, eval_batch: int, seed: int, amp=nullcontext) -> float:
    """Top-1 % of a copy of the model whose BN statistics are recomputed over training images with the final
    weights ("precise BN", Wu & Johnson 2021): an exact average over PRECISE_IMAGES shuffled images in batches of
    PRECISE_BATCH, instead of the running averages that lag behind the weights."""
    precise = copy.deepcopy(model)
    for bn in (m for m in precise.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the batches below
    gen = torch.Generator(device=x_train.device).manual_seed(seed)
    idx = torch.randperm(len(x_train), device=x_train.device, generator=gen)[:PRECISE_IMAGES]
    precise.train()
    for i in range(0, len(idx), PRECISE_BATCH):
        with amp():
            precise(x_train[idx[i:i + PRECISE_BATCH]])
    return evaluate(precise, x, y, eval_batch, amp)[1]


class BNProbe:
    """Forward hooks that measure how far a training batch's BN statistics are from the running statistics.
    The batch statistics are read back from BN's own update of its running statistics (64 numbers per layer)
    instead of being computed again over the activations (a sixth of the step at batch 128); sums stay on the
    device (no host sync per batch)."""

    def __init__(self, model, runs: int = 1):
        self.bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        device = self.bns[0].running_mean.device if self.bns else "cpu"
        self.runs = runs  # a stacked model's runs: each gets its own averages over its own channels
        shape = (2,) if runs == 1 else (2, runs)
        self.gaps, self.n = torch.zeros(shape, device=device), 0  # [mean gap, |log var ratio|] summed over calls
        self.before = {}
        self.handles = [h for m in self.bns for h in (m.register_forward_pre_hook(self.pre),
                                                      m.register_forward_hook(self.post))]

    @torch.no_grad()
    def pre(self, bn, inputs):
        self.before[bn] = bn.running_mean.clone(), bn.running_var.clone()

    @torch.no_grad()
    def post(self, bn, inputs, output):
        old_mean, old_var = self.before.pop(bn)
        x = inputs[0]  # (B, C, H, W)
        n = x.numel() // x.shape[1]  # values per channel
        m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        mean = (bn.running_mean - (1 - m) * old_mean) / m  # running = (1 - m) * running + m * batch
        var = (bn.running_var - (1 - m) * old_var) / m * ((n - 1) / n)  # BN's running var is unbiased
        std = (old_var + bn.eps).sqrt()
        self.gaps[0] += self.per_run((mean - old_mean).abs() / std)  # in running-std units
        self.gaps[1] += self.per_run((var + bn.eps).div(old_var + bn.eps).log().abs())  # |log ratio|
        self.n += 1

    def per_run(self, channels):
        """The mean over each run's channels."""
        return channels.mean() if self.runs == 1 else channels.view(self.runs, -1).mean(1)

    def close_runs(self) -> list:
        """Remove the hooks; [{'bn_mean_gap', 'bn_var_logratio'}] with one entry per run."""
        for h in self.handles:
            h.remove()
        gaps = self.gaps / max(self.n, 1)
        pairs = [gaps.tolist()] if self.runs == 1 else gaps.T.tolist()
        return [{"bn_mean_gap": mean_gap, "bn_var_logratio": var_gap} for mean_gap, var_gap in pairs]

    def close(self) -> dict:
        """Remove the hooks; {'bn_mean_gap', 'bn_var_logratio'} of a plain model."""
        return self.close_runs()[0]


def checkpoint(model_state: dict, opt_state: dict, gen, history, step) -> dict:
    """A run's checkpoint: what resuming it needs (restore), whichever engine wrote it."""
    return {"model": model_state, "opt": opt_state, "gen": gen.get_state(), "cpu_rng": torch.get_rng_state(),
            "history": history, "step": step}


def checkpoint_state(model, opt, gen, history, step) -> dict:
    return checkpoint(model.state_dict(), opt.state_dict(), gen, history, step)


def compile_mode(cfg: RunConfig, device: torch.device) -> str:
    """The torch.compile mode of a run. auto: on CUDA 'reduce-overhead', which captures the compiled forward,
    backward and Adam step in CUDA graphs (small batches are bound by kernel-launch overhead there); on a CPU
    'none', since compilation costs seconds per run for no reliable gain (reports/bench/cpu.md, rows
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


def train_step(model, opt, forward, opt_step, xb, yb, amp, graphs: bool) -> tuple:
    """One optimizer step on a batch; (logits, loss)."""
    if graphs:
        torch.compiler.cudagraph_mark_step_begin()
    opt.zero_grad(set_to_none=True)
    with amp():
        out = forward(xb)
        loss = F.cross_entropy(at_least_fp32(out), yb)
    loss.backward()
    opt_step()
    return out, loss


def guarded_step(model, opt, forward, opt_step, xb, yb, amp, graphs: bool, probe=None) -> tuple:
    """A compiled step that falls back to the eager one: compilation (at the first call) or CUDA-graph capture (by
    the third) that raises must not fail the run. The weights and optimizer state are restored and the step is
    taken eagerly; (logits, loss, the reason, or None when the compiled step worked)."""
    saved = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    probed = (probe.gaps.clone(), probe.n) if probe else None  # its hooks may have seen the failed forward
    try:
        return (*train_step(model, opt, forward, opt_step, xb, yb, amp, graphs), None)
    except Exception as e:  # inductor, a missing compiler, graph capture, ...
        reason = f"{type(e).__name__}: {' '.join(str(e).split())}"[:300]
        print(f"compiled step failed ({reason}): continuing with the eager step", file=sys.stderr, flush=True)
        model.load_state_dict(saved[0])
        opt.load_state_dict(saved[1])
        if probe:
            probe.gaps, probe.n = probed
        return (*train_step(model, opt, model, opt.step, xb, yb, amp, False), reason)


@dataclass
class Sums:
    """What an epoch accumulates on the device, for one run or (a leading run dimension) for each run of a stack:
    summed batch losses, correct predictions, L1 norms of the conv weight gradients; counted on the host: images
    seen and batches; the BN probe's statistics."""
    loss: torch.Tensor
    correct: torch.Tensor
    grad_l1: torch.Tensor
    seen: int = 0
    batches: int = 0
    bn: dict = None

    @classmethod
    def zeros(cls, layers: int, device, runs: tuple = ()) -> "Sums":
        return cls(torch.zeros(runs, device=device), torch.zeros(runs, device=device, dtype=torch.long),
                   torch.zeros(*runs, layers, device=device))


@dataclass
class Run:
    """A run's training state between epochs: what setup() builds and train_epoch() advances."""
    cfg: RunConfig
    device: torch.device
    model: nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator  # the data order
    xs: dict  # split -> (images, labels) on the device
    diag_idx: torch.Tensor  # test images of the final BN diagnostics
    total: int  # optimizer steps of the whole run
    history: list
    step: int
    mode: str  # compile mode
    forward: object
    opt_step: object
    graphs: bool  # CUDA graphs: each step replays them anew
    guarded: int = 0  # compiled steps that have worked so far
    fallback: str = None  # why the compiled step was given up, if it was

    def amp(self):
        return autocast(self.cfg, self.device)


def start(cfg: RunConfig) -> torch.device:
    """The device of a run, with its process-wide settings applied."""
    device = pick_device(cfg.device)
    configure(device)
    torch.set_num_threads(cfg.threads)  # a run parameter: reduction orders, and so the numbers, depend on it
    return device


def seeded_model(cfg: RunConfig, device) -> nn.Module:
    """The run's network, initialised from its seed."""
    torch.manual_seed(cfg.seed)
    model = Network(cfg.norm, cfg.num_blocks, cfg.width, cfg.groups, cfg.activation).to(device)
    return model.to(memory_format=torch.channels_last)


def diagnostic_images(cfg: RunConfig, splits: dict, device) -> torch.Tensor:
    """Indices of the test images that the final BN diagnostics evaluate: a stratified subset, shuffled."""
    diag_idx = datalib.stratified(splits["test"][1], DIAG_TEST, cfg.subset_seed)  # sorted, so class-ordered
    # on the image-folder copy: shuffle it, or each batch-statistics batch would hold a single class
    return torch.from_numpy(np.random.default_rng(cfg.subset_seed).permutation(diag_idx)).to(device)


def restore(model, opt, gen, resume: dict) -> tuple:
    """Load a checkpoint (checkpoint_state) into the model, optimizer and generator; (history, step)."""
    model.load_state_dict(resume["model"])
    opt.load_state_dict(resume["opt"])
    gen.set_state(resume["gen"])
    torch.set_rng_state(resume["cpu_rng"])
    return resume["history"], resume["step"]


def setup(cfg: RunConfig, splits: dict, resume: dict = None) -> Run:
    """A run ready for its first (or, resumed, its next) epoch."""
    device = start(cfg)
    model = seeded_model(cfg, device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.effective_lr, fused=True)  # one kernel per step
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    xs = {k: to_device(*v, device) for k, v in splits.items()}
    total = total_steps(cfg, len(xs["train"][0]))
    diag_idx = diagnostic_images(cfg, splits, device)
    history, step = restore(model, opt, gen, resume) if resume else ([], 0)
    mode = compile_mode(cfg, device)
    forward, opt_step = compiled(model, opt, mode)
    graphs = mode == "reduce-overhead" and device.type == "cuda"
    return Run(cfg, device, model, opt, gen, xs, diag_idx, total, history, step, mode, forward, opt_step, graphs)


def take_step(r: Run, xb, yb, probe) -> tuple:
    """One optimizer step of a run, compiled where it may be; (logits, loss)."""
    # compiled code for the usual shape only: hooks need the eager module, and an odd-sized last batch would cost a
    # recompilation
    fwd = r.forward if not probe and len(xb) == r.cfg.batch_size else r.model
    if r.mode != "none" and not r.fallback and r.guarded < GUARDED_STEPS:  # until compiled steps have worked
        r.guarded += fwd is r.forward
        out, loss, r.fallback = guarded_step(r.model, r.opt, fwd, r.opt_step, xb, yb, r.amp, r.graphs, probe)
        if r.fallback:
            r.forward, r.opt_step, r.graphs = r.model, r.opt.step, False
        return out, loss
    return train_step(r.model, r.opt, fwd, r.opt_step, xb, yb, r.amp, r.graphs)


def train_epoch(r: Run) -> Sums:
    """One pass over a fresh permutation of the training set (or up to the run's last step)."""
    cfg, (x, y) = r.cfg, r.xs["train"]
    r.model.train()
    probe = BNProbe(r.model) if cfg.diagnostics and cfg.norm == "batch" else None
    n = len(x)
    perm = torch.randperm(n, device=r.device, generator=r.gen)  # reshuffle every epoch
    grads = [c.weight for c in r.model.conv_layers()]
    sums = Sums.zeros(len(grads), r.device)
    for i in range(0, n, cfg.batch_size):
        if r.step >= r.total:
            break
        if probe and sums.batches == DIAG_BATCHES:
            sums.bn, probe = probe.close(), None
        idx = perm[i:i + cfg.batch_size]
        xb, yb = x[idx], y[idx]  # (B, 3, 32, 32), still channels_last
        out, loss = take_step(r, xb, yb, probe)
        if cfg.diagnostics:  # one fused L1 reduction over the conv weight gradients
            sums.grad_l1 += torch.stack(torch._foreach_norm([w.grad for w in grads], 1))
        sums.loss += loss.detach()
        sums.correct += (out.argmax(1) == yb).sum()
        sums.seen, sums.batches, r.step = sums.seen + len(idx), sums.batches + 1, r.step + 1
    if probe:
        sums.bn = probe.close()
    return sums


def bn_diagnostics(cfg: RunConfig, model, xs: dict, diag_idx, test_acc: float, amp) -> dict:
    """The final model's BN accuracy on the diagnostic test images with running, batch and precise statistics."""
    dx, dy = xs["test"][0][diag_idx], xs["test"][1][diag_idx]
    whole = len(diag_idx) == len(xs["test"][0])  # the subset is the test set: its accuracy is known
    return {"diag_running_acc": test_acc if whole else evaluate(model, dx, dy, cfg.eval_batch, amp)[1],
            "diag_batchstat_acc": batch_stat_accuracy(model, dx, dy, cfg.batch_size),
            "diag_precise_acc": precise_bn_accuracy(model, xs["train"][0], dx, dy, cfg.eval_batch, cfg.seed, amp)}


def epoch_record(cfg: RunConfig, model, xs: dict, sums: Sums, epoch: int, step: int, amp, diag_idx=None) -> dict:
    """An epoch's history entry (timings aside): training loss and accuracy from the sums, evaluation, diagnostics;
    diag_idx: the BN diagnostics' test images, given after the run's last epoch."""
    train_loss = sums.loss.item() / sums.batches  # mean of batch losses, as the original
    if not math.isfinite(train_loss):
        raise FloatingPointError(f"training diverged: train loss {train_loss} in epoch {epoch}")
    rec = {"epoch": epoch, "step": step, "train_loss": train_loss,
           "train_acc": 100.0 * sums.correct.item() / sums.seen}
    rec["test_loss"], rec["test_acc"] = evaluate(model, *xs["test"], cfg.eval_batch, amp)
    if "val" in xs:
        rec["val_loss"], rec["val_acc"] = evaluate(model, *xs["val"], cfg.eval_batch, amp)
    if cfg.diagnostics:
        numel = torch.tensor([c.weight.numel() for c in model.conv_layers()], device=sums.grad_l1.device,
                             dtype=torch.float32)
        rec["grad_abs"] = (sums.grad_l1 / numel / sums.batches).tolist()  # mean |grad| per conv layer, stem first
        if cfg.norm == "batch":
            rec.update(sums.bn)
            if diag_idx is not None:  # BN with batch vs running statistics, final model
                rec.update(bn_diagnostics(cfg, model, xs, diag_idx, rec["test_acc"], amp))
    return rec


def train(cfg: RunConfig, splits: dict, resume: dict = None, on_epoch=None) -> dict:
    """Train one run; returns {'history': [per-epoch dict], 'steps': n}. on_epoch(state) after every epoch."""
    r = setup(cfg, splits, resume)
    while r.step < r.total:
        t0 = time.perf_counter()
        sums = train_epoch(r)
        t1 = time.perf_counter()
        rec = epoch_record(cfg, r.model, r.xs, sums, len(r.history) + 1, r.step, r.amp,
                           r.diag_idx if r.step >= r.total else None)
        rec["train_seconds"], rec["eval_seconds"] = t1 - t0, time.perf_counter() - t1
        r.history.append(rec)
        if on_epoch:
            on_epoch(checkpoint_state(r.model, r.opt, r.gen, r.history, r.step))
    return {"history": r.history, "steps": r.step, "model": r.model, "compile": r.mode, "compile_fallback": r.fallback}
