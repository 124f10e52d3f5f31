"""Expand a params grid into papermill runs of notebooks/run.ipynb, resumable and isolated, then render the report.

`python -m normlib.sweep --help` gives the options, where runs execute and the exit statuses; docs/sweep.md gives
what a sweep guarantees (resuming, isolation, locks, signals, orphaned kernels).
"""
import argparse
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import dispatch, execute
from ..store import locks, records
from .backends import Backend, Gpus, Local, Scheduler
from .grid import GridError, Plan, Task, load_grid, name_problem, output_folder, plan
from ..store.processes import SIGNAL_EXIT, clean_stale, stop_on_signals, wait_for_locks
from .slurm import Slurm
from .worker import PROGRESS

LOCK_WAIT = 30.0  # seconds a rerun waits for run locks of other processes (orphaned kernels exit within ~1 s)
STOP_GRACE = 60.0  # seconds an interrupted sweep waits for its stopped kernels' threads before exiting anyway
SHOWN = 3  # runs in flight named on the progress bar (the rest are counted)
TRAINED = 0.9  # a run's share of the bar by its last step: the rest comes as its record is written


def render(name: str, folder: Path, extra: str = "", metric: str = "") -> int:
    """The report: the summary notebook executed on a grid's records (normlib.sweep.execute.summary), then its page
    (normlib.report.render, imported here: the sweep itself needs no plotting stack). Returns 0, or on SIGINT or
    SIGTERM, after stopping the summary's kernel and writing no page, the signal's exit status."""
    from ..report.render import write_page
    print(f"{name}: rendering the report (the summary notebook on the records)", flush=True)
    stop = threading.Event()
    with stop_on_signals(stop):
        executed = execute.summary(name, folder, extra, stop, metric)
        try:
            if not stop.is_set():
                write_page(executed, name)
        except OSError as e:  # e.g. a full disk: the page is not written, and the sweep says why in one line
            raise execute.RenderError(execute.failure_reason(e, 0)) from None
    if stop.is_set():
        print(f"interrupted by {signal.Signals(stop.signum).name} while rendering the report: rerun with "
              f"--report-only to render it", flush=True)
        return SIGNAL_EXIT[stop.signum]
    return 0


def sweep(grid_path, backend: Backend = None, *, out_root=records.REPORTS, jobs=None, timeout=0, report=True,
          lock_wait=LOCK_WAIT, shared_out=True) -> int:
    """Run every run of a grid that has no complete record, then render the report. Returns the exit status (see
    --help); GridError (before anything is written) on bad input or a cluster out of reach. backend: where the runs
    go (normlib.sweep.backends; default Local, this machine); shared_out=False: workers never write under --out,
    even where they see it."""
    backend = backend or Local()
    backend.check()
    g = plan(grid_path, out_root, jobs, timeout, lock_wait, backend.pins_gpus, backend.local_gpus)
    stop = threading.Event()
    with backend.connect(g) as client:
        (g.folder / "runs").mkdir(parents=True, exist_ok=True)  # the first write
        try:
            with stop_on_signals(stop), locks.lock(locks.sweep_lock_path(g.folder), f"grid {g.name!r} in {g.folder}"):
                code = run_grid(g, timeout, lock_wait, stop, client, shared_out, backend.gone)
        except locks.Locked as e:
            print(f"error: {e}: wait for that sweep to finish or stop it, then rerun", file=sys.stderr)
            return 1
    if code is None:
        return SIGNAL_EXIT.get(getattr(stop, "signum", None), 1)
    if report:
        try:
            return render(g.name, g.folder, metric=g.metric) or code
        except execute.RenderError as e:
            print(f"REPORT FAILED: {e}", file=sys.stderr)
            return 1
    return code


# ---------------------------------------------------------------- what to run

@dataclass
class Todo:
    """What a sweep executes now: `tasks` (normlib.sweep.grid.Task: a stack, or a run alone, with the runs whose
    notebooks it executes), `again` (finished runs among those, whose notebook is executed again), the runs skipped
    as another process holds them ({run id: reason}), and how many runs were complete."""
    tasks: list
    again: list
    skipped: dict
    before: int

    @property
    def pending(self) -> list:
        """The runs whose notebooks are executed, in the tasks' order."""
        return [r for t in self.tasks for r in t.runs]


