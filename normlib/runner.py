"""One run end to end: validate parameters, load data, train with checkpoints (every epoch, and within epochs every
`checkpoint_every` seconds), write the record."""
import sys
import time
from contextlib import nullcontext

from . import config, locks, processes, provenance, records
from . import data as datalib
from .checkpoints import Checkpoint, checkpoint_path  # noqa: F401 (checkpoint_path: where a run's checkpoint lies)
from .config import RunConfig, total_steps
from .device import pick
from .train import train


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
    stacked = {"stacked_with": result["stacked_with"]} if "stacked_with" in result else {}  # set by normlib.stacked.train_stack
    return {"schema": records.SCHEMA, "status": "ok", "error": None, "params": cfg.dict(),
            "effective_lr": cfg.effective_lr, "steps": result["steps"],
            "images": {k: len(v[1]) for k, v in parts.items()},
            "final_acc": hist[-1]["test_acc"], "best_acc": max(h["test_acc"] for h in hist), "history": hist,
            "diverged": bool(records.diverged(hist)),  # the report judges every record by the same rule
            "provenance": {**provenance.provenance(pick(cfg.device), data), "started": checkpoint.started,
                           "ended": records.now(), "wall_seconds": checkpoint.wall_seconds(),
                           "resumed_at_epoch": checkpoint.resumed_at, "resumed_at_step": checkpoint.resumed_step,
                           "compile": result["compile"],
                           "compile_fallback": result["compile_fallback"], **stacked}}


def run(params) -> dict:
    """Validate, load data, train (resuming from the run's checkpoint if any) and return the run record.

    With `out` set the run holds a lock on it for its whole length (a second process with the same `out` gets
    locks.Locked), returns the existing record without training when `out` already holds a complete record of the
    same parameters, saves `<out>.ckpt.pt` after every epoch and resumes from it (the same record, bit for bit on
    the CPU, timings aside), and writes the record atomically, then removes the checkpoint. A run of the stacked
    engine trains with its stack's other runs (normlib.stackrun.run_stack), or alone as a stack of one."""
    cfg = params if isinstance(params, RunConfig) else config.validate(dict(params))
    processes.keep_niceness()  # a kernel runs in a session of its own: keep the sweep's nice for it
    if cfg.engine == "stacked" and not records.is_done(records.read(cfg.out) if cfg.out else None, cfg.dict()):
        from . import stackrun  # trains the run's stack (the sweep names its runs), or the run as a stack of one
        stack = stackrun.stack_of(cfg)
        return stackrun.run_stack(stack)[[p.get("out", "") for p in stack].index(cfg.out)]
    started, t0 = records.now(), time.perf_counter()
    data, parts = load_parts(cfg)
    with locks.run_lock(cfg.out) if cfg.out else nullcontext():
        existing = records.read(cfg.out) if cfg.out else None
        if records.is_done(existing, cfg.dict()):
            print(f"out={cfg.out!r} already holds a complete record of these parameters: not training again "
                  f"(delete it to rerun)", file=sys.stderr)
            return existing
        checkpoint = Checkpoint(cfg, started, t0, len(parts["train"][1]))
        total = total_steps(cfg, len(parts["train"][1]))
        on_epoch = lambda state: end_of_epoch(state, total, checkpoint)  # noqa: E731
        print(f"epoch {checkpoint.resumed_at}: step {checkpoint.resumed_step}/{total}, training starts",
              flush=True)  # the sweep's bar
        result = train(cfg, parts, checkpoint.resume, on_epoch, checkpoint)
        rec = record(cfg, data, parts, result, checkpoint)
        if cfg.out:
            records.write_json(cfg.out, rec)
            checkpoint.path.unlink(missing_ok=True)
    return rec
