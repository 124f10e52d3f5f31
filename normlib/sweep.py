"""Expand a params grid into papermill runs of notebooks/run.ipynb, resumable and isolated, then render the report.

usage: python -m normlib.sweep params/quick.yaml [--out reports] [--jobs N] [--timeout S] [--lock-wait S]
                                                  [--no-report | --report-only [--extra G1,G2]]
                                                  [--gpus N [--runs-per-gpu K] | --scheduler ADDRESS |
                                                   --scheduler-file PATH] [--no-shared-out]

Exit status: 0 every run of the grid has a complete record (and the report was rendered); 1 some run failed or was
skipped, or the report failed (a summary says which and why); 2 bad input: nothing was run and nothing written;
130 / 143 interrupted by SIGINT / SIGTERM (rerun the same command to resume).

Bad input (exit 2, nothing written): see normlib/grid.py, which checks everything before the first write.

Resuming. A run is skipped when its record is complete and of the same parameters; it is run again when its record is
missing, half-written, failed or of other parameters, and then resumes from its per-epoch checkpoint
`runs/<run>.json.ckpt.pt` at its last finished epoch. Records, checkpoints, executed notebooks and the report are
written under a temporary name and renamed; temporary files left by a killed sweep are removed by the next one. A
finished run whose executed notebook is missing or was cut short (a kill between its record and the end of
papermill) has its notebook executed again: its kernel finds the complete record and shows it without training, so
every run's notebook is whole. As a last guard, normlib.runner.run returns an existing complete record of the same
parameters instead of training again.

Where runs execute (normlib/cluster.py). On a Dask cluster: by default one started inside the sweep process, whose
`jobs` slots run `jobs` notebooks at once on this machine; with --gpus one worker process per GPU of this machine;
with --scheduler / --scheduler-file an existing cluster. A worker that sees --out writes there; any other returns the
record and notebook for the sweep to write. A worker that dies mid-run has its run retried on another worker.

Isolation. A run that fails (an exception, a non-finite loss, out of memory, a dead kernel, a cell past --timeout) gets
a failed record with the reason and its executed notebook showing the error; the other runs go on.

Concurrency and orphaned kernels (the policy):
- One sweep per grid folder: a sweep holds an flock on `<out>/<grid>/.sweep.lock`; a second sweep of the same folder
  stops at once (exit 1), naming the holder's pid.
- Each run's lock `runs/.<run>.json.lock` is held by the kernel that trains it (normlib.runner.run), not by the sweep,
  so it lives exactly as long as the training process, even after the sweep is SIGKILLed. Such orphaned kernels stop
  on their own: ipykernel's parent poller exits a kernel within about a second of its parent's death, and the OS
  then releases its lock. A rerun therefore WAITS (up to --lock-wait seconds, default 30) for run locks held by other
  processes, then re-reads their records (an orphan may just have finished the run); a run still locked after that is
  SKIPPED, neither run a second time nor killed: the sweep names it with the holder's pid and exits 1. It never kills
  processes it did not start: a holder may be a notebook someone runs by hand, and a pid in a lock file may have been
  reused by an unrelated process since.
- SIGINT / SIGTERM: the sweep starts no more runs, stops the kernels of its runs (each run SIGTERMs its own kernel,
  on whichever worker it runs), writes no failed record for them (they are unfinished, not failed: the rerun resumes
  them from their checkpoints), deletes their temporary notebooks and exits 130 / 143. A second signal exits at once.
"""
import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from . import cluster, locks, records
from .execute import RenderError, execute, notebook_complete  # noqa: F401  (execute: the tests' entry to one run)
from .grid import GridError, load_grid, plan
from .processes import SIGNAL_EXIT, clean_stale, stop_on_signals, wait_for_locks
from .records import REPORTS  # the default --out, whatever the current folder: the summary notebook's default too
LOCK_WAIT = 30.0  # seconds a rerun waits for run locks of other processes (orphaned kernels exit within ~1 s)
STOP_GRACE = 60.0  # seconds an interrupted sweep waits for its stopped kernels' threads before exiting anyway


def render(name: str, folder: Path, extra: str = "") -> Path:
    """normlib.report.render.render, imported when a report is rendered: the sweep itself needs no plotting stack."""
    from .report.render import render as render_report
    return render_report(name, folder, extra)


