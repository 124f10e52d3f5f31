"""Where a sweep's runs execute: a Dask cluster (by default one worker of `jobs` slots inside the sweep process; `gpus`:
a worker process per GPU of this machine; or an existing cluster), the task that executes a run or a stack of runs on
a worker (a stack's first kernel is told its runs in STACK_ENV and trains them as one), and the loop that submits the
tasks and collects their runs as they end. A worker that sees the grid folder executes a run in place; any other in a
temporary folder of its own, and the sweep writes the record and notebook it returns. What each cluster guarantees
(loopback, TLS, slots, GPUs, workers that die, files): docs/cluster.md."""
import json
import os
import queue
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from ..store import locks, records
from ..config import FIELDS, STACK_ENV, planned_steps
from .execute import RUN_NOTEBOOK, execute, failure_reason, record_failure, temp_notebook, write_record
from .grid import GridError, Run, Task
from .dask_settings import LOOPBACK, QUIET, dashboard_address, scratch, security
from ..store.processes import stale_files, wait_for_locks

CONNECT_TIMEOUT = 30  # seconds to reach an existing scheduler before giving up (exit 2, nothing written)
GONE_CHECK = 5.0  # seconds between two checks, while the cluster has no worker, that it can still get one
PROGRESS = "normlib-progress"  # the Dask event topic of a run's finished epochs: {"out", "epoch", "step", "steps"}
_STOPS = {}  # per worker process: sweep token -> Event that stop_runs sets and that sweep's runs watch


# ---------------------------------------------------------------- the cluster

def check(scheduler=None, scheduler_file=None, gpus=None, runs_per_gpu=1, jobs=None) -> str:
    """GridError unless the cluster options fit together; returns where the runs go: '' (the local cluster),
    'gpus' (a worker per GPU of this machine) or 'remote' (an existing cluster)."""
    chosen = [f"{o}={v!r}" for o, v in (("--scheduler", scheduler), ("--scheduler-file", scheduler_file),
                                         ("--gpus", gpus)) if v is not None]
    if len(chosen) > 1:
        raise GridError(f"{' and '.join(chosen)}: choose one (where the runs go)")
    if chosen and jobs is not None:
        raise GridError(f"--jobs={jobs!r}: with {chosen[0]} the workers' slots (dask worker --nthreads) set how many "
                        f"runs run at once; drop --jobs")
    if runs_per_gpu != 1 and gpus is None:
        raise GridError(f"--runs-per-gpu={runs_per_gpu!r}: only with --gpus")
    if isinstance(runs_per_gpu, bool) or not isinstance(runs_per_gpu, int) or runs_per_gpu < 1:
        raise GridError(f"--runs-per-gpu={runs_per_gpu!r}: must be an integer >= 1")
    if scheduler_file is not None and not Path(scheduler_file).is_file():
        raise GridError(f"--scheduler-file={str(scheduler_file)!r}: no such file; allowed the file that "
                        f"`dask scheduler --scheduler-file PATH` writes")
    if scheduler is None and scheduler_file is None:  # a cluster started here
        dashboard_address()
    if gpus is not None:
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
            raise GridError(f"--gpus={gpus!r}: must be an integer >= 1")
        from ..run.device import cuda_count
        n = cuda_count()
        if gpus > n:
            raise GridError(f"--gpus={gpus}: this machine has {n} CUDA device(s); "
                            + (f"allowed 1..{n}" if n else "run without --gpus, or on a cluster's GPU workers"))
        return "gpus"
    return "remote" if chosen else ""


def local_cluster(jobs: int):
    """The default: one worker of `jobs` slots inside this process (see the module docstring for why). Its HTTP
    server listens on loopback (Dask's default for an in-process worker is every interface)."""
    from distributed import LocalCluster
    return LocalCluster(processes=False, n_workers=1, threads_per_worker=jobs, memory_limit=0, silence_logs=QUIET,
                        dashboard_address=dashboard_address(), worker_dashboard_address=LOOPBACK)


def gpu_cluster(gpus: int, runs_per_gpu: int = 1):
    """One worker process per GPU, each seeing only its own (CUDA_VISIBLE_DEVICES, taken from this process's list
    when it has one, e.g. under Slurm) and declaring GPU=runs_per_gpu, with as many slots; TLS (security())."""
    from distributed import Nanny, Scheduler, SpecCluster
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(gpus)]
    tls = security()
    workers = {f"gpu{gpu}": {"cls": Nanny, "options": {
        "nthreads": runs_per_gpu, "resources": {"GPU": runs_per_gpu}, "env": {"CUDA_VISIBLE_DEVICES": gpu},
        "memory_limit": 0, "silence_logs": QUIET, "host": "127.0.0.1", "security": tls}}  # memory: the kernels'
        for gpu in ids[:gpus]}
    return SpecCluster(scheduler={"cls": Scheduler, "options": {"host": "127.0.0.1", "protocol": "tls://",
                                                                "security": tls,
                                                                "dashboard_address": dashboard_address()}},
                       workers=workers, silence_logs=QUIET, security=tls)


