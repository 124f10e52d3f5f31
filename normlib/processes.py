"""Processes of a sweep: signals, temporary files a killed sweep left, run locks held by others. The policy (one
sweep per grid folder, run locks held by kernels, never killing what it did not start) is in docs/sweep.md; each run
stops its own kernel (normlib.execute.stop_kernels_on)."""
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from . import locks, records

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


@contextmanager
def stop_on_signals(stop: threading.Event):
    """On SIGINT or SIGTERM set `stop` (and stop.signum); a second signal exits at once. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            os._exit(SIGNAL_EXIT.get(signum, 1))
        stop.signum = signum
        stop.set()

    previous = {s: signal.signal(s, handler) for s in SIGNAL_EXIT}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def stale_files(runs_dir: Path, rid: str, params: dict) -> list:
    """The temporary files a killed process left behind for one run (and its checkpoint once it is finished), or []
    while a process holds its lock. A finished run whose notebook is incomplete is executed again by the sweep
    (normlib.execute.notebook_complete), so its temporary notebook is not kept either."""
    out = runs_dir / f"{rid}.json"
    if locks.is_locked(out):
        return []
    stale = [*runs_dir.glob(f".{rid}.tmp*.ipynb"), *runs_dir.glob(f".{rid}.json.tmp*"),
             runs_dir / f"{rid}.json.ckpt.pt.tmp"]
    if records.is_done(records.read(out), params):
        stale.append(runs_dir / f"{rid}.json.ckpt.pt")
    return [p for p in stale if p.exists()]


def clean_stale(folder: Path, runs: list) -> int:
    """Remove the temporary files a killed sweep left behind (and checkpoints of finished runs), for runs whose lock
    no process holds; returns how many."""
    removed = [p for rid, params in runs for p in stale_files(folder / "runs", rid, params)]
    removed += [*folder.glob(".summary.tmp*.ipynb"), *folder.glob(".report.html.tmp*"), *folder.glob(".grid.json.tmp*")]
    for p in removed:
        p.unlink(missing_ok=True)
    return len(removed)


def wait_for_locks(runs_dir: Path, pending: list, seconds: float, stop: threading.Event) -> list:
    """Wait up to `seconds` for the run locks other processes hold on pending runs; returns those still held."""
    locked = [r for r in pending if locks.is_locked(r[2])]
    if locked:
        pids = sorted({str(locks.lock_holder(locks.lock_path(r[2])) or "?") for r in locked})
        print(f"waiting up to {seconds:g} s for {len(locked)} run(s) locked by other processes (pid {', '.join(pids)};"
              f" e.g. kernels orphaned by a killed sweep)", flush=True)
    deadline = time.monotonic() + seconds
    while locked and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.25)
        locked = [r for r in locked if locks.is_locked(r[2])]
    return locked
