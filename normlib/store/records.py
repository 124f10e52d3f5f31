"""Run records: one JSON file per run, written atomically; provenance.py says what goes in their provenance."""
import json
import math
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ..config import identity
from .provenance import environment

SCHEMA = 1
REPORTS = Path(__file__).resolve().parents[2] / "reports"  # the repository's reports root: one folder per grid
REQUIRED = ("schema", "status", "params", "history", "provenance")
TIMINGS = ("train_seconds", "eval_seconds")  # an epoch's wall times: the only entries that differ between reruns
DIVERGED_LOSS = 10 * math.log(10)  # a final training loss above ten times chance level's (ln 10: every class
#   equally likely) is a diverged run's (a run that learns nothing stays near ln 10; one that diverged reached 1e28)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def atomically(path, tmp=None):
    """Yields a temporary file beside `path` (default .<name>.tmp<pid>) to write; a clean exit renames it onto `path`,
    so a reader sees the old file or the whole new one. Any failure removes it, so nothing half-written stays (a
    full disk), and an OSError names the file."""
    path = Path(path)
    tmp = Path(tmp) if tmp else path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise named(e, tmp) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path, obj) -> None:
    """obj as indented JSON at path, atomically and synced to disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomically(path) as tmp, open(tmp, "w") as f:
        f.write(json.dumps(obj, indent=1, allow_nan=True))
        f.flush()
        os.fsync(f.fileno())  # the rename must not reach the disk before the data does


def named(e: OSError, path) -> OSError:
    """`e` naming the file it is about: a failed write or flush (a full disk) names none, and without it the reason
    would not say which disk is full."""
    return e if e.filename else type(e)(e.errno, e.strerror, str(path))


def read(path) -> dict:
    """The record at path, or None when it is missing, half-written, not a record or nested too deeply to read."""
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return rec if isinstance(rec, dict) and all(k in rec for k in REQUIRED) else None


def is_done(rec: dict, params: dict) -> bool:
    """A finished, successful record of exactly these parameters (where it is written and how often it was saved
    aside: config.identity), with its epochs 1..n."""
    if not rec or rec.get("status") != "ok" or rec.get("schema") != SCHEMA or "final_acc" not in rec:
        return False
    try:
        epochs = [h["epoch"] for h in rec["history"]]
        ours = identity(params)
        return (ours is not None and identity(rec["params"]) == ours and epochs == list(range(1, len(epochs) + 1))
                and epochs != [])
    except (TypeError, KeyError):  # a record from another version of the parameters
        return False


def diverged(history: list) -> str:
    """Why a finished run counts as diverged, from its history alone (so records written before this rule are judged
    by it too), or '': its final epoch's training loss is not finite or is above DIVERGED_LOSS."""
    loss = history[-1].get("train_loss") if history and isinstance(history[-1], dict) else None
    if not isinstance(loss, (int, float)) or (math.isfinite(loss) and loss <= DIVERGED_LOSS):
        return ""
    return f"diverged: final train loss {loss:.3g}; allowed a finite loss <= {DIVERGED_LOSS:.1f} (10 x ln 10)"


def untimed(history: list) -> list:
    """A run's history without its timings: what a rerun of the run on the same machine type reproduces bit for
    bit."""
    return [{k: v for k, v in h.items() if k not in TIMINGS} for h in history]


def reason(e: BaseException, limit: int = 300) -> str:
    """Why something failed, as a record's `error` and the sweep's lines state it: the exception's type and its
    message on one line, at most `limit` characters of message."""
    return f"{type(e).__name__}: {' '.join(str(e).split())[:limit]}".strip(": ")


def failed(params: dict, error: str, started: str = None, **extra) -> dict:
    """The record of a run that did not finish: its parameters, the reason and what environment it ran in."""
    return {"schema": SCHEMA, "status": "failed", "error": error, "params": params, "history": [], **extra,
            "provenance": {**environment(), "started": started, "ended": now()}}