@contextmanager
def connect(scheduler=None, scheduler_file=None, gpus=None, runs_per_gpu=1, jobs=1):
    """A Client of the cluster the options name (see check), started here unless it is an existing one; GridError
    when an existing one cannot be reached."""
    from distributed import Client
    if scheduler is None and scheduler_file is None:
        with scratch(), (gpu_cluster(gpus, runs_per_gpu) if gpus else local_cluster(jobs)) as c, Client(c) as client:
            yield client
        return
    option = f"--scheduler={scheduler!r}" if scheduler else f"--scheduler-file={str(scheduler_file)!r}"
    try:
        client = Client(scheduler, scheduler_file=scheduler_file, timeout=CONNECT_TIMEOUT)
    except (OSError, ValueError) as e:  # unreachable, timed out, not a scheduler file
        raise GridError(f"{option}: cannot reach the scheduler ({records.reason(e, 200)}); allowed the "
                        f"address of a running `dask scheduler` (tcp://HOST:8786) or its scheduler file") from None
    with client:
        yield client


def dashboard(client) -> str:
    """The link of the cluster's dashboard where this machine can open it, else '': a scheduler without bokeh serves
    a page that asks for it, one started with --no-dashboard serves none."""
    import urllib.request
    port = client.scheduler_info().get("services", {}).get("dashboard")
    if port is None:
        return ""
    link = f"http://127.0.0.1:{port}/status" if client.cluster is not None else client.dashboard_link  # started here
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(link, timeout=2) as page:
            ok = page.status == 200 and b"needs bokeh" not in page.read(4096)
    except (OSError, ValueError):  # unreachable from here, not found, not a URL
        return ""
    return link if ok else ""


def probe(folder: Path) -> dict:
    """What tells a worker that it sees the grid folder itself: the sweep's lock file, by inode and mtime (a copy
    of the same path on another machine has others)."""
    path = locks.sweep_lock_path(folder)
    st = path.stat()
    return {"path": str(path), "ino": st.st_ino, "mtime_ns": st.st_mtime_ns}


def sees(probe: dict) -> bool:
    try:
        st = os.stat(probe["path"]) if probe else None
    except OSError:
        return False
    return st is not None and (st.st_ino, st.st_mtime_ns) == (probe["ino"], probe["mtime_ns"])


# ---------------------------------------------------------------- on a worker

async def stop_runs(token: str) -> None:
    """Stop this worker's runs of the sweep `token` (each SIGTERMs its own kernel) and any that start later. A
    coroutine, so that Client.run can send it without waiting for every worker's answer."""
    _STOPS.setdefault(token, threading.Event()).set()


def epoch_events(outs: list):
    """execute's progress on a worker: each finished epoch of a task's runs (their paths under --out) as a Dask event,
    which the sweep's client receives. A stack's kernel prints a line per run and epoch: each epoch is sent once."""
    from distributed import get_worker
    worker, last = get_worker(), {}

    def send(epoch, step, steps):
        if last.get("at") != (epoch, step):
            last["at"] = (epoch, step)
            for out in outs:
                worker.log_event(PROGRESS, {"out": str(out), "epoch": epoch, "step": step, "steps": steps})
    return send


def run_notebook(text: str):
    """The run notebook: this worker's own copy when it is the sweep's (its path then shows in the executed
    notebook), else the sweep's text."""
    import nbformat
    try:
        if RUN_NOTEBOOK.read_text() == text:
            return RUN_NOTEBOOK
    except OSError:
        pass
    return nbformat.reads(text, as_version=4)


