"""Processes of a sweep: signals, temporary files a killed sweep left, run locks held by others. The policy (one
sweep per grid folder, run locks held by kernels, never killing what it did not start) is in docs/sweep.md; each run
stops its own kernel (normlib.sweep.execute.stop_kernels_on)."""
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from . import locks, records

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


AUTOGROUP = Path("/proc/self/autogroup")  # Linux with sched_autogroup: the CPU share of this process's session


def keep_niceness(autogroup: Path = AUTOGROUP) -> bool:
    """Give this process's session the process's own nice value. Jupyter starts each kernel in a session of its own,
    and under Linux's autogroup scheduling sessions share the CPU by their autogroup's nice, not their processes':
    without this, a run of a sweep started under `nice -n 19` takes as much CPU as the foreground. Only a positive
    nice is given (lowering it needs privileges); True when it was given."""
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    if nice <= 0 or not autogroup.exists():
        return False
    try:
        autogroup.write_text(str(nice))
    except OSError:  # not allowed here (a container's /proc): the run goes on at the session's share
        return False
    return True


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


def stale_files(run, keep_checkpoint: bool = False) -> list:
    """The temporary files a killed process left behind for one run (normlib.sweep.grid.Run), and its checkpoint once it
    is finished unless keep_checkpoint (a finished run of a stack that has runs left to train: the stack resumes
    with it), or [] while a process holds its lock. A finished run whose notebook is incomplete is executed again by
    the sweep (normlib.sweep.execute.notebook_complete), so its temporary notebook is not kept either."""
    if locks.is_locked(run.out):
        return []
    runs_dir, ckpt = run.out.parent, run.out.with_name(f"{run.out.name}.ckpt.pt")
    stale = [*runs_dir.glob(f".{run.id}.tmp*.ipynb"), *runs_dir.glob(f".{run.out.name}.tmp*"),
             ckpt.with_name(f"{ckpt.name}.tmp")]
    if not keep_checkpoint and records.is_done(records.read(run.out), run.params):
        stale.append(ckpt)
    return [p for p in stale if p.exists()]


def clean_stale(folder: Path, stacks: list) -> int:
    """Remove the temporary files a killed sweep left behind (and the checkpoints of finished runs whose stack is
    finished), for runs whose lock no process holds; stacks: normlib.sweep.grid.stacks. Returns how many."""
    removed = []
    for stack in stacks:
        unfinished = not all(records.is_done(records.read(r.out), r.params) for r in stack)
        removed += [p for r in stack for p in stale_files(r, keep_checkpoint=unfinished)]
    removed += [*folder.glob(".summary.tmp*.ipynb"), *folder.glob(".report.html.tmp*"), *folder.glob(".grid.json.tmp*")]
    for p in removed:
        p.unlink(missing_ok=True)
    return len(removed)


def wait_for_locks(runs: list, seconds: float, stop: threading.Event) -> list:
    """Wait up to `seconds` for the run locks other processes hold on `runs` (normlib.sweep.grid.Run); returns those
    still held."""
    locked = [r for r in runs if locks.is_locked(r.out)]
    if locked:
        pids = sorted({str(locks.lock_holder(locks.lock_path(r.out)) or "?") for r in locked})
        print(f"waiting up to {seconds:g} s for {len(locked)} run(s) locked by other processes (pid {', '.join(pids)};"
              f" e.g. kernels orphaned by a killed sweep)", flush=True)
    deadline = time.monotonic() + seconds
    while locked and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.25)
        locked = [r for r in locked if locks.is_locked(r.out)]
    return locked