def resume_plan(g: Plan, lock_wait: float, stop: threading.Event) -> Todo:
    """Which runs to execute: those without a complete record of their parameters, once run locks held by other
    processes on their stacks are free (or lock_wait has passed: those are skipped), plus finished runs whose
    notebook a kill cut short (executing it again only reads back the record: no training); grouped into tasks by
    the grid's stacks (a stack with a run to train trains whole: its partners are part of it)."""
    done = lambda r: records.is_done(records.read(r.out), r.params)  # noqa: E731
    training = [st for st in g.stacks if not all(map(done, st))]
    held = wait_for_locks([r for st in training for r in st], lock_wait, stop)  # the stacks' kernels take them all
    tasks, again, skipped = [], [], {}
    for st in g.stacks:
        pending = [r for r in st if not done(r)]  # re-read: an orphan may have finished it
        holder = next((r for r in held if r in st), None) if pending else None
        for r in pending if holder else ():
            skipped[r.id] = (f"its run lock{'' if holder == r else f' (of {holder.id}, its stack)'} is held by pid "
                             f"{locks.lock_holder(locks.lock_path(holder.out)) or '?'} (another process is running "
                             f"it); rerun when that process has finished")
        cut = [r for r in st if r not in pending and not execute.notebook_complete(r.notebook)]
        if (pending and not holder) or cut:
            tasks.append(Task(tuple((pending if not holder else []) + cut), st if st[0].stacked else ()))
        again += cut
    if again:
        print(f"executing the notebooks of {len(again)} finished run(s) again: theirs were cut short or missing")
    return Todo(tasks, again, skipped, len(g.runs) - sum(len(t.runs) for t in tasks) + len(again) - len(skipped))


# ---------------------------------------------------------------- progress

@dataclass
class Outcomes:
    """What became of a sweep's runs, by run id."""
    done: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    interrupted: list = field(default_factory=list)
    left: dict = field(default_factory=dict)  # runs no worker was left to do, with why


class Distinct:
    """stdout for the bar: a redraw identical to the one before it is dropped, so a captured log shows each state
    once (tqdm redraws when closing, and after a change that does not show, such as a notebook executed again)."""

    def __init__(self, out):
        self.out, self.last = out, None

    def write(self, text: str) -> None:
        shown = text.strip()  # tqdm pads a redraw with spaces to cover a longer one before it
        if shown and shown == self.last:
            return
        self.last = shown or self.last
        self.out.write(text)

    def flush(self) -> None:
        self.out.flush()

    def __getattr__(self, name):  # encoding, isatty, ...: the stream's own
        return getattr(self.out, name)


class Progress:
    """The sweep's bar: finished runs plus the share of each run in flight (TRAINED x its steps done, so that the bar
    reaches a run's whole share only as its record is written), so that its rate and ETA count the work in flight;
    its postfix names the runs in flight with their share of steps done and their epoch. A run's share at its start
    (resumed from a checkpoint) counts as done before, not as work of this sweep: the rate is this sweep's own. Each
    change is drawn once. Progress lines arrive as Dask events (normlib.sweep.worker.PROGRESS) in the client's
    thread, runs' ends in the sweep's: hence a lock."""
    BAR = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} runs [{elapsed}<{remaining}{postfix}]"

    def __init__(self, name: str, todo: Todo, total: int):
        from tqdm.auto import tqdm
        tqdm.monitor_interval = 0  # no monitor thread: with a dead parent's stdout it deadlocked on tqdm's write lock
        self.todo, self.outcomes, self.lock = todo, Outcomes(skipped=dict(todo.skipped)), threading.Lock()
        self.mine = {str(r.out): r.id for r in todo.pending if r not in todo.again}  # out -> run id: runs that train
        self.running, self.ended_ids = {}, set()  # run id -> (epoch, share of it done); runs that ended
        self.bar = tqdm(total=total, initial=todo.before, desc=name, unit="run", file=Distinct(sys.stdout),
                        bar_format=self.BAR)

    def progressed(self, event) -> None:
        """A Dask event (time, a progress line with its run's "out": normlib.store.progress); other sweeps' are
        ignored."""
        msg = event[1]
        rid = self.mine.get(msg.get("out"))
        if rid is None:
            return
        with self.lock:
            if rid in self.ended_ids:  # an event that arrived after the run's end
                return
            first = rid not in self.running
            _, before = self.running.get(rid, (0, 0.0))  # a run moved to another worker starts its lines again:
            share = TRAINED * min(1.0, msg["step"] / max(1, msg["steps"]))
            self.running[rid] = (msg["epoch"], max(before, share))  # its share is kept
            self._draw(self.running[rid][1] - before, resumed=first and msg.get("event") == "start")

    def ended(self, run, status: str, reason: str) -> None:
        """A run's end (normlib.sweep.grid.Run), as normlib.sweep.dispatch.run_all reports it."""
        rid, again = run.id, run in self.todo.again  # again: its record was complete already, not a run done now
        with self.lock:
            _, share = self.running.pop(rid, (0, 0.0))
            self.ended_ids.add(rid)
            if status == "ok" and not again:
                self.outcomes.done.append(rid)
            elif status in ("failed", "skipped", "left"):
                getattr(self.outcomes, status)[rid] = reason
            elif status == "interrupted":
                self.outcomes.interrupted.append(rid)
            self._draw(0 if status in ("interrupted", "left") else (not again) - share)  # it keeps its share

    def _draw(self, delta: float, resumed: bool = False) -> None:
        """Move the bar by delta and draw it; resumed: work done before this sweep, which its rate leaves out."""
        running = [f"{rid} {share / TRAINED:.0%}" + (f" in epoch {epoch + 1}" if share < TRAINED else " evaluating")
                   for rid, (epoch, share) in sorted(self.running.items())]
        shown = ", ".join(running[:SHOWN]) + (f" +{len(running) - SHOWN}" if len(running) > SHOWN else "")
        self.bar.set_postfix_str(f"failed {len(self.outcomes.failed)}" + (f"; running {shown}" if shown else ""),
                                 refresh=False)
        self.bar.n = min(self.bar.n, self.bar.total)  # never past its total (shares summed in floats): ETA >= 0
        delta = min(delta, self.bar.total - self.bar.n)
        if delta > 0 and resumed:  # tqdm's rate counts from `initial` and from what last_print_n has not seen
            self.bar.initial += delta
            self.bar.last_print_n += delta
            self.bar.n += delta
            self.bar.refresh()
        elif delta > 0:
            self.bar.update(delta)  # draws the bar once (tqdm's mininterval permitting)
        else:
            self.bar.refresh()

    def close(self) -> None:
        with self.lock:
            self.bar.close()


