"""Where a sweep's runs execute: a Dask cluster, the task that executes one run on a worker, and the loop that submits
the runs and collects them as they end.

Clusters. By default a LocalCluster(processes=False) of one worker with `jobs` slots inside the sweep process (a slot
runs one run at a time; Dask calls them the worker's threads, not to be confused with a run's torch `threads`): the
kernels stay the sweep's own children, so a SIGKILLed sweep orphans them as a plain process would (ipykernel exits a
kernel within about a second of its parent's death, and the OS releases its run lock), a signal reaches one process,
and no extra Python process starts. `gpus`: one worker process per GPU of this machine, pinned to it by
CUDA_VISIBLE_DEVICES and declaring the resource GPU=runs_per_gpu. `scheduler` / `scheduler_file`: an existing cluster
(`dask scheduler` + `dask worker`, dask-jobqueue, Kubernetes); its workers' slots (`dask worker --nthreads`) set how
many runs run at once. A run whose device is not `cpu` asks for {"GPU": 1} when some worker declares a GPU resource,
so a worker started with `--resources GPU=K` runs at most K of them at once, and none lands on a worker without a GPU.

Every server of a cluster started here (the scheduler, the workers, their HTTP servers, the dashboard) listens on
loopback only, unless NORMLIB_DASHBOARD opens the dashboard to the network deliberately; its scratch space is a
temporary folder removed with the cluster.

Files. A worker that sees the grid folder (the sweep's lock file with the same inode and mtime: the same machine, or
a shared filesystem) executes a run in place, as a local run: its record, checkpoint and notebook are written there
by the run itself. Any other worker (and every worker with shared_out=False) executes it in a temporary folder of its
own and returns the record and the executed notebook; the sweep writes them under --out, atomically and never over
a complete record. A worker needs normlib installed and the data (NORMLIB_DATA), not the repository: the run notebook
travels with each task.

A worker that dies mid-run: the scheduler gives its run to another worker (up to distributed.scheduler.allowed-failures
times; then the run fails with KilledWorker). In place the retry waits for the dead worker's orphaned kernel to release
the run lock and resumes from the run's checkpoint; in a temporary folder it starts over. A run is done once: the
retry finds a record its kernel completed and trains nothing (normlib.runner.run), and a complete record is never
overwritten.
"""
import logging
import os
import queue
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import locks, records
from .config import FIELDS, planned_steps
from .execute import RUN_NOTEBOOK, execute, failure_reason, record_failure, temp_notebook, write_record
from .grid import GridError
from .processes import stale_files, wait_for_locks

CONNECT_TIMEOUT = 30  # seconds to reach an existing scheduler before giving up (exit 2, nothing written)
QUIET = logging.WARNING  # distributed's own log level in the clusters the sweep starts
LOOPBACK = "127.0.0.1:0"  # every server of a cluster the sweep starts: this machine only, a free port
ENV_DASHBOARD = "NORMLIB_DASHBOARD"  # HOST:PORT of the dashboard of a cluster the sweep starts (default LOOPBACK)
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
        import torch
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus > n:
            raise GridError(f"--gpus={gpus}: this machine has {n} CUDA device(s); "
                            + (f"allowed 1..{n}" if n else "run without --gpus, or on a cluster's GPU workers"))
        return "gpus"
    return "remote" if chosen else ""


def dashboard_address() -> str:
    """Where the dashboard of a cluster started here listens: $NORMLIB_DASHBOARD (e.g. 0.0.0.0:8787, to open it to
    the network deliberately), else this machine only; GridError unless it is HOST:PORT."""
    address = os.environ.get(ENV_DASHBOARD) or LOOPBACK
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise GridError(f"{ENV_DASHBOARD}={address!r}: allowed HOST:PORT, e.g. 127.0.0.1:8787 (this machine only) "
                        f"or 0.0.0.0:8787 (every interface); unset: this machine only, a free port")
    return address


def local_cluster(jobs: int):
    """The default: one worker of `jobs` slots inside this process (see the module docstring for why). Its HTTP
    server listens on loopback (Dask's default for an in-process worker is every interface)."""
    from distributed import LocalCluster
    return LocalCluster(processes=False, n_workers=1, threads_per_worker=jobs, memory_limit=0, silence_logs=QUIET,
                        dashboard_address=dashboard_address(), worker_dashboard_address=LOOPBACK)


