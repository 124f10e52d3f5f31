"""One run end to end: validate parameters, load data, train with a checkpoint per epoch, write the record."""
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


def load_data(cfg: RunConfig) -> tuple:
    """(the data, the run's splits of it), or ParameterError naming what does not fit."""
    try:
        data = datalib.load(cfg.data)
    except (FileNotFoundError, ValueError) as e:  # data.py's own messages name the field and what is allowed
        raise config.ParameterError(" ".join(str(e).split())) from None
    errors = config.check_combination(cfg, len(data.train_y), len(data.test_y))  # against the images there are
    if errors:
        raise config.ParameterError(f"data={data.source!r}: " + "; ".join(errors))
    return data, datalib.splits(data, cfg.train_size, cfg.test_size, cfg.val_size, cfg.subset_seed)


def save_checkpoint(ckpt: Path, state: dict, cfg: RunConfig, started: str, wall_seconds: float) -> None:
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    torch.save({**state, "params": cfg.dict(), "started": started, "wall_seconds": wall_seconds}, tmp)
    os.replace(tmp, ckpt)  # atomic: a kill leaves the previous checkpoint or this one


def make_record(cfg: RunConfig, result: dict, parts: dict, data, started: str, wall_seconds: float,
                resumed_at: int) -> dict:
    """The record of a finished run from what the engine returned (normlib.train.train or normlib.stacked)."""
    hist = result["history"]
    stacked = {"stacked_with": result["stacked_with"]} if "stacked_with" in result else {}
    return {"schema": records.SCHEMA, "status": "ok", "error": None, "params": cfg.dict(),
            "effective_lr": cfg.effective_lr, "steps": result["steps"],
            "images": {k: len(v[1]) for k, v in parts.items()},
            "final_acc": hist[-1]["test_acc"], "best_acc": max(h["test_acc"] for h in hist), "history": hist,
            "provenance": {**provenance.provenance(pick_device(cfg.device), data), "started": started,
                           "ended": records.now(), "wall_seconds": wall_seconds, "resumed_at_epoch": resumed_at,
                           "compile": result["compile"], "compile_fallback": result["compile_fallback"], **stacked}}


def run(params) -> dict:
    """Validate, load data, train (resuming from the run's checkpoint if any) and return the run record.

    With `out` set the run holds a lock on it for its whole length (a second process with the same `out` gets
    locks.Locked), returns the existing record without training when `out` already holds a complete record of the
    same parameters, saves `<out>.ckpt.pt` after every epoch and resumes from it (the same record, bit for bit on
    the CPU, timings aside), and writes the record atomically, then removes the checkpoint."""
    cfg = params if isinstance(params, RunConfig) else config.validate(dict(params))
    started, t0 = records.now(), time.perf_counter()
    data, parts = load_data(cfg)
    ckpt = checkpoint_path(cfg.out) if cfg.out else None
    with locks.run_lock(cfg.out) if cfg.out else nullcontext():
        if cfg.out:
            existing = records.read(cfg.out)
            if records.is_done(existing, cfg.dict()):
                print(f"out={cfg.out!r} already holds a complete record of these parameters: not training again "
                      f"(delete it to rerun)", file=sys.stderr)
                return existing
            ckpt.with_name(ckpt.name + ".tmp").unlink(missing_ok=True)  # half a save by a killed process
        resume = load_checkpoint(ckpt, cfg) if ckpt else None
        if resume:
            started = resume.get("started", started)
        before = resume.get("wall_seconds", 0.0) if resume else 0.0  # wall time of the interrupted attempts
        resumed_at = len(resume["history"]) if resume else 0  # train() extends that list in place

        total = total_steps(cfg, len(parts["train"][1]))

        def on_epoch(state):
            h = state["history"][-1]
            print(f"epoch {h['epoch']}: step {h['step']}/{total}, train loss {h['train_loss']:.4f}, test accuracy "
                  f"{h['test_acc']:.2f}% ({h['train_seconds'] + h['eval_seconds']:.0f} s)", flush=True)
            if ckpt:
                save_checkpoint(ckpt, state, cfg, started, before + time.perf_counter() - t0)

        if cfg.engine == "stacked":  # a stack of one: the stacked engine's step and CUDA graphs for a lone run
            from .stacked import train_stack
            result = train_stack([cfg], parts, [resume] if resume else None, lambda k, state: on_epoch(state))[0]
        else:
            result = train(cfg, parts, resume, on_epoch)
        rec = make_record(cfg, result, parts, data, started, before + time.perf_counter() - t0, resumed_at)
        if cfg.out:
            records.write_json(cfg.out, rec)
            ckpt.unlink(missing_ok=True)
    return rec