# ---------------------------------------------------------------- the runs

def run_grid(g: Plan, timeout: int, lock_wait: float, stop: threading.Event, client, shared_out: bool = True,
             gone=None):
    """The runs of a planned grid under its sweep lock, on the cluster of `client`; the exit status, or None when
    interrupted. gone(client): why a cluster without workers can get none (normlib.sweep.backends.Backend.gone)."""
    removed = clean_stale(g.folder, g.stacks)
    if removed:
        print(f"removed {removed} temporary file(s) left by an interrupted sweep")
    records.write_json(g.folder / "grid.json", {"name": g.name, "description": g.description,
                                                "runs": [{"run_id": r.id, "params": r.params} for r in g.runs]})
    todo = resume_plan(g, lock_wait, stop)
    link = dispatch.dashboard(client)
    if link:
        print(f"dask dashboard: {link}", flush=True)
    if todo.pending:
        dispatch.wait_for_a_worker(client, stop, gone)
    progress = Progress(g.name, todo, len(g.runs))
    client.subscribe_topic(PROGRESS, progress.progressed)
    try:
        stuck = dispatch.run_all(client, todo.tasks, progress.ended, stop, STOP_GRACE, timeout, lock_wait,
                                 dispatch.probe(g.folder) if shared_out else None, gone)
    finally:
        client.unsubscribe_topic(PROGRESS)
        progress.close()
    summarize(g, todo.before, progress.outcomes, stop)
    if stop.is_set():
        if stuck:  # a papermill thread that did not notice its kernel's end would block the interpreter's exit
            sys.stderr.flush()
            # os._exit skips the `finally` of locks.lock that removes the sweep's lock file: remove it here, while
            # its flock is still held (the OS releases that as the process ends)
            locks.sweep_lock_path(g.folder).unlink(missing_ok=True)
            os._exit(SIGNAL_EXIT[stop.signum])
        return None
    o = progress.outcomes
    return 1 if o.failed or o.skipped or o.left else 0


def summarize(g: Plan, before: int, o: Outcomes, stop: threading.Event) -> None:
    """The sweep's last lines: how many runs are done, and each failed or skipped run with its reason. Done is counted
    from the records: a kernel stopped by a signal may have written its record first (and one past STOP_GRACE may
    still have ended unreported)."""
    done = {r.id for r in g.runs if records.is_done(records.read(r.out), r.params)}
    now, interrupted = len(done - set(o.skipped)) - before, [r for r in o.interrupted if r not in done]
    print(f"{g.name}: {len(done)} of {len(g.runs)} runs done ({now} now), {len(o.failed)} failed, "
          f"{len(o.skipped)} skipped" + (f", {len(interrupted)} interrupted" if stop.is_set() else ""))
    for rid, reason in o.failed.items():
        notebook = g.folder / "runs" / f"{rid}.ipynb"  # none where a full disk cut it short
        print(f"FAILED {rid}: {reason}" + (f"  (notebook: {notebook})" if notebook.exists() else ""))
    for rid, reason in o.skipped.items():
        print(f"SKIPPED {rid}: {reason}")
    if o.left:
        print(f"NO WORKER LEFT: {next(iter(o.left.values()))}; {len(o.left)} run(s) left to do: "
              f"{', '.join(o.left)}: rerun the same command to do them", flush=True)
    if stop.is_set():
        print(f"interrupted by {signal.Signals(stop.signum).name}: rerun the same command to resume", flush=True)


