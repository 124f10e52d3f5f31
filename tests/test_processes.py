"""What a killed sweep leaves behind is removed by the next one, except the files of a run another process holds;
a run in a session of its own keeps the sweep's nice."""
import os
import subprocess
import sys

import pytest
from helpers.constructed import write_records

from normlib.store import locks, processes
from normlib.sweep.grid import Run

RUNS = {"done": ({"seed": 0}, [50.0]), "held": ({"seed": 1}, [50.0])}


def test_stale_files_are_removed_unless_their_run_is_locked(tmp_path):
    write_records(tmp_path, RUNS)
    runs = tmp_path / "runs"
    (runs / "held.json").unlink()  # a run another process is training now
    left = [runs / ".done.tmp123.ipynb", runs / ".done.json.tmp123", runs / "done.json.ckpt.pt.tmp",
            runs / "done.json.ckpt.pt", tmp_path / ".summary.tmp9.ipynb", tmp_path / ".report.html.tmp9"]
    kept = [runs / ".held.tmp7.ipynb", runs / "held.json.ckpt.pt"]
    for p in left + kept:
        p.write_text("left by a killed sweep")
    stacks = [(Run(rid, params, runs / f"{rid}.json"),) for rid, (params, _) in RUNS.items()]
    with locks.run_lock(runs / "held.json"):
        assert processes.clean_stale(tmp_path, stacks) == len(left)
    assert not any(p.exists() for p in left) and all(p.exists() for p in kept)
    assert (runs / "done.json").exists()  # the record stays; only its finished run's checkpoint went


def test_a_niced_process_gives_its_session_its_nice(tmp_path, monkeypatch):
    group = tmp_path / "autogroup"
    group.write_text("/autogroup-1 nice 0\n")
    monkeypatch.setattr(os, "getpriority", lambda which, who: 19)
    assert processes.keep_niceness(group) and group.read_text() == "19"
    assert not processes.keep_niceness(tmp_path / "absent")  # no autogroup scheduling: nothing to do
    assert not processes.keep_niceness(tmp_path)  # a write that fails: the run goes on
    monkeypatch.setattr(os, "getpriority", lambda which, who: 0)
    assert not processes.keep_niceness(group)  # not niced: the session keeps its share


def test_a_kernel_in_its_own_session_keeps_the_sweeps_nice():
    """As Jupyter starts a kernel: a new session under `nice`; the session's CPU share takes the process's nice."""
    if not processes.AUTOGROUP.exists():
        pytest.skip("this kernel has no autogroup scheduling (/proc/self/autogroup)")
    code = "from normlib.store import processes; print(processes.keep_niceness(), open('/proc/self/autogroup').read())"
    out = subprocess.run(["nice", "-n", "7", sys.executable, "-c", code], capture_output=True, text=True,
                         start_new_session=True, check=True).stdout
    if out.startswith("False"):
        pytest.skip(f"this machine refuses to set a session's nice: {out.strip()}")
    nice = min(os.getpriority(os.PRIO_PROCESS, 0) + 7, 19)  # nice adds to this process's own
    assert out.startswith("True") and out.rstrip().endswith(f"nice {nice}")