def execute_task(task: Task, places: dict, timeout: int, stop: threading.Event, source, progress) -> list:
    """[{'status', 'reason'}] of each run of a task, its notebook executed at places[run id] = (record, notebook),
    in order, with its stack's runs in the kernel's environment (STACK_ENV): the first kernel trains the stack.
    After a run that did not end ok, a later run without a complete record is not executed (its kernel would train
    the stack again): it takes that status, a failure with a failed record that names the run."""
    from .slurm import job_ending
    stack = [{**r.params, "out": str(places[r.id][0])} for r in task.stack]  # where this worker writes them
    env = {STACK_ENV: json.dumps(stack)} if stack else None
    results, first = [], None  # first: (run id, result) of the first run that did not end ok
    for run in task.runs:
        out, notebook = places[run.id]
        if first and not records.is_done(records.read(out), run.params):
            status, reason = first[1]["status"], first[1]["reason"]
            if status == "failed":
                status, reason = record_failure(run.params, out, notebook, f"its stack failed in {first[0]}: {reason}")
        else:
            # a Slurm job cancelled under the run: the task goes to another worker, with no failed record
            status, reason = execute(run.params, out, notebook, timeout, stop, source, progress, env,
                                     failing=job_ending)
        results.append({"status": status, "reason": reason})
        first = first or ((run.id, results[-1]) if status != "ok" else None)
    return results


def run_task(token: str, task: Task, timeout: int, lock_wait: float, probe: dict, source: str,
             done: dict = None) -> list:
    """A task on a worker: for each of its runs {'status', 'reason'} as normlib.sweep.execute.execute returns them, plus,
    when it ran in a temporary folder, its 'record' and its 'notebook' text for the sweep to write. `done`: {run id:
    complete record} of runs whose notebook is executed again, so a worker away from --out shows them, not trains."""
    stop = _STOPS.setdefault(token, threading.Event())
    if stop.is_set():
        return [{"status": "interrupted", "reason": ""} for _ in task.runs]
    source, progress = run_notebook(source), epoch_events([r.out for r in task.runs])
    members = task.stack or task.runs
    if sees(probe):
        if not wait_for_locks(members, lock_wait, stop):  # a retry after its worker died: its kernel holds the locks
            for p in [p for r in members for p in stale_files(r, keep_checkpoint=bool(task.stack))]:  # ~1 s more
                p.unlink(missing_ok=True)  # e.g. the dead worker's temporary notebook
        results = execute_task(task, {r.id: (r.out, r.notebook) for r in members}, timeout, stop, source, progress)
        if any(r["status"] == "interrupted" for r in results):  # its kernel died of SIGTERM: its files are left
            for r in members:
                if locks.clear(locks.lock_path(r.out)):
                    for p in stale_files(r, keep_checkpoint=True):  # e.g. a checkpoint's half-written save
                        p.unlink(missing_ok=True)
        return results
    with tempfile.TemporaryDirectory(prefix="normlib-run-") as tmp:
        places = {r.id: (Path(tmp) / r.out.name, Path(tmp) / r.notebook.name) for r in members}
        for rid, rec in (done or {}).items():
            records.write_json(places[rid][0], rec)
        results = execute_task(task, places, timeout, stop, source, progress)
        for run, result in zip(task.runs, results):
            out, notebook = places[run.id]
            result.update(record=records.read(out), notebook=notebook.read_text() if notebook.exists() else None)
        return results


# ---------------------------------------------------------------- in the sweep

def place(result: dict, run: Run) -> tuple:
    """(status, reason) of a run executed in a worker's temporary folder, after writing its notebook and record
    under --out as a run in place writes them: atomically, and never over a complete record. A notebook that cannot
    be written (a full disk) leaves nothing behind and fails the run, which the next sweep runs again."""
    if result["notebook"] is not None:
        try:
            with records.atomically(run.notebook, temp_notebook(run.notebook)) as tmp:
                tmp.write_text(result["notebook"])
        except OSError as e:
            return "failed", f"{type(e).__name__}: {e}"
    rec = result["record"]
    if rec is not None and result["status"] in ("ok", "failed"):
        rec["params"]["out"] = str(run.out)  # where the record lives, not the worker's temporary folder
        if "notebook" in rec:
            rec["notebook"] = str(run.notebook)
        locked = write_record(run.out, run.params, rec)
        if locked:
            return "skipped", locked
    return result["status"], result["reason"]


def outcome(future, task: Task, stop: threading.Event, timeout: int) -> list:
    """(status, reason) of each run of a task: its result, written under --out when it ran away from it; failed
    records when its task failed (e.g. KilledWorker: the workers running it died too often)."""
    try:
        results = future.result()
    except Exception as e:  # KilledWorker, or an error of the task itself
        if stop.is_set():
            return [("interrupted", "")] * len(task.runs)
        return [record_failure(r.params, r.out, r.notebook, failure_reason(e, timeout)) for r in task.runs]
    return [place(result, run) if "record" in result else (result["status"], result["reason"])
            for run, result in zip(task.runs, results)]