HELP_EPILOG = """\
A grid's name is its params file's name: params/quick.yaml runs into OUT/quick/ (runs/, grid.json, report.html).
What a sweep guarantees (resuming, isolation, locks, signals, orphaned kernels): docs/sweep.md.

environment:
  NORMLIB_DATA   CIFAR-10 copy (a cifar-10-batches-py folder, or an image-folder folder/.tar/.tar.xz/.zip) for runs
                 whose `data` is empty; unset: torchvision downloads the original
  NORMLIB_CACHE  where decoded data is cached (default ~/.cache/normlib)
  NORMLIB_DASHBOARD  HOST:PORT of the Dask dashboard of a cluster the sweep starts, e.g. 0.0.0.0:8787 to open it to
                 the network on purpose (needs bokeh); unset: this machine only, a free port
  NORMLIB_SLURM_INTERFACE  with --slurm: the network interface (ib0, eth0) by which workers on other nodes reach the
                 sweep's scheduler; unset: loopback, workers on this node only

where runs execute (default: a Dask cluster inside this process, --jobs runs at once):
  --gpus N [--runs-per-gpu K]   one worker process per GPU of this machine, K runs on each at once
  --scheduler tcp://HOST:8786   an existing Dask cluster (dask scheduler + dask worker, dask-jobqueue, Kubernetes);
  --scheduler-file PATH         workers that declare `--resources GPU=K` take K runs at once, each on its one GPU
  workers that see OUT write there; others send each record and notebook back (--no-shared-out: all of them)
  --slurm [OPTION]              each worker a Slurm job (--jobs of them, one task at a time), OPTION an sbatch long
                                option without its dashes, one per --slurm: --slurm partition=gpu --slurm gres=gpu:1
"""
EXIT_STATUS = {  # the sweep's exit statuses, the one table of them (--help shows it)
    0: "every run has a complete record (and the report was rendered)",
    1: "some run failed or was skipped, no worker was left to run the rest, or the report failed: the summary says "
       "which and why",
    2: "bad input, or a scheduler out of reach: one line per problem; nothing was run or written",
    **{code: f"interrupted by {sig.name}: rerun the same command to resume" for sig, code in SIGNAL_EXIT.items()}}
HELP_EPILOG += "\nexit status:\n" + "".join(f"  {code:<4} {meaning}\n" for code, meaning in EXIT_STATUS.items())


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m normlib.sweep", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=HELP_EPILOG)
    ap.add_argument("params", help="YAML grid, e.g. params/quick.yaml; its file name without .yaml names the grid")
    ap.add_argument("--out", default=str(records.REPORTS),
                    help=f"reports root; runs go to OUT/<grid name>/ (default {records.REPORTS})")
    ap.add_argument("--jobs", type=int, default=None, help="concurrent runs (default: the grid's, else CPU cores)")
    ap.add_argument("--timeout", type=int, default=0, help="per-cell timeout in seconds (0: none)")
    ap.add_argument("--lock-wait", type=float, default=LOCK_WAIT,
                    help=f"seconds to wait for runs locked by other processes, then skip them (default {LOCK_WAIT:g})")
    ap.add_argument("--gpus", type=int, default=None, help="one Dask worker per GPU of this machine, pinned to it")
    ap.add_argument("--runs-per-gpu", type=int, default=1, help="with --gpus: runs at once on each GPU (default 1)")
    ap.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler, e.g. tcp://node1:8786")
    ap.add_argument("--scheduler-file", default=None, help="scheduler file of an existing Dask cluster "
                    "(dask scheduler --scheduler-file PATH)")
    ap.add_argument("--slurm", action="append", nargs="?", const="", default=None, metavar="OPTION",
                    help="Dask workers as Slurm jobs (normlib/sweep/slurm.py); OPTION: an sbatch option without its "
                    "dashes (e.g. partition=gpu), one per --slurm")
    ap.add_argument("--no-shared-out", action="store_true", help="workers never write under OUT, even where they "
                    "see it: each run executes in a worker's temporary folder and the sweep writes its record and "
                    "notebook (a run whose worker dies starts over)")
    ap.add_argument("--no-report", action="store_true", help="run the grid but do not render the report")
    ap.add_argument("--report-only", action="store_true", help="render the report from existing records")
    ap.add_argument("--dry-run", action="store_true", help="check the input and list the grid's runs, each marked "
                    "done (a complete record of its parameters under OUT) or to run; run and write nothing")
    ap.add_argument("--extra", default="", help="with --report-only: other grids under OUT to add as report "
                    "sections, comma-separated (e.g. full_lr_linear,full_equal_steps)")
    return ap


