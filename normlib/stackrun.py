"""A grid's runs trained as stacks: each cell's pending seeds (runs that differ only in seed) as one network of
normlib.stacked, each run with its own lock, checkpoint per epoch and record, written as normlib.runner writes them.
The sweep afterwards executes each run's notebook, which finds its complete record and shows it without training,
so every run still gets its executed notebook and the report renders as for any grid.

usage: python -m normlib.stackrun params/full_stacked.yaml [--out reports] [--jobs N] [--max-stack K]
then:  python -m normlib.sweep params/full_stacked.yaml [--out reports]

Exit status: 0 every run of the grid has a complete record; 1 some stack failed (its reason is printed); 2 bad input;
130 interrupted by SIGINT or SIGTERM (rerun to resume: each run from its last epoch's checkpoint).
"""
import argparse
import contextlib
import signal
import sys
import time
from multiprocessing import get_context
from pathlib import Path

from . import config, locks, records, runner
from .checkpoints import resume_stack as resumes_of
from .grid import GridError, load_grid
from .records import REPORTS
from .stacked import PER_RUN, train_stack


def cells(runs: list, max_stack: int) -> list:
    """Runs (run id, params, out) grouped into stacks: runs that differ only in PER_RUN, at most max_stack each, in
    the order their cells first appear."""
    groups = {}
    for run in runs:
        key = tuple(sorted((k, repr(v)) for k, v in run[1].items() if k not in PER_RUN))
        groups.setdefault(key, []).append(run)
    return [g[i:i + max_stack] for g in groups.values() for i in range(0, len(g), max_stack)]


def run_stack(params_list: list) -> list:
    """Train runs that differ only in seed as one stack and write each run's record at its `out` (under its lock;
    runs whose record is complete already are left out). Returns the records."""
    cfgs = [config.validate(dict(p)) for p in params_list]
    started, t0 = records.now(), time.perf_counter()
    data, parts = runner.load_parts(cfgs[0])
    with contextlib.ExitStack() as held:
        for c in cfgs:
            held.enter_context(locks.run_lock(c.out))
        done = [records.read(c.out) for c in cfgs]
        todo = [c for c, rec in zip(cfgs, done) if not records.is_done(rec, c.dict())]
        if not todo:
            return done
        checkpoints = [runner.Checkpoint(c, started, t0) for c in todo]
        resumes = resumes_of(checkpoints, started)
        results = train_stack(todo, parts, resumes, lambda k, state: checkpoints[k].save(state))
        for k, (c, result) in enumerate(zip(todo, results)):
            records.write_json(c.out, runner.record(c, data, parts, result, checkpoints[k]))
            checkpoints[k].path.unlink(missing_ok=True)
    return [records.read(c.out) for c in cfgs]


def run_one_stack(stack: list) -> tuple:
    """(run ids, '' or why the stack failed): a worker's task."""
    ids = [rid for rid, _, _ in stack]
    try:
        run_stack([{**params, "out": str(out)} for _, params, out in stack])
        return ids, ""
    except Exception as e:  # one failed stack must not stop the others
        return ids, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"


def stack_grid(grid_path, out_root=REPORTS, jobs: int = 1, max_stack: int = 5) -> int:
    """Train every run of a grid that has no complete record, in stacks; the exit status."""
    grid = load_grid(grid_path)
    runs_dir = Path(out_root).resolve() / grid["name"] / "runs"
    runs = [(rid, p, runs_dir / f"{rid}.json") for rid, p in grid["runs"]]
    pending = [r for r in runs if not records.is_done(records.read(r[2]), {**r[1], "out": str(r[2])})]
    stacks = sorted(cells(pending, max_stack), key=lambda st: -config.planned_steps(st[0][1]))  # longest first
    print(f"{grid['name']}: {len(runs) - len(pending)} of {len(runs)} runs done; {len(pending)} to train in "
          f"{len(stacks)} stacks, {jobs} at a time", flush=True)
    runs_dir.mkdir(parents=True, exist_ok=True)
    failed, t0 = 0, time.time()
    # each stack in a fresh process (CUDA and its graphs are per process); on SIGINT/SIGTERM the workers are
    # terminated: each run resumes from its last epoch's checkpoint at the next call
    pool = get_context("spawn").Pool(jobs, maxtasksperchild=1)
    try:
        with stop_on(signal.SIGTERM):
            for ids, error in pool.imap_unordered(run_one_stack, stacks):
                print(f"{'FAILED ' if error else 'done '}{', '.join(ids)}{': ' + error if error else ''}",
                      flush=True)
                failed += bool(error)
        pool.close()
    except KeyboardInterrupt:
        print(f"interrupted after {time.time() - t0:.0f} s: rerun the same command to resume", flush=True)
        return 130
    finally:
        pool.terminate()
        pool.join()
    print(f"wall time: {time.time() - t0:.0f} s", flush=True)
    return 1 if failed else 0


@contextlib.contextmanager
def stop_on(signum):
    """While the block runs, `signum` interrupts it as SIGINT does."""
    def interrupt(*_):
        raise KeyboardInterrupt
    previous = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        signal.signal(signum, previous)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m normlib.stackrun", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("params", help="YAML grid whose runs have engine: stacked")
    ap.add_argument("--out", default=str(REPORTS), help=f"reports root (default {REPORTS})")
    ap.add_argument("--jobs", type=int, default=1, help="stacks trained at once, each in its own process")
    ap.add_argument("--max-stack", type=int, default=5, help="runs per stack at most (default 5)")
    a = ap.parse_args(argv)
    for name, value in (("jobs", a.jobs), ("max-stack", a.max_stack)):
        if value < 1:
            print(f"error: --{name}={value}: must be >= 1", file=sys.stderr)
            return 2
    try:
        return stack_grid(a.params, a.out, a.jobs, a.max_stack)
    except GridError as e:
        print("\n".join(f"error: {line}" for line in str(e).splitlines()), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
