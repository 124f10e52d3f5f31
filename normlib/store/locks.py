"""File locks: one exclusive flock per run (held by the process that trains it) and per sweep folder. The OS
releases a lock when its holder dies, even on SIGKILL, so a stale lock file never blocks anyone."""
import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from .records import named


class Locked(RuntimeError):
    """Another process holds the lock: it is executing this run (or this sweep) now."""


def lock_path(out) -> Path:
    return Path(out).with_name(f".{Path(out).name}.lock")


def sweep_lock_path(folder) -> Path:
    """Lock of a grid folder, held by the sweep that runs it."""
    return Path(folder) / ".sweep.lock"


@contextmanager
def lock(path, what: str):
    """Hold an exclusive flock on `path`, which then holds the holder's pid; Locked when another process holds it.
    The OS releases it when the holder dies, even on SIGKILL, so a stale lock file never blocks anyone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with open(path, "a+") as f:  # not "w": that would truncate the holder's pid before we know we hold it
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = lock_holder(path)
                raise Locked(f"{what} is being executed by another process (pid {holder or '?'})") from None
            if not _same_file(f, path):  # its holder removed it between our open and our flock: take the new one
                continue
            try:  # from here on the file is ours to remove, also when writing the pid fails (a full disk)
                _write_pid(f, path)
                yield
            finally:
                path.unlink(missing_ok=True)  # while still held: no lock file stays behind
            return


def _write_pid(f, path: Path) -> None:
    try:
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
    except OSError as e:
        raise named(e, path) from None


def _same_file(f, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(f.fileno()), path.stat())
    except FileNotFoundError:
        return False


def run_lock(out):
    """Lock of one run, held by the process that trains it (in a sweep: its notebook's kernel)."""
    return lock(lock_path(out), f"out={str(out)!r}: this run")


def clear(path, seconds: float = 5.0) -> bool:
    """Remove a lock file that its holder could not remove (a process killed by a signal releases its flock but
    leaves the file), taking the lock to do so; waits up to `seconds` for a dying holder. Returns whether no file of
    an unheld lock stays."""
    deadline = time.monotonic() + seconds
    while Path(path).exists():
        try:
            with lock(path, "a stale lock"):  # removes the file on release
                pass
        except Locked:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
    return True


def lock_holder(path) -> int:
    """Pid written by the last holder of a lock file (it may have died since), or None."""
    try:
        return int(Path(path).read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def is_locked(out) -> bool:
    """Whether some live process holds the run lock of `out` now."""
    path = lock_path(out)
    if not path.exists():
        return False
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False
