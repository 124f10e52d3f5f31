"""The sweep's side of a cluster: submit the tasks of a grid (normlib.sweep.worker.run_task) in their start order, each
asking for a GPU where workers declare them, collect each run's outcome as its task ends (writing under --out what a
worker sent back from a temporary folder), stop them on a signal, and end the runs left when the backend says no
worker can come. Where the cluster comes from: normlib.sweep.backends."""
import queue
import sys
import threading
import time
import uuid
from pathlib import Path

from ..store import locks, records
from ..config import FIELDS, planned_steps
from .execute import RUN_NOTEBOOK, failure_reason, record_failure, temp_notebook, write_record
from .grid import Run, Task
from .worker import run_task, stop_runs

GONE_CHECK = 5.0  # seconds between two checks, while the cluster has no worker, that it can still get one


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
    """Why the cluster has no worker and can get none (gone(client): its backend's Backend.gone), or ''."""
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
    """Submit tasks (normlib.sweep.grid.Task) to the cluster (which has a worker: wait_for_a_worker) and call
    report(run, status, reason) in this thread for each run of a task as it ends. Once `stop` is set, every worker
    stops this sweep's tasks (each SIGTERMs its own kernel; queued ones return at once) and the loop waits up to
    `grace` seconds for them. Returns whether some task had not ended by then. gone(client), if given, says why a
    cluster without a worker can get none (its backend's Backend.gone, e.g. every Slurm worker job has ended), or '':
    then the tasks left are cancelled and each of their runs reported as 'left', with that reason."""
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
