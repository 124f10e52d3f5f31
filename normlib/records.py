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
from pathlib import Path

SCHEMA = 1
REQUIRED = ("schema", "status", "params", "history", "provenance")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path, obj) -> None:
    """Write via a temporary file and rename, so a reader sees the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, allow_nan=True))
    os.replace(tmp, path)


def read(path) -> dict:
    """The record at path, or None when it is missing, half-written or not a record."""
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and all(k in rec for k in REQUIRED) else None


def is_done(rec: dict, params: dict) -> bool:
    """A finished, successful record of exactly these parameters (the `out` path aside)."""
    if not rec or rec.get("status") != "ok" or rec.get("schema") != SCHEMA:
        return False
    from .config import RunConfig
    full = lambda p: {**RunConfig(**p).dict(), "out": ""}  # noqa: E731  (defaults filled in; `out` aside)
    try:
        return full(rec["params"]) == full(params) and len(rec["history"]) > 0
    except TypeError:  # a record from another version of the parameters
        return False


def git_state() -> dict:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
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


def provenance(device, data) -> dict:
    import numpy
    import torch
    import torchvision
    return {"python": sys.version.split()[0], "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "device": device_name(device), "torch_threads": torch.get_num_threads(),
            "host": socket.gethostname(), "data_source": data.source, "data_sha256": data.sha256, **git_state()}


@contextmanager
def run_lock(out):
    """Hold an exclusive lock for a run's output; the OS releases it when the process dies, even on SIGKILL."""
    path = Path(out).with_name(f".{Path(out).name}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"out={str(out)!r}: this run is already being executed by another process") from None
        yield


def is_locked(out) -> bool:
    path = Path(out).with_name(f".{Path(out).name}.lock")
    if not path.exists():
        return False
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False
