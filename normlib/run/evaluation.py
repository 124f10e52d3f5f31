"""Evaluation and diagnostics of both engines: a model's loss and accuracy on a split, the BN probe (batch vs running
statistics while training), BN with batch and precise statistics after training, the sums an epoch accumulates and
the epoch's record that they become. Each run of a stack is evaluated here as a plain Network, so the records of both
engines are made by the same code."""
import copy
import math
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import norms
from ..config import PRECISE_BATCH, PRECISE_IMAGES, RunConfig


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



def bn_diagnostics(cfg: RunConfig, model, xs: dict, diag_idx, test_acc: float, amp) -> dict:
    """The final model's BN accuracy on the diagnostic test images with running, batch and precise statistics, and
    with precise statistics on the whole test set (precise_test_acc: the subset's interval is about +-3 points)."""
    dx, dy = xs["test"][0][diag_idx], xs["test"][1][diag_idx]
    whole = len(diag_idx) == len(xs["test"][0])  # the subset is the test set: its accuracy is known
    precise = lambda x, y: precise_bn_accuracy(model, xs["train"][0], x, y, cfg.eval_batch, cfg.seed, amp)  # noqa: E731
    diag = {"diag_running_acc": test_acc if whole else evaluate(model, dx, dy, cfg.eval_batch, amp)[1],
            "diag_batchstat_acc": batch_stat_accuracy(model, dx, dy, cfg.batch_size),
            "diag_precise_acc": precise(dx, dy)}
    return {**diag, "precise_test_acc": diag["diag_precise_acc"] if whole else precise(*xs["test"])}


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
        if norms.running_stats(cfg.norm):
            rec.update(sums.bn)
            if diag_idx is not None:  # BN with batch vs running statistics, final model
                rec.update(bn_diagnostics(cfg, model, xs, diag_idx, rec["test_acc"], amp))
    return rec


