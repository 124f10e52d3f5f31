"""Training engine: data resident on the device as one tensor, batches by indexing a seeded permutation."""
import math
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data as datalib
from .config import RunConfig
from .model import Network

DIAG_BATCHES = 16  # training batches per epoch whose BN statistics are compared with the running ones
DIAG_TEST = 1000  # test images evaluated with batch statistics (stratified subset)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def to_device(x: np.ndarray, y: np.ndarray, device) -> tuple:
    """uint8 (N, 32, 32, 3) -> normalised float (N, 3, 32, 32) in channels_last, as the seed: (x/255 - 0.5)/0.5."""
    x = torch.from_numpy(x).to(device).permute(0, 3, 1, 2)  # a channels_last view, no copy
    return x.float().div_(127.5).sub_(1.0), torch.from_numpy(y).to(device)


def autocast(cfg: RunConfig, device):
    return torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext()


@torch.no_grad()
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
    correct = sum((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item() for i in range(0, len(x), batch))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    return 100.0 * correct / len(x)


class BNProbe:
    """Forward hooks that measure how far a training batch's BN statistics are from the running statistics."""

    def __init__(self, model):
        self.bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        self.mean_gap, self.var_gap, self.n = 0.0, 0.0, 0
        self.handles = [m.register_forward_pre_hook(self.hook) for m in self.bns]

    def hook(self, bn, inputs):
        x = inputs[0].detach().float()  # (B, C, H, W)
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
        std = (bn.running_var + bn.eps).sqrt()
        self.mean_gap += ((mean - bn.running_mean).abs() / std).mean().item()  # in running-std units
        self.var_gap += (var + bn.eps).div(bn.running_var + bn.eps).log().abs().mean().item()  # |log ratio|
        self.n += 1

    def close(self) -> dict:
        for h in self.handles:
            h.remove()
        n = max(self.n, 1)
        return {"bn_mean_gap": self.mean_gap / n, "bn_var_logratio": self.var_gap / n}


def checkpoint_state(model, opt, gen, history, step) -> dict:
    return {"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
            "cpu_rng": torch.get_rng_state(), "history": history, "step": step}


def train(cfg: RunConfig, splits: dict, resume: dict = None, on_epoch=None) -> dict:
    """Train one run; returns {'history': [per-epoch dict], 'steps': n}. on_epoch(state) after every epoch."""
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    amp = lambda: autocast(cfg, device)  # noqa: E731
    torch.manual_seed(cfg.seed)
    model = Network(cfg.norm, cfg.num_blocks, cfg.width, cfg.groups, cfg.activation).to(device)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.effective_lr)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    xs = {k: to_device(*v, device) for k, v in splits.items()}
    (x, y), n = xs["train"], len(xs["train"][0])
    per_epoch = math.ceil(n / cfg.batch_size)  # the last, partial batch is kept, as in the seed's DataLoader
    total = cfg.steps or cfg.epochs * per_epoch
    diag_idx = torch.from_numpy(datalib.stratified(splits["test"][1], DIAG_TEST, cfg.subset_seed)).to(device)
    has_bn = cfg.norm == "batch"
    history, step = [], 0
    if resume:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["opt"])
        gen.set_state(resume["gen"])
        torch.set_rng_state(resume["cpu_rng"])
        history, step = resume["history"], resume["step"]
    convs = [c.weight for c in model.conv_layers()]
    while step < total:
        t0 = time.perf_counter()
        model.train()
        probe = BNProbe(model) if cfg.diagnostics and has_bn else None
        perm = torch.randperm(n, device=device, generator=gen)  # reshuffle every epoch
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        grad_abs = torch.zeros(len(convs), device=device)
        seen = batches = 0
        for i in range(0, n, cfg.batch_size):
            if step >= total:
                break
            if probe and batches == DIAG_BATCHES:
                probe_stats, probe = probe.close(), None
            idx = perm[i:i + cfg.batch_size]
            xb, yb = x[idx], y[idx]
            with amp():
                out = model(xb)
                loss = F.cross_entropy(out.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.diagnostics:
                grad_abs += torch.stack([w.grad.abs().mean() for w in convs])
            opt.step()
            loss_sum += loss.detach()
            correct += (out.argmax(1) == yb).sum()
            seen, batches, step = seen + len(idx), batches + 1, step + 1
        if probe:
            probe_stats = probe.close()
        t1 = time.perf_counter()
        train_loss = loss_sum.item() / batches  # mean of batch losses, as the seed
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"training diverged: train loss {train_loss} in epoch {len(history) + 1}")
        rec = {"epoch": len(history) + 1, "step": step, "train_loss": train_loss,
               "train_acc": 100.0 * correct.item() / seen}
        rec["test_loss"], rec["test_acc"] = evaluate(model, *xs["test"], cfg.eval_batch, amp)
        if "val" in xs:
            rec["val_loss"], rec["val_acc"] = evaluate(model, *xs["val"], cfg.eval_batch, amp)
        if cfg.diagnostics:
            rec["grad_abs"] = (grad_abs / batches).tolist()  # per conv layer, stem first
            if has_bn:
                rec.update(probe_stats)
        if cfg.diagnostics and has_bn and step >= total:  # BN with batch vs running statistics, final model
            dx, dy = xs["test"][0][diag_idx], xs["test"][1][diag_idx]
            rec["diag_running_acc"] = evaluate(model, dx, dy, cfg.eval_batch, amp)[1]
            rec["diag_batchstat_acc"] = batch_stat_accuracy(model, dx, dy, cfg.batch_size)
        rec["train_seconds"], rec["eval_seconds"] = t1 - t0, time.perf_counter() - t1
        history.append(rec)
        if on_epoch:
            on_epoch(checkpoint_state(model, opt, gen, history, step))
    return {"history": history, "steps": step, "model": model}

