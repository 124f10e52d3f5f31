"""Run records: one JSON file per run, written atomically, with the provenance that makes it traceable."""
import fcntl
import json
import os
import platform
import socket
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

SCHEMA = 1
REQUIRED = ("schema", "status", "params", "history", "provenance")
LIBRARIES = ("torch", "torchvision", "numpy", "pandas", "papermill", "ipykernel")  # versions in every record


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path, obj) -> None:
    """Write via a temporary file and rename, so a reader sees the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(obj, indent=1, allow_nan=True))
            f.flush()
            os.fsync(f.fileno())  # the rename must not reach the disk before the data does
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read(path) -> dict:
    """The record at path, or None when it is missing, half-written or not a record."""
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and all(k in rec for k in REQUIRED) else None


def is_done(rec: dict, params: dict) -> bool:
    """A finished, successful record of exactly these parameters (the `out` path aside), with its epochs 1..n."""
    if not rec or rec.get("status") != "ok" or rec.get("schema") != SCHEMA or "final_acc" not in rec:
        return False
    from .config import RunConfig
    full = lambda p: {**RunConfig(**p).dict(), "out": ""}  # noqa: E731  (defaults filled in; `out` aside)
    try:
        epochs = [h["epoch"] for h in rec["history"]]
        return full(rec["params"]) == full(params) and epochs == list(range(1, len(epochs) + 1)) and epochs != []
    except (TypeError, KeyError):  # a record from another version of the parameters
        return False


def failed(params: dict, error: str, started: str = None, **extra) -> dict:
    """The record of a run that did not finish: its parameters, the reason and what environment it ran in."""
    return {"schema": SCHEMA, "status": "failed", "error": error, "params": params, "history": [], **extra,
            "provenance": {**environment(), "started": started, "ended": now()}}


def git_state(root: Path = Path(__file__).resolve().parents[1]) -> dict:
    """The commit of the code and whether tracked code differs from it (changed results under reports/ do not
    count)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports"],
                               cwd=root, capture_output=True, text=True, timeout=10)  # results are not code
        if commit.returncode:
            return {"git_commit": None, "git_dirty": None}
        return {"git_commit": commit.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def device_name(device) -> str:
    import torch
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or "cpu"


def versions() -> dict:
    """Versions of Python and of the libraries a result depends on (None for one not installed)."""
    out = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment() -> dict:
    """Where a run ran, without the device or data: versions, host, git commit and whether the tree was dirty."""
    return {**versions(), "host": socket.gethostname(), **git_state()}


def provenance(device, data) -> dict:
    import torch
    import torchvision
    return {**environment(), "torch": torch.__version__, "torchvision": torchvision.__version__,  # with build tags
            "torch_cuda": torch.version.cuda, "device": device_name(device),
            "torch_threads": torch.get_num_threads(), "data_source": data.source, "data_sha256": data.sha256}


class Locked(RuntimeError):
    """Another process holds the lock: it is executing this run (or this sweep) now."""


def lock_path(out) -> Path:
    return Path(out).with_name(f".{Path(out).name}.lock")


@contextmanager
def lock(path, what: str):
    """Hold an exclusive flock on `path`, which then holds the holder's pid; Locked when another process holds it.
    The OS releases it when the holder dies, even on SIGKILL, so a stale lock file never blocks anyone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:  # not "w": that would truncate the holder's pid before we know we hold it
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(path)
            raise Locked(f"{what} is being executed by another process (pid {holder or '?'})") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        yield


def run_lock(out):
    """Lock of one run, held by the process that trains it (in a sweep: its notebook's kernel)."""
    return lock(lock_path(out), f"out={str(out)!r}: this run")


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
