"""One run end to end: validate parameters, load data, train with a checkpoint per epoch, write the record."""
import io
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from . import config, locks, provenance, records
from . import data as datalib
from .config import RunConfig
from .train import pick_device, total_steps, train


def checkpoint_path(out) -> Path:
    return Path(f"{out}.ckpt.pt")


def load_checkpoint(ckpt: Path, cfg: RunConfig):
    """The checkpoint of this run, or None (with a note on stderr) when there is none or it cannot be used."""
    if not ckpt.exists():
        return None
    try:
        state = torch.load(ckpt, weights_only=True)  # tensors and plain values only: loading runs no code
    except Exception as e:  # truncated or corrupt file
        print(f"checkpoint {ckpt} is unreadable ({type(e).__name__}): starting the run over", file=sys.stderr)
        return None
    if state.get("params") != cfg.dict():
        print(f"checkpoint {ckpt} was written with other parameters: starting the run over", file=sys.stderr)
        return None
    return state


class Checkpoint:
    """A run's checkpoint `<out>.ckpt.pt` (none without `out`): the state the run resumes from, with its start and the
    wall time of its interrupted attempts, and a save after every epoch."""

    def __init__(self, cfg: RunConfig, started: str, t0: float):
        self.cfg, self.t0 = cfg, t0
        self.path = checkpoint_path(cfg.out) if cfg.out else None
        if self.path:
            self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)  # half a save by a killed process
        self.resume = load_checkpoint(self.path, cfg) if self.path else None
        self.started = self.resume.get("started", started) if self.resume else started
        self.before = self.resume.get("wall_seconds", 0.0) if self.resume else 0.0
        self.resumed_at = len(self.resume["history"]) if self.resume else 0  # train() extends that list in place

    def restart(self, started: str) -> None:
        """Forget the checkpoint's state: the run starts over (a stack whose runs' checkpoints do not agree)."""
        self.resume, self.started, self.before, self.resumed_at = None, started, 0.0, 0

    def wall_seconds(self) -> float:
        return self.before + time.perf_counter() - self.t0

    def save(self, state: dict) -> None:
        if self.path:
            tmp, buffer = self.path.with_name(self.path.name + ".tmp"), io.BytesIO()
            torch.save({**state, "params": self.cfg.dict(), "started": self.started,
                        "wall_seconds": self.wall_seconds()}, buffer)  # to a file, a full disk was torch's opaque
            try:  # "[enforce fail at inline_container.cc]"; written here it is an OSError naming the file
                tmp.write_bytes(buffer.getbuffer())
            except OSError as e:
                tmp.unlink(missing_ok=True)
                raise records.named(e, tmp) from None
            os.replace(tmp, self.path)  # atomic: a kill leaves the previous checkpoint or this one


def load_parts(cfg: RunConfig) -> tuple:
    """(data, its train/test/val parts) of a run; ParameterError when the run does not fit the images there are."""
    try:
        data = datalib.load(cfg.data)
    except (FileNotFoundError, ValueError) as e:  # data.py's own messages name the field and what is allowed
        raise config.ParameterError(" ".join(str(e).split())) from None
    errors = config.check_combination(cfg, len(data.train_y), len(data.test_y))  # against the images there are
    if errors:
        raise config.ParameterError(f"data={data.source!r}: " + "; ".join(errors))
    return data, datalib.splits(data, cfg.train_size, cfg.test_size, cfg.val_size, cfg.subset_seed)


def end_of_epoch(state: dict, total: int, checkpoint: Checkpoint) -> None:
    """After each epoch: one line (normlib.execute.EPOCH_LINE reads it for the sweep's progress), then a save."""
    h = state["history"][-1]
    print(f"epoch {h['epoch']}: step {h['step']}/{total}, train loss {h['train_loss']:.4f}, test accuracy "
          f"{h['test_acc']:.2f}% ({h['train_seconds'] + h['eval_seconds']:.0f} s)", flush=True)
    checkpoint.save(state)


def record(cfg: RunConfig, data, parts: dict, result: dict, checkpoint: Checkpoint) -> dict:
    """The record of a finished run."""
    hist = result["history"]
    stacked = {"stacked_with": result["stacked_with"]} if "stacked_with" in result else {}  # normlib.stackrun
    return {"schema": records.SCHEMA, "status": "ok", "error": None, "params": cfg.dict(),
            "effective_lr": cfg.effective_lr, "steps": result["steps"],
            "images": {k: len(v[1]) for k, v in parts.items()},
            "final_acc": hist[-1]["test_acc"], "best_acc": max(h["test_acc"] for h in hist), "history": hist,
            "diverged": bool(records.diverged(hist)),  # the report judges every record by the same rule
            "provenance": {**provenance.provenance(pick_device(cfg.device), data), "started": checkpoint.started,
                           "ended": records.now(), "wall_seconds": checkpoint.wall_seconds(),
                           "resumed_at_epoch": checkpoint.resumed_at, "compile": result["compile"],
                           "compile_fallback": result["compile_fallback"], **stacked}}


def run(params) -> dict:
    """Validate, load data, train (resuming from the run's checkpoint if any) and return the run record.

    With `out` set the run holds a lock on it for its whole length (a second process with the same `out` gets
    locks.Locked), returns the existing record without training when `out` already holds a complete record of the
    same parameters, saves `<out>.ckpt.pt` after every epoch and resumes from it (the same record, bit for bit on
    the CPU, timings aside), and writes the record atomically, then removes the checkpoint."""
    cfg = params if isinstance(params, RunConfig) else config.validate(dict(params))
    started, t0 = records.now(), time.perf_counter()
    data, parts = load_parts(cfg)
    with locks.run_lock(cfg.out) if cfg.out else nullcontext():
        existing = records.read(cfg.out) if cfg.out else None
        if records.is_done(existing, cfg.dict()):
            print(f"out={cfg.out!r} already holds a complete record of these parameters: not training again "
                  f"(delete it to rerun)", file=sys.stderr)
            return existing
        checkpoint = Checkpoint(cfg, started, t0)
        total = total_steps(cfg, len(parts["train"][1]))
        on_epoch = lambda state: end_of_epoch(state, total, checkpoint)  # noqa: E731
        if cfg.engine == "stacked":  # a stack of one: the stacked engine's step and CUDA graphs for a lone run
            from .stacked import train_stack
            resumes = [checkpoint.resume] if checkpoint.resume else None
            result = train_stack([cfg], parts, resumes, lambda k, state: on_epoch(state))[0]
        else:
            result = train(cfg, parts, checkpoint.resume, on_epoch)
        rec = record(cfg, data, parts, result, checkpoint)
        if cfg.out:
            records.write_json(cfg.out, rec)
            checkpoint.path.unlink(missing_ok=True)
    return rec
