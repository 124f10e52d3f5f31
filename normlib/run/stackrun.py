"""One stack end to end, as normlib.run.runner.run is one run: the runs of one cell (other seeds, `engine: stacked`)
trained as one network of normlib.run.stacked, each run with its own lock, checkpoint per epoch and record.

The sweep forms the stacks (normlib.sweep.grid.stacks) and names a stack's runs to the kernel of its first notebook in
its `stack` parameter; that kernel's normlib.run.runner.run trains the stack here and writes every run's record, and
the other runs' notebooks find theirs complete.
"""
import contextlib
import json
import time

from .. import config
from ..store import locks, records
from .checkpoints import Checkpoint, checkpoint_path
from .checkpoints import resume_stack as resumes_of
from .lifecycle import end_of_epoch, load_parts, record, reporter
from .stacked import train_stack


def stack_of(cfg: config.RunConfig) -> list:
    """The runs of cfg's stack [params with `out`] as its `stack` parameter names them ({seed, out}: what a stack's
    runs differ in, config.PER_RUN; the rest is cfg's), or [cfg's own] (a stack of one) when it names none that is
    this run."""
    own = config.recorded(cfg)
    named = [{**own, **p} for p in json.loads(cfg.stack or "[]")]
    return named if cfg.out and own in named else [own]


def run_stack(params_list: list, progress: str = "") -> list:
    """Train runs that differ only in seed as one stack and write the record of each run that has no complete one
    at its `out` (under every run's lock); returns the records. Every run of the stack trains, partners whose
    records are complete included (their records stay as they are): a run's numbers depend on its partners, so a
    resumed or rerun stack keeps them (docs/sweep.md). Nothing trains when every record is complete. `progress`:
    the stack's progress file (normlib.store.progress), or none."""
    cfgs = [config.validate(dict(p)) for p in params_list]
    started, t0 = records.now(), time.perf_counter()
    data, parts = load_parts(cfgs[0])
    with contextlib.ExitStack() as held:
        for c in cfgs:
            if c.out:
                held.enter_context(locks.run_lock(c.out))
        done = [records.read(c.out) if c.out else None for c in cfgs]
        if all(records.is_done(rec, c.dict()) for c, rec in zip(cfgs, done)):
            return done
        checkpoints = [Checkpoint(c, started, t0) for c in cfgs]
        resumes = resumes_of(checkpoints, started)
        total = config.total_steps(cfgs[0], len(parts["train"][1]))
        results = train_stack(cfgs, parts, resumes, lambda k, state: end_of_epoch(state, total, checkpoints[k]),
                              reporter(progress, total))
        recs = [record(c, data, parts, result, ckpt) for c, result, ckpt in zip(cfgs, results, checkpoints)]
        for k, c in enumerate(cfgs):
            if records.is_done(done[k], c.dict()):
                recs[k] = done[k]  # a partner's complete record stays as it is
            elif c.out:
                records.write_json(c.out, recs[k])
                recs[k] = records.read(c.out)
        for c in cfgs:  # only once every record is written: a kill in between resumes at the stack's last step
            if c.out:
                checkpoint_path(c.out).unlink(missing_ok=True)
        return recs
