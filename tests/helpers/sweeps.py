"""Helpers of the sweep tests (test_sweep, test_cluster, the conftest's smoke grid): tiny grids and notebooks, sweeps
started as a user starts them, and what a grid folder holds afterwards."""
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import yaml

from normlib.store import locks, records

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(data="synthetic", train_size=100, test_size=50, width=8, num_blocks=1, diagnostics=False, batch_size=10)


def write_grid(folder: Path, name: str, fixed: dict, grid: dict, jobs: int = 2) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"description": f"test grid {name}", "jobs": jobs, "fixed": fixed, "grid": grid}))
    return path


def complete_record(params: dict) -> dict:
    """A record that counts as complete for `params` (records.is_done), of one made-up epoch."""
    rec = records.failed(params, "")
    return {**rec, "status": "ok", "final_acc": 1.0, "best_acc": 1.0, "steps": 10, "error": None,
            "history": [{"epoch": 1, "train_acc": 1.0, "test_acc": 1.0}],
            "provenance": {**rec["provenance"], "wall_seconds": 1.0, "device": "cpu"}}


def finished_notebook(path: Path) -> None:
    """An executed notebook as papermill leaves it when every cell ran."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.cells[0].metadata["papermill"] = {"status": "completed"}
    nbformat.write(nb, path)


def start_sweep(grid: Path, out: Path, log: Path, *args, env: dict = None) -> subprocess.Popen:
    """The sweep's command in the background (`env`: variables set for it beside this process's)."""
    with open(log, "w") as f:  # a file, not a pipe: nobody has to drain it while we wait
        return subprocess.Popen([sys.executable, "-m", "normlib.sweep", str(grid), "--out", str(out), *args],
                                cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})


def patient(seconds: float) -> float:
    """A timeout of `seconds` on an idle machine, stretched by how busy this one is (its load per core over the last
    minute, when above 1): a test fails when the work hangs, not because other processes share the CPUs."""
    return seconds * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def run_sweep(grid: Path, out: Path, *args, timeout: float = 400) -> subprocess.CompletedProcess:
    """The sweep's command; `timeout`: seconds on an idle machine (patient)."""
    return subprocess.run([sys.executable, "-m", "normlib.sweep", str(grid), "--out", str(out), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=patient(timeout))


def wait_until(condition, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the sweep ended (rc {proc.returncode}) first:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


def statuses(runs: Path) -> dict:
    return {p.stem: (records.read(p) or {}).get("status", "unreadable") for p in runs.glob("*.json")}


def locked_runs(runs: Path) -> list:
    """Runs whose lock some live process holds now."""
    outs = [runs / p.name[1:].removesuffix(".lock") for p in runs.glob(".*.json.lock")]
    return [out.stem for out in outs if locks.is_locked(out)]


def leftovers(folder: Path) -> list:
    """Temporary files and checkpoints (lock files are meant to stay: they are empty of meaning once unlocked)."""
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".ckpt.pt"))


def tiny_notebook(path: Path, code: str) -> Path:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    params = nbformat.v4.new_code_cell('out = ""\ndata = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)
    return path




def let_in(addresses: list, wait: float = 15) -> list:
    """Those of the servers at `addresses` (HOST:PORT) that accept a Dask client without the sweep's credentials:
    over plain TCP, or over TLS with a certificate of another authority (Security.temporary). An attempt still
    waiting after `wait` seconds got nothing (an HTTP server reads a plain client's bytes for ever)."""
    import threading

    from distributed import Client
    from distributed.security import Security
    accepted = []

    def attempt(url, security):
        try:
            Client(url, security=security, timeout=3).close()
        except (OSError, ValueError):  # refused: the TLS handshake fails, the connection closes, a timeout
            return
        accepted.append(url)
    tries = [threading.Thread(target=attempt, args=(url, security), daemon=True)
             for address in addresses
             for url, security in ((f"tcp://{address}", None), (f"tls://{address}", Security.temporary()))]
    for t in tries:
        t.start()
    for t in tries:
        t.join(wait)
    return accepted
