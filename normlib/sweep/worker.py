"""What a sweep's task does on a Dask worker: execute the notebooks of a run or a stack (its first kernel, told the
stack in its `stack` parameter, trains it), in place where the worker sees the grid folder, else in a temporary folder
whose record and notebook it returns; forward each run's progress (its progress file, normlib.store.progress) as Dask
events; stop the sweep's runs when told to. The sweep's side: normlib.sweep.dispatch."""
import json
import os
import tempfile
import threading
from pathlib import Path

from .. import config
from ..store import locks, records
from .execute import RUN_NOTEBOOK, execute, record_failure
from .grid import Task
from ..store.processes import stale_files, wait_for_locks

PROGRESS = "normlib-progress"  # the Dask event topic of runs' progress: {"out", "event", "epoch", "step", "steps"}
_STOPS = {}  # per worker process: sweep token -> Event that stop_runs sets and that sweep's runs watch


async def stop_runs(token: str) -> None:
    """Stop this worker's runs of the sweep `token` (each SIGTERMs its own kernel) and any that start later. A
    coroutine, so that Client.run can send it without waiting for every worker's answer."""
    _STOPS.setdefault(token, threading.Event()).set()


def progress_events(outs: list):
    """progress(line) for execute: each progress line of a task's kernel as a Dask event for each of its runs (their
    paths under --out), which the sweep's client receives."""
    from distributed import get_worker
    worker = get_worker()

    def send(line: dict):
        for out in outs:
            worker.log_event(PROGRESS, {**line, "out": str(out)})
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


def sees(probe: dict) -> bool:
    """Whether this worker sees the grid folder itself (normlib.sweep.dispatch.probe)."""
    try:
        st = os.stat(probe["path"]) if probe else None
    except OSError:
        return False
    return st is not None and (st.st_ino, st.st_mtime_ns) == (probe["ino"], probe["mtime_ns"])


def stack_parameter(task: Task, places: dict) -> dict:
    """{'stack': JSON [{seed, out}]} naming a task's stack to its kernels (where this worker writes its runs), or {}
    for a run alone: what its runs differ in (config.PER_RUN); the rest is each kernel's own parameters."""
    if not task.stack:
        return {}
    named = [{**{k: config.RunConfig(**r.params).dict()[k] for k in config.PER_RUN}, "out": str(places[r.id][0])}
             for r in task.stack]
    return {"stack": json.dumps(named)}


def execute_task(task: Task, places: dict, timeout: int, stop: threading.Event, source, progress) -> list:
    """[{'status', 'reason'}] of each run of a task, its notebook executed at places[run id] = (record, notebook),
    in order, with its stack named in its `stack` parameter: the first kernel trains the stack. After a run that did
    not end ok, a later run without a complete record is not executed (its kernel would train the stack again): it
    takes that status, a failure with a failed record that names the run."""
    from .slurm import job_ending
    stack = stack_parameter(task, places)
    results, first = [], None  # first: (run id, result) of the first run that did not end ok
    for run in task.runs:
        out, notebook = places[run.id]
        if first and not records.is_done(records.read(out), run.params):
            status, reason = first[1]["status"], first[1]["reason"]
            if status == "failed":
                status, reason = record_failure(run.params, out, notebook, f"its stack failed in {first[0]}: {reason}")
        else:
            # a Slurm job cancelled under the run: the task goes to another worker, with no failed record
            status, reason = execute({**run.params, **stack}, out, notebook, timeout, stop, source, progress,
                                     failing=job_ending)
        results.append({"status": status, "reason": reason})
        first = first or ((run.id, results[-1]) if status != "ok" else None)
    return results


def run_task(token: str, task: Task, timeout: int, lock_wait: float, probe: dict, source: str,
             done: dict = None) -> list:
    """A task on a worker: for each of its runs {'status', 'reason'} as normlib.sweep.execute.execute returns them,
    plus, when it ran in a temporary folder, its 'record' and its 'notebook' text for the sweep to write. `done`:
    {run id: complete record} of runs whose notebook is executed again, so a worker away from --out shows, not trains
    them."""
    stop = _STOPS.setdefault(token, threading.Event())
    if stop.is_set():
        return [{"status": "interrupted", "reason": ""} for _ in task.runs]
    source, progress = run_notebook(source), progress_events([r.out for r in task.runs])
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