def sweep(grid_path, out_root="reports", jobs=None, timeout=0, report=True, lock_wait=LOCK_WAIT, scheduler=None,
          scheduler_file=None, gpus=None, runs_per_gpu=1, shared_out=True) -> int:
    """Run every run of a grid that has no complete record, then render the report. Returns the exit status (see
    the module docstring); GridError (before anything is written) on bad input or a cluster out of reach. Where the
    runs go: normlib.cluster.connect; shared_out=False: workers never write under --out, even where they see it."""
    where = cluster.check(scheduler, scheduler_file, gpus, runs_per_gpu, jobs)
    g = plan(grid_path, out_root, jobs, timeout, lock_wait, where)
    folder, runs_dir, name = g["folder"], g["folder"] / "runs", g["name"]
    stop = threading.Event()
    with cluster.connect(scheduler, scheduler_file, gpus, runs_per_gpu, g["jobs"]) as client:
        runs_dir.mkdir(parents=True, exist_ok=True)  # the first write
        try:
            with stop_on_signals(stop), locks.lock(folder / ".sweep.lock", f"grid {name!r} in {folder}"):
                code = _sweep(g, folder, runs_dir, timeout, lock_wait, stop, client, shared_out)
        except locks.Locked as e:
            print(f"error: {e}: wait for that sweep to finish or stop it, then rerun", file=sys.stderr)
            return 1
    if code is None:
        return SIGNAL_EXIT.get(getattr(stop, "signum", None), 1)
    if report:
        try:
            render(name, folder)
        except RenderError as e:
            print(f"REPORT FAILED: {e}", file=sys.stderr)
            return 1
    return code


def _sweep(g: dict, folder: Path, runs_dir: Path, timeout: int, lock_wait: float, stop: threading.Event, client,
           shared_out: bool = True):
    """The runs of a planned grid under its sweep lock, on the cluster of `client`; the exit status, or None when
    interrupted."""
    from tqdm.auto import tqdm
    tqdm.monitor_interval = 0  # no monitor thread: with a dead parent's stdout it deadlocked on tqdm's write lock
    name, runs = g["name"], g["runs"]
    removed = clean_stale(folder, runs)
    if removed:
        print(f"removed {removed} temporary file(s) left by an interrupted sweep")
    records.write_json(folder / "grid.json", {"name": name, "description": g["description"],
                                              "runs": [{"run_id": i, "params": p} for i, p in runs]})
    todo = [(rid, params, runs_dir / f"{rid}.json") for rid, params in runs]
    pending = [r for r in todo if not records.is_done(records.read(r[2]), r[1])]
    held = wait_for_locks(runs_dir, pending, lock_wait, stop)
    pending = [r for r in pending if not records.is_done(records.read(r[2]), r[1])]  # an orphan may have finished it
    skipped = {r[0]: f"its run lock is held by pid {locks.lock_holder(locks.lock_path(r[2])) or '?'} (another "
                     f"process is running it); rerun when that process has finished" for r in held if r in pending}
    pending = [r for r in pending if r[0] not in skipped]
    before = len(runs) - len(pending) - len(skipped)
    # a finished run whose notebook a kill cut short: executing it again only reads back its record (no training)
    partial = [r for r in todo if r not in pending and r[0] not in skipped
               and not notebook_complete(runs_dir / f"{r[0]}.ipynb")]
    if partial:
        print(f"executing the notebooks of {len(partial)} finished run(s) again: theirs were cut short or missing")
        pending += partial
    failures, done, unfinished, renotebooked = {}, [], [], []
    link = cluster.dashboard(client)
    if link:
        print(f"dask dashboard: {link}", flush=True)
    if pending:
        cluster.wait_for_a_worker(client, stop)
    bar = tqdm(total=len(runs), initial=before, desc=name, unit="run", file=sys.stdout)

    def report(item, status, reason):
        rid = item[0]
        again = item in partial  # its record was complete already: not a run done now
        {"ok": renotebooked if again else done, "interrupted": unfinished}.get(status, []).append(rid)
        if status == "failed":
            failures[rid] = reason
        elif status == "skipped":
            skipped[rid] = reason
        bar.update(status != "interrupted" and not again)
        bar.set_postfix(failed=len(failures))

    stuck = cluster.run_all(client, pending, report, stop, STOP_GRACE, timeout, lock_wait,
                            cluster.probe(folder) if shared_out else None)
    bar.close()
    print(f"{name}: {before + len(done)} of {len(runs)} runs done ({len(done)} now), {len(failures)} failed, "
          f"{len(skipped)} skipped" + (f", {len(unfinished)} interrupted" if stop.is_set() else ""))
    for rid, reason in failures.items():
        print(f"FAILED {rid}: {reason}  (notebook: {runs_dir / rid}.ipynb)")
    for rid, reason in skipped.items():
        print(f"SKIPPED {rid}: {reason}")
    if stop.is_set():
        print(f"interrupted by {signal.Signals(stop.signum).name}: rerun the same command to resume", flush=True)
        if stuck:  # a papermill thread that did not notice its kernel's end would block the interpreter's exit
            sys.stderr.flush()
            os._exit(SIGNAL_EXIT[stop.signum])
        return None
    return 1 if failures or skipped else 0


