"""Temporary files of normlib's processes: Dask's scratch space and the kernels' connection files (each holds its
kernel's HMAC key) go under one folder per process, <tmp>/normlib-<uid>/<pid>-<random>/, which a flock held for the
process's life marks as in use. A process that exits removes its folder; one killed by SIGKILL leaves it, with its
orphaned kernels' connection files, and the next process to take a folder (the next sweep) removes every folder
whose flock no process holds (the OS releases a flock when its holder dies)."""
import atexit
import fcntl
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

OWNER = ".owner.lock"  # in each process's folder: flocked by that process for its whole life
UNCLAIMED_AGE = 60.0  # seconds after which a folder without OWNER (its process died creating it) is removed
_MINE = {}  # this process's folder: {"pid", "path", "lock" (the open file holding the flock)}


def root() -> Path:
    """<tmp>/normlib-<uid>: this user's only (mode 0700), since connection files hold kernels' keys."""
    path = Path(tempfile.gettempdir()) / f"normlib-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{path}: not a folder of this user's alone (mode 0700); remove it or set TMPDIR")
    return path


def folder() -> Path:
    """This process's scratch folder, created and locked on first use (again in a forked child), removed at exit;
    its first use removes those of processes that are gone."""
    pid = os.getpid()
    if _MINE.get("pid") != pid:
        clean()
        path = Path(tempfile.mkdtemp(prefix=f"{pid}-", dir=root()))
        lock = open(path / OWNER, "w")  # kept open (and so flocked) until this process ends
        fcntl.flock(lock, fcntl.LOCK_EX)
        _MINE.update(pid=pid, path=path, lock=lock)
        atexit.register(_remove, path, pid)
    return _MINE["path"]


def _remove(path: Path, pid: int) -> None:
    if os.getpid() == pid:  # not a forked child's exit
        shutil.rmtree(path, ignore_errors=True)


def clean() -> int:
    """Remove the scratch folders of processes that are gone (their flock is free); returns how many."""
    removed = 0
    for path in root().iterdir():
        if path == _MINE.get("path") or not path.is_dir():
            continue
        try:
            with open(path / OWNER) as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released as the file closes
                shutil.rmtree(path, ignore_errors=True)
        except BlockingIOError:  # its process is alive
            continue
        except FileNotFoundError:  # being created or removed now, or its process died creating it
            if not path.exists() or time.time() - path.stat().st_mtime < UNCLAIMED_AGE:
                continue
            shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed
