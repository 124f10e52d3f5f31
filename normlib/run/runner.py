"""One run end to end: validate parameters, load data, train with checkpoints (every epoch, and within epochs every
`checkpoint_every` seconds) telling its progress (its `progress` file), write the record. A run of the stacked engine
trains with its stack (normlib.run.stackrun)."""
import sys
import time
from contextlib import nullcontext

from .. import config
from ..store import locks, processes, records
from . import stackrun
from .checkpoints import Checkpoint
from ..config import RunConfig, total_steps
from .lifecycle import end_of_epoch, load_parts, record, reporter
from .train import train


def run(params) -> dict:
    """Validate, load data, train (resuming from the run's checkpoint if any) and return the run record.

    With `out` set the run holds a lock on it for its whole length (a second process with the same `out` gets
    locks.Locked), returns the existing record without training when `out` already holds a complete record of the
    same parameters, saves `<out>.ckpt.pt` after every epoch and resumes from it (the same record, bit for bit on
    the CPU, timings aside), and writes the record atomically, then removes the checkpoint. A run of the stacked
    engine trains with its stack's other runs (normlib.run.stackrun.run_stack), or alone as a stack of one."""
    cfg = params if isinstance(params, RunConfig) else config.validate(dict(params))
    processes.keep_niceness()  # a kernel runs in a session of its own: keep the sweep's nice for it
    if cfg.engine == "stacked" and not records.is_done(records.read(cfg.out) if cfg.out else None, cfg.dict()):
        stack = stackrun.stack_of(cfg)
        return stackrun.run_stack(stack, cfg.progress)[[p.get("out", "") for p in stack].index(cfg.out)]
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
        print(f"epoch {checkpoint.resumed_at}: step {checkpoint.resumed_step}/{total}, training starts", flush=True)
        result = train(cfg, parts, checkpoint.resume, on_epoch, checkpoint, reporter(cfg.progress, total))
        rec = record(cfg, data, parts, result, checkpoint)
        if cfg.out:
            records.write_json(cfg.out, rec)
            checkpoint.path.unlink(missing_ok=True)
    return rec