HELP_EPILOG = """\
A grid's name is its params file's name: params/quick.yaml runs into OUT/quick/ (runs/, grid.json, report.html).

environment:
  NORMLIB_DATA   CIFAR-10 copy (a cifar-10-batches-py folder, or an image-folder folder/.tar/.tar.xz/.zip) for runs
                 whose `data` is empty; unset: torchvision downloads the original
  NORMLIB_CACHE  where decoded data is cached (default ~/.cache/normlib)
  NORMLIB_DASHBOARD  HOST:PORT of the Dask dashboard of a cluster the sweep starts, e.g. 0.0.0.0:8787 to open it to
                 the network on purpose (needs bokeh); unset: this machine only, a free port

where runs execute (default: a Dask cluster inside this process, --jobs runs at once):
  --gpus N [--runs-per-gpu K]   one worker process per GPU of this machine, K runs on each at once
  --scheduler tcp://HOST:8786   an existing Dask cluster (dask scheduler + dask worker, dask-jobqueue, Kubernetes);
  --scheduler-file PATH         workers that declare `--resources GPU=K` take K runs at once, each on its one GPU
  workers that see OUT write there; others send each record and notebook back (--no-shared-out: all of them)

exit status:
  0    every run has a complete record (and the report was rendered)
  1    some run failed or was skipped, or the report failed: the summary says which and why
  2    bad input, or a scheduler out of reach: one line per problem; nothing was run or written
  130  interrupted by SIGINT, 143 by SIGTERM: rerun the same command to resume
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m normlib.sweep", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=HELP_EPILOG)
    ap.add_argument("params", help="YAML grid, e.g. params/quick.yaml; its file name without .yaml names the grid")
    ap.add_argument("--out", default=str(REPORTS), help=f"reports root; runs go to OUT/<grid name>/ (default {REPORTS})")
    ap.add_argument("--jobs", type=int, default=None, help="concurrent runs (default: the grid's, else CPU cores)")
    ap.add_argument("--timeout", type=int, default=0, help="per-cell timeout in seconds (0: none)")
    ap.add_argument("--lock-wait", type=float, default=LOCK_WAIT,
                    help=f"seconds to wait for runs locked by other processes, then skip them (default {LOCK_WAIT:g})")
    ap.add_argument("--gpus", type=int, default=None, help="one Dask worker per GPU of this machine, pinned to it")
    ap.add_argument("--runs-per-gpu", type=int, default=1, help="with --gpus: runs at once on each GPU (default 1)")
    ap.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler, e.g. tcp://node1:8786")
    ap.add_argument("--scheduler-file", default=None, help="scheduler file of an existing Dask cluster "
                    "(dask scheduler --scheduler-file PATH)")
    ap.add_argument("--no-shared-out", action="store_true", help="workers never write under OUT, even where they "
                    "see it: each run executes in a worker's temporary folder and the sweep writes its record and "
                    "notebook (a run whose worker dies starts over)")
    ap.add_argument("--no-report", action="store_true", help="run the grid but do not render the report")
    ap.add_argument("--report-only", action="store_true", help="render the report from existing records")
    ap.add_argument("--extra", default="", help="with --report-only: other grids under OUT to add as report "
                    "sections, comma-separated (e.g. full_lr_linear,full_equal_steps)")
    a = ap.parse_args(argv)
    try:
        if a.report_only:
            grid = load_grid(a.params)
            folder = Path(a.out).resolve() / grid["name"]
            if not (folder / "runs").is_dir():
                raise GridError(f"out={a.out!r}: no runs of grid {grid['name']!r} in {folder}; run the sweep first")
            for other in filter(None, a.extra.split(",")):
                if not (folder.parent / other.strip() / "runs").is_dir():
                    raise GridError(f"extra={other!r}: no runs of that grid in {folder.parent}; run its sweep first")
            render(grid["name"], folder, a.extra)
            return 0
        t0 = time.time()
        code = sweep(a.params, a.out, a.jobs, a.timeout, not a.no_report, a.lock_wait, a.scheduler, a.scheduler_file,
                     a.gpus, a.runs_per_gpu, not a.no_shared_out)
        print(f"wall time: {time.time() - t0:.0f} s")
        return code
    except GridError as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except RenderError as e:
        print(f"REPORT FAILED: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
