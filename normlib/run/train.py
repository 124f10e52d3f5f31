"""Training engines: the skeleton both engines share (Engine: K runs' data, device, generators and histories, and
the epoch loop that records, checkpoints and reports each run), and the per-run engine (Single: one network, compiled
where it pays). The stacked engine (normlib.run.stacked) is the other Engine.

Data lives on the device as one tensor, batches by indexing a seeded permutation; no DataLoader, fused Adam,
channels_last activations, freed memory reused (normlib.run.device), diagnostics without host syncs in the loop.
Speed is measured by `python -m bench.bench` against the original's pipeline; its figures: reports/bench/<device>.md.
"""
import copy
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import checkpoints
from .. import norms
from . import data as datalib
from . import device as devices
from ..config import DIAG_BATCHES, DIAG_TEST, RunConfig, total_steps
from .device import compile_mode, compiled
from .evaluation import BNProbe, Sums, epoch_record
from .model import network

GUARDED_STEPS = 3  # first compiled steps that fall back to eager on an error (compilation, CUDA-graph capture)


def to_device(x: np.ndarray, y: np.ndarray, device) -> tuple:
    """uint8 (N, 32, 32, 3) -> normalised float (N, 3, 32, 32) in channels_last, as the original: (x/255 - 0.5)/0.5;
    float32, or torch's default dtype where a check sets another (normlib.run.device.default_dtype)."""
    x = torch.from_numpy(x).to(device).permute(0, 3, 1, 2)  # a channels_last view, no copy
    return x.to(torch.get_default_dtype()).div_(127.5).sub_(1.0), torch.from_numpy(y).to(device)


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """bf16 logits in fp32 for the loss; fp32 (the runs) and fp64 (the stacked engine's exactness test) as they are."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def seeded_model(cfg: RunConfig, device) -> nn.Module:
    """The run's network, initialised from its seed."""
    torch.manual_seed(cfg.seed)
    model = network(cfg).to(device)
    return model.to(memory_format=torch.channels_last)


def diagnostic_images(cfg: RunConfig, splits: dict, device) -> torch.Tensor:
    """Indices of the test images that the final BN diagnostics evaluate: a stratified subset, shuffled."""
    diag_idx = datalib.stratified(splits["test"][1], DIAG_TEST, cfg.subset_seed)  # sorted, so class-ordered
    # on the image-folder copy: shuffle it, or each batch-statistics batch would hold a single class
    return torch.from_numpy(np.random.default_rng(cfg.subset_seed).permutation(diag_idx)).to(device)


class Engine:
    """What both engines hold for K runs of one cell (K = 1 for the per-run engine): the device with its settings,
    each run's network initialised from its seed and its generator (the data order), the data on the device, the
    test images of the final BN diagnostics, the histories and the step count. A subclass trains them: epoch() ->
    each run's Sums, calling stepped() after each step; run_model(k) -> run k as a plain Network; checkpoint(k) -> run
    k's checkpoint. `progress` (normlib.store.progress.Writer, or None) hears of the start, the steps and the epochs."""

    def __init__(self, cfgs: list, splits: dict):
        cfg, self.cfgs, self.runs = cfgs[0], cfgs, len(cfgs)
        self.device = device = devices.start(cfg)
        self.nets = [seeded_model(c, device) for c in cfgs]  # each run's own initialisation
        self.gens = [torch.Generator(device=device).manual_seed(c.seed) for c in cfgs]
        self.xs = {k: to_device(*v, device) for k, v in splits.items()}
        self.total = total_steps(cfg, len(self.xs["train"][0]))  # optimizer steps of each run
        self.diag_idx = diagnostic_images(cfg, splits, device)
        self.histories, self.step_count = [[] for _ in cfgs], 0
        self.epoch_seconds = 0.0  # training seconds the current epoch had before a mid-epoch resume
        self.progress = None

    def amp(self):
        return devices.autocast(self.cfgs[0], self.device)

    def train(self, on_epoch=None) -> None:
        """The epoch loop of both engines: train every run for an epoch, then evaluate, diagnose and record each run
        as a plain Network; on_epoch(k, run k's checkpoint) after every epoch, then a progress line."""
        if self.progress:
            self.progress.start(len(self.histories[0]), self.step_count)
        while self.step_count < self.total:
            self.epoch_t0 = t0 = time.perf_counter() - self.epoch_seconds
            self.epoch_seconds = 0.0
            sums = self.epoch()
            t1 = time.perf_counter()
            final = self.step_count >= self.total
            for k, (cfg, history) in enumerate(zip(self.cfgs, self.histories)):
                t2 = time.perf_counter()
                rec = epoch_record(cfg, self.run_model(k), self.xs, sums[k], len(history) + 1, self.step_count,
                                   self.amp, self.diag_idx if final else None)
                # a stack's training time shared equally among its runs; each run's own evaluation time
                rec["train_seconds"], rec["eval_seconds"] = (t1 - t0) / self.runs, time.perf_counter() - t2
                history.append(rec)
            if on_epoch:
                for k in range(self.runs):
                    on_epoch(k, self.checkpoint(k))
            if self.progress:
                self.progress.epoch(len(self.histories[0]), self.step_count)

    def stepped(self) -> None:
        """After each step: a progress line within the epoch when one is due (a clock read otherwise)."""
        if self.progress:
            self.progress.step(len(self.histories[0]), self.step_count)