def report_only(params: str, out: str, extra: str) -> int:
    """--report-only: render the report of a grid's existing records (GridError when there are none)."""
    grid = load_grid(params)
    name = grid["name"]
    folder = output_folder(out, name)
    if not (folder / "runs").is_dir():
        raise GridError(f"out={out!r}: no runs of grid {name!r} in {folder}; run the sweep first")
    for other in (o.strip() for o in extra.split(",") if o.strip()):
        problem = name_problem("extra", other)
        if problem:
            raise GridError(problem)
        if not (folder.parent / other / "runs").is_dir():
            raise GridError(f"extra={other!r}: no runs of that grid in {folder.parent}; run its sweep first")
    return render(name, folder, extra, grid["metric"])


def dry_run(params: str, out: str, jobs) -> int:
    """--dry-run: every run of the grid, done or to run, after the checks a sweep makes (GridError on bad input)."""
    g = plan(params, out, jobs)
    done = [records.is_done(records.read(r.out), r.params) for r in g.runs]
    for r, ok in zip(g.runs, done):
        print(f"{'done  ' if ok else 'to run'}  {r.id}")
    print(f"{g.name}: {sum(done)} of {len(g.runs)} runs done in {g.folder}; {len(g.runs) - sum(done)} to run, "
          f"{g.jobs} at a time")
    return 0


def check_modes(a: argparse.Namespace) -> None:
    """GridError for options that contradict each other, which would otherwise be dropped silently."""
    for one, other in (("dry_run", "report_only"), ("no_report", "report_only")):
        if getattr(a, one) and getattr(a, other):
            raise GridError(f"--{one.replace('_', '-')} and --{other.replace('_', '-')}: choose one")
    if a.extra and not a.report_only:
        raise GridError(f"--extra={a.extra!r}: only with --report-only (the report of existing records adds those "
                        f"grids)")


def backend(a: argparse.Namespace) -> Backend:
    """The backend the options choose (normlib.sweep.backends, normlib.sweep.slurm), the one place that maps options
    to backends; GridError for options that do not fit together. Its own checks are its check()."""
    chosen = [(o, v) for o, v in (("--scheduler", a.scheduler), ("--scheduler-file", a.scheduler_file),
                                  ("--gpus", a.gpus)) if v is not None]
    if a.slurm is not None and chosen:
        raise GridError(f"--slurm and {chosen[0][0]}: choose one (where the runs go)")
    if len(chosen) > 1:
        raise GridError(f"{' and '.join(f'{o}={v!r}' for o, v in chosen)}: choose one (where the runs go)")
    if chosen and a.jobs is not None:
        raise GridError(f"--jobs={a.jobs!r}: with {chosen[0][0]}={chosen[0][1]!r} the workers' slots (dask worker "
                        f"--nthreads) set how many runs run at once; drop --jobs")
    if a.runs_per_gpu != 1 and a.gpus is None:
        raise GridError(f"--runs-per-gpu={a.runs_per_gpu!r}: only with --gpus")
    if a.slurm is not None:
        return Slurm(a.slurm)
    if a.gpus is not None:
        return Gpus(a.gpus, a.runs_per_gpu)
    if chosen:
        return Scheduler(a.scheduler, a.scheduler_file)
    return Local()


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    try:
        check_modes(a)
        if a.dry_run:
            return dry_run(a.params, a.out, a.jobs)
        if a.report_only:
            return report_only(a.params, a.out, a.extra)
        t0 = time.time()
        code = sweep(a.params, backend(a), out_root=a.out, jobs=a.jobs, timeout=a.timeout, report=not a.no_report,
                     lock_wait=a.lock_wait, shared_out=not a.no_shared_out)
        print(f"wall time: {time.time() - t0:.0f} s")
        return code
    except GridError as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except execute.RenderError as e:
        print(f"REPORT FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C outside stop_on_signals: during the checks and imports, or the report
        print("interrupted by SIGINT: rerun the same command to resume", file=sys.stderr)
        return SIGNAL_EXIT[signal.SIGINT]


if __name__ == "__main__":
    sys.exit(main())
