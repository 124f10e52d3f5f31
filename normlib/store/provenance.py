"""Provenance of a run: library versions, host, git commit, device and data, so every number traces to its code."""
import hashlib
import os
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

LIBRARIES = ("torch", "torchvision", "numpy", "pandas", "papermill", "ipykernel")  # versions in every record
ROOT = Path(__file__).resolve().parents[2]
CODE = ("normlib", "notebooks", "bench")  # the folders whose files make a record's numbers and pages
COMMIT_VARIABLE = "NORMLIB_COMMIT"  # the commit a copied working tree was made from, as its sender names it


def code_sha256(root: Path = ROOT) -> str:
    """sha256 over the code's files (relative path and content, in path order; caches and hidden files aside). It
    names the code that ran where git cannot: a device that copies a working tree onto an older HEAD reports that
    HEAD, dirty. Two records with the same hash ran the same code."""
    h = hashlib.sha256()
    files = sorted(p for d in CODE for p in (root / d).rglob("*") if p.is_file()
                   and not any(part.startswith((".", "__pycache__")) for part in p.relative_to(root).parts))
    for path in files:
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def git_state(root: Path = ROOT) -> dict:
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
    """Where a run ran, without the device or data: versions, host, the Slurm job it ran in ($SLURM_JOB_ID; None
    outside Slurm), git commit and whether the tree was dirty, the code's hash, and the commit that whoever copied the
    tree named in $NORMLIB_COMMIT (None if unset)."""
    return {**versions(), "host": socket.gethostname(), "slurm_job_id": os.environ.get("SLURM_JOB_ID") or None,
            **git_state(), "code_sha256": code_sha256(), "git_commit_given": os.environ.get(COMMIT_VARIABLE) or None}


def provenance(device: dict, data) -> dict:
    """Where a run ran: environment() plus torch's build, the device (as normlib.run.device.describe gives it) and the
    data."""
    import torch
    import torchvision
    return {**environment(), "torch": torch.__version__, "torchvision": torchvision.__version__,  # with build tags
            **device, "data_source": data.source, "data_sha256": data.sha256}