class Single(Engine):
    """The per-run engine: one run's training state, its step compiled where it may be. Within an epoch it saves a
    checkpoint whenever `saver.due()` (normlib.run.checkpoints.Checkpoint: every cfg.checkpoint_every seconds), with the
    epoch's position (its permutation, the batches done, its sums so far), and resumes from such a checkpoint bit
    for bit."""

    def __init__(self, cfg: RunConfig, splits: dict, resume: dict = None, saver=None):
        super().__init__([cfg], splits)
        self.cfg, self.model, self.gen, self.saver = cfg, self.nets[0], self.gens[0], saver
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.effective_lr, fused=True)  # one kernel a step
        self.partial = resume and resume.get("partial")  # the epoch in progress at a mid-epoch checkpoint
        if resume:
            self.histories[0], self.step_count = checkpoints.restore(self.model, self.opt, self.gen, resume)
        self.epoch_seconds = self.partial["train_seconds"] if self.partial else 0.0
        self.mode = compile_mode(cfg, self.device)
        self.forward, self.opt_step = compiled(self.model, self.opt, self.mode)
        self.graphs = devices.step_graphs(self.mode, self.device)  # CUDA graphs: each step replays them anew
        self.guarded = 0  # compiled steps that have worked so far
        self.fallback = None  # why the compiled step was given up, if it was

    def epoch(self) -> list:
        return [train_epoch(self)]

    def run_model(self, k: int):
        return self.model

    def checkpoint(self, k: int, partial: dict = None) -> dict:
        return checkpoints.state(self.model.state_dict(), self.opt.state_dict(), self.gen, self.histories[0],
                                 self.step_count, partial)

    def save_mid_epoch(self, perm, done: int, sums: Sums, probe) -> None:
        """A checkpoint within the epoch, when one is due: the permutation, the `done` images of it trained, and
        the sums so far (the BN probe's too, while it is open)."""
        if self.saver and self.saver.due() and self.step_count < self.total:
            seconds = time.perf_counter() - self.epoch_t0
            self.saver.save(self.checkpoint(0, checkpoints.partial(perm, done, sums, probe, seconds)))


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


def take_step(r: Single, xb, yb, probe) -> tuple:
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


def train_epoch(r: Single) -> Sums:
    """One pass over a fresh permutation of the training set (or up to the run's last step); from a mid-epoch
    checkpoint, the rest of its pass."""
    cfg, (x, y) = r.cfg, r.xs["train"]
    r.model.train()
    probe = BNProbe(r.model) if cfg.diagnostics and norms.running_stats(cfg.norm) else None
    n = len(x)
    grads = [c.weight for c in r.model.conv_layers()]
    if r.partial:  # the permutation drawn when the epoch began (the generator's state is the one after it)
        perm, start, sums, probe = checkpoints.continue_epoch(r.partial, probe, r.device)
        r.partial = None
    else:
        perm = torch.randperm(n, device=r.device, generator=r.gen)  # reshuffle every epoch
        start, sums = 0, Sums.zeros(len(grads), r.device)
    for i in range(start, n, cfg.batch_size):
        if r.step_count >= r.total:
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
        sums.seen, sums.batches, r.step_count = sums.seen + len(idx), sums.batches + 1, r.step_count + 1
        r.save_mid_epoch(perm, i + len(idx), sums, probe)
        r.stepped()
    if probe:
        sums.bn = probe.close()
    return sums


def train(cfg: RunConfig, splits: dict, resume: dict = None, on_epoch=None, saver=None, progress=None) -> dict:
    """Train one run; returns {'history': [per-epoch dict], 'steps': n}. on_epoch(state) after every epoch;
    saver.save(state) within an epoch whenever saver.due(); progress: see Engine."""
    r = Single(cfg, splits, resume, saver)
    r.progress = progress
    r.train(on_epoch and (lambda k, state: on_epoch(state)))
    return {"history": r.histories[0], "steps": r.step_count, "model": r.model, "compile": r.mode,
            "compile_fallback": r.fallback}