def wait_for_a_worker(client, stop: threading.Event, gone=None) -> None:
    """Return once the cluster has a worker (a batch system may start them after the sweep), `stop` is set or it can
    get none (gone: see run_all)."""
    if not client.scheduler_info()["workers"]:
        print("waiting for the cluster's first worker", flush=True)
    while not client.scheduler_info()["workers"] and not stop.wait(1.0) and not no_worker_left(client, gone):
        pass


def no_worker_left(client, gone) -> str:
    """Why the cluster has no worker and can get none (gone(client), e.g. normlib.sweep.slurm.jobs_gone), or ''."""
    if gone is None or client.scheduler_info()["workers"]:
        return ""
    return gone(client)


def start_order(tasks: list) -> list:
    """Tasks in the order they start: seed by seed (every cell's seed 0 first), so that a grid stopped midway has
    whole seeds of every cell; within a seed longest first (by optimizer steps), since the batch-size-2 runs are a
    large share of the work and started last they would leave the other workers idle. A stack counts as its first
    run."""
    seed = FIELDS["seed"].default
    return sorted(tasks, key=lambda t: (t.runs[0].params.get("seed", seed), -planned_steps(t.runs[0].params)))


def submit(client, tasks: list, token: str, timeout: int, lock_wait: float, probe: dict) -> dict:
    """{future: task} of the tasks. A task not on the CPU asks for a GPU where workers declare GPUs, so a worker
    with GPU=K runs at most K of them at once. Tasks start in start_order."""
    gpu = any("GPU" in w.get("resources", {}) for w in client.scheduler_info()["workers"].values())
    source, futures = RUN_NOTEBOOK.read_text(), {}
    ordered = start_order(tasks)
    for rank, task in enumerate(ordered):  # the first ones start before the rest arrive
        done = {r.id: rec for r in task.runs if records.is_done(rec := records.read(r.out), r.params)}
        on_gpu = gpu and task.runs[0].params.get("device", "auto") != "cpu"
        futures[client.submit(run_task, token, task, timeout, lock_wait, probe, source, done,
                              key=f"{task.runs[0].id}-{token}", priority=len(ordered) - rank,
                              resources={"GPU": 1} if on_gpu else None)] = task
    return futures


def run_all(client, tasks: list, report, stop: threading.Event, grace: float, timeout: int = 0,
            lock_wait: float = 0.0, probe: dict = None, gone=None) -> bool:
    """Submit tasks (normlib.sweep.grid.Task) to the cluster (which has a worker: wait_for_a_worker) and call report(run,
    status, reason) in this thread for each run of a task as it ends. Once `stop` is set, every worker stops this
    sweep's tasks (each SIGTERMs its own kernel; queued ones return at once) and the loop waits up to `grace`
    seconds for them. Returns whether some task had not ended by then. gone(client), if given, says why a cluster
    without a worker can get none (every Slurm worker job has ended), or '': then the tasks left are cancelled and
    each of their runs reported as 'left', with that reason."""
    token, ended = uuid.uuid4().hex, queue.SimpleQueue()
    if stop.is_set():  # e.g. while it waited for a worker
        for run in (r for t in tasks for r in t.runs):
            report(run, "interrupted", "")
        return False
    futures = submit(client, tasks, token, timeout, lock_wait, probe)
    for future in futures:
        future.add_done_callback(ended.put)  # called in the client's thread: the queue hands it to this one
    left, deadline, checked = set(futures), None, time.monotonic()
    while left:
        if stop.is_set() and deadline is None:
            deadline = time.monotonic() + grace
            try:
                client.run(stop_runs, token, wait=False)
            except Exception as e:  # the scheduler is gone: its workers' runs end with it
                print(f"could not tell the workers to stop ({type(e).__name__}: {e})", file=sys.stderr)
        try:
            future = ended.get(timeout=0.5)  # wakes for a signal; a wait on finished futures would spin
        except queue.Empty:
            if deadline is not None and time.monotonic() > deadline:
                break
            if deadline is None and time.monotonic() > checked + GONE_CHECK:
                checked, why = time.monotonic(), no_worker_left(client, gone)
                if why:
                    client.cancel(list(left))
                    for run in (r for f in left for r in futures[f].runs):
                        report(run, "left", why)
                    return False
            continue
        left.discard(future)
        task = futures[future]
        try:
            ends = outcome(future, task, stop, timeout)
        except Exception as e:  # the sweep's own side (disk full, ...): still this task's failure only
            ends = [("failed", f"sweep: {type(e).__name__}: {e}")] * len(task.runs)
        for run, (status, reason) in zip(task.runs, ends):
            report(run, status, reason)
    return bool(left)