def gpu_cluster(gpus: int, runs_per_gpu: int = 1):
    """One worker process per GPU, each seeing only its own (CUDA_VISIBLE_DEVICES, taken from this process's list
    when it has one, e.g. under Slurm) and declaring GPU=runs_per_gpu, with as many slots."""
    from distributed import Nanny, Scheduler, SpecCluster
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(gpus)]
    workers = {f"gpu{gpu}": {"cls": Nanny, "options": {
        "nthreads": runs_per_gpu, "resources": {"GPU": runs_per_gpu}, "env": {"CUDA_VISIBLE_DEVICES": gpu},
        "memory_limit": 0, "silence_logs": QUIET, "host": "127.0.0.1"}}  # memory is the kernels', not the worker's
        for gpu in ids[:gpus]}
    return SpecCluster(scheduler={"cls": Scheduler, "options": {"host": "127.0.0.1",
                                                                "dashboard_address": dashboard_address()}},
                       workers=workers, silence_logs=QUIET)


@contextmanager
def scratch():
    """Dask's scratch space for a cluster started here: a temporary folder of its own, removed with the cluster
    (Dask's default, <tmp>/dask-scratch-space, keeps a folder per scheduler and worker behind)."""
    import dask
    with tempfile.TemporaryDirectory(prefix="normlib-dask-") as tmp, dask.config.set({"temporary-directory": tmp}):
        yield


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
        raise GridError(f"{option}: cannot reach the scheduler ({' '.join(str(e).split())[:200]}); allowed the "
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


def epoch_events(out: Path):
    """execute's progress on a worker: each finished epoch of the run at `out` (its path under --out) as a Dask event,
    which the sweep's client receives."""
    from distributed import get_worker
    worker = get_worker()
    return lambda epoch, step, steps: worker.log_event(PROGRESS, {"out": str(out), "epoch": epoch, "step": step,
                                                                   "steps": steps})


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


def run_task(token: str, params: dict, out: Path, notebook: Path, timeout: int, lock_wait: float, probe: dict,
             source: str, record: dict = None) -> dict:
    """One run on a worker: {'status', 'reason'} as normlib.execute.execute returns them, plus, when it ran in a
    temporary folder, its 'record' and its 'notebook' text for the sweep to write. `record`: the run's complete
    record when it has one (its notebook is executed again), so a worker away from --out shows it, not trains."""
    from .slurm import job_ending
    stop = _STOPS.setdefault(token, threading.Event())
    if stop.is_set():
        return {"status": "interrupted", "reason": ""}
    source, progress = run_notebook(source), epoch_events(out)
    if sees(probe):  # a retry after its worker died: that worker's kernel holds the run lock for about 1 s more
        if not wait_for_locks(out.parent, [(None, params, out)], lock_wait, stop):
            for p in stale_files(out.parent, notebook.stem, params):  # e.g. the dead worker's temporary notebook
                p.unlink(missing_ok=True)
        status, reason = execute(params, out, notebook, timeout, stop, source, progress)
        job_ending(status, reason)  # a Slurm job cancelled under the run: the run goes to another worker
        if status == "interrupted":  # its kernel died of SIGTERM before it could remove its lock file
            locks.clear(locks.lock_path(out))
        return {"status": status, "reason": reason}
    with tempfile.TemporaryDirectory(prefix="normlib-run-") as tmp:
        here, executed = Path(tmp) / out.name, Path(tmp) / notebook.name
        if record:
            records.write_json(here, record)
        status, reason = execute(params, here, executed, timeout, stop, source, progress)
        job_ending(status, reason)
        return {"status": status, "reason": reason, "record": records.read(here),
                "notebook": executed.read_text() if executed.exists() else None}


# ---------------------------------------------------------------- in the sweep

def place(result: dict, params: dict, out: Path, notebook: Path) -> tuple:
    """(status, reason) of a run executed in a worker's temporary folder, after writing its notebook and record
    under --out as a run in place writes them: atomically, and never over a complete record."""
    if result["notebook"] is not None:
        tmp = temp_notebook(notebook)
        tmp.write_text(result["notebook"])
        os.replace(tmp, notebook)
    rec = result["record"]
    if rec is not None and result["status"] in ("ok", "failed"):
        rec["params"]["out"] = str(out)  # where the record lives, not the worker's temporary folder
        if "notebook" in rec:
            rec["notebook"] = str(notebook)
        locked = write_record(out, params, rec)
        if locked:
            return "skipped", locked
    return result["status"], result["reason"]


def outcome(future, params: dict, out: Path, notebook: Path, stop: threading.Event, timeout: int) -> tuple:
    """(status, reason) of a run's task: its result, written under --out when it ran away from it; a failed record
    when its task failed (e.g. KilledWorker: the workers running it died too often)."""
    try:
        result = future.result()
    except Exception as e:  # KilledWorker, or an error of the task itself
        if stop.is_set():
            return "interrupted", ""
        return record_failure(params, out, notebook, failure_reason(e, timeout))
    return place(result, params, out, notebook) if "record" in result else (result["status"], result["reason"])


def wait_for_a_worker(client, stop: threading.Event) -> None:
    """Return once the cluster has a worker (a batch system may start them after the sweep) or `stop` is set."""
    if not client.scheduler_info()["workers"]:
        print("waiting for the cluster's first worker", flush=True)
    while not client.scheduler_info()["workers"] and not stop.wait(1.0):  # the client refreshes it every few s
        pass


def start_order(runs: list) -> list:
    """Runs [(run id, params, out)] in the order they start: seed by seed (every cell's seed 0 first), so that a grid
    stopped midway has whole seeds of every cell; within a seed longest first (by optimizer steps), since the
    batch-size-2 runs are a large share of the work and started last they would leave the other workers idle."""
    seed = FIELDS["seed"].default
    return sorted(runs, key=lambda r: (r[1].get("seed", seed), -planned_steps(r[1])))


def submit(client, runs: list, token: str, timeout: int, lock_wait: float, probe: dict) -> dict:
    """{future: run} of the runs' tasks. A run not on the CPU asks for a GPU where workers declare GPUs, so a worker
    with GPU=K runs at most K of them at once. Runs start in start_order."""
    gpu = any("GPU" in w.get("resources", {}) for w in client.scheduler_info()["workers"].values())
    source, futures = RUN_NOTEBOOK.read_text(), {}
    ordered = start_order(runs)
    for rank, run in enumerate(ordered):  # the first ones start before the rest arrive
        rid, params, out = run
        done = records.read(out)
        future = client.submit(run_task, token, params, out, out.with_name(f"{rid}.ipynb"), timeout, lock_wait, probe,
                               source, done if records.is_done(done, params) else None, key=f"{rid}-{token}",
                               priority=len(ordered) - rank,
                               resources={"GPU": 1} if gpu and params.get("device", "auto") != "cpu" else None)
        futures[future] = run
    return futures


def run_all(client, runs: list, report, stop: threading.Event, grace: float, timeout: int = 0,
            lock_wait: float = 0.0, probe: dict = None) -> bool:
    """Submit runs [(run id, params, out)] to the cluster (which has a worker: wait_for_a_worker) and call
    report(run, status, reason) in this thread as each ends. Once `stop` is set, every worker stops this sweep's runs
    (each SIGTERMs its own kernel; queued ones return at once) and the loop waits up to `grace` seconds for them.
    Returns whether some run had not ended by then."""
    token, ended = uuid.uuid4().hex, queue.SimpleQueue()
    if stop.is_set():  # e.g. while it waited for a worker
        for run in runs:
            report(run, "interrupted", "")
        return False
    futures = submit(client, runs, token, timeout, lock_wait, probe)
    for future in futures:
        future.add_done_callback(ended.put)  # called in the client's thread: the queue hands it to this one
    left, deadline = set(futures), None
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
            continue
        left.discard(future)
        rid, params, out = futures[future]
        try:
            status, reason = outcome(future, params, out, out.with_name(f"{rid}.ipynb"), stop, timeout)
        except Exception as e:  # the sweep's own side (disk full, ...): still this run's failure only
            status, reason = "failed", f"sweep: {type(e).__name__}: {e}"
        report(futures[future], status, reason)
    return bool(left)
