"""Sweeps: bad input refused before anything is written, faults isolated, kills resumed, the smoke grid end to end."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from normlib import locks, records, sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(data="synthetic", train_size=100, test_size=50, width=8, num_blocks=1, diagnostics=False, batch_size=10)


def write_grid(folder: Path, name: str, fixed: dict, grid: dict, jobs: int = 2) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"description": f"test grid {name}", "jobs": jobs, "fixed": fixed, "grid": grid}))
    return path


def start_sweep(grid: Path, out: Path, log: Path, *args) -> subprocess.Popen:
    with open(log, "w") as f:  # a file, not a pipe: nobody has to drain it while we wait
        return subprocess.Popen([sys.executable, "-m", "normlib.sweep", str(grid), "--out", str(out), *args],
                                cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)


def run_sweep(grid: Path, out: Path, *args, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "normlib.sweep", str(grid), "--out", str(out), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


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


# ---------------------------------------------------------------- faults inside one run (execute, tiny notebooks)

def tiny_notebook(path: Path, code: str) -> Path:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    params = nbformat.v4.new_code_cell('out = ""\ndata = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("case,code,timeout,reason", [
    ("exception", "raise MemoryError('cannot allocate 10 GiB')", 0, "MemoryError: cannot allocate 10 GiB"),
    ("killed kernel", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 0,
     "DeadKernelError: the kernel died (killed by a signal, e.g. by the OS when out of memory)"),
    ("cell past its timeout", "import time; time.sleep(60)", 2, "CellTimeoutError: a cell ran past --timeout=2 s"),
    ("no record written", "x = 1", 0, "the notebook finished without writing a complete record"),
])
def test_a_failing_notebook_gets_a_failed_record_and_keeps_its_notebook(tmp_path, case, code, timeout, reason):
    source = tiny_notebook(tmp_path / "source.ipynb", code)
    out, notebook = tmp_path / "runs" / "r.json", tmp_path / "runs" / "r.ipynb"
    out.parent.mkdir()
    assert sweep.execute({"seed": 3}, out, notebook, timeout, source=source) == ("failed", reason)
    rec = records.read(out)
    assert rec["status"] == "failed" and rec["error"] == reason and rec["params"]["seed"] == 3
    assert rec["notebook"] == str(notebook) and rec["provenance"]["started"] and rec["provenance"]["git_commit"]
    assert nbformat.read(notebook, as_version=4).cells  # the executed notebook, showing how far it got
    assert leftovers(tmp_path) == []


def test_a_run_locked_by_another_process_is_skipped_without_a_record(tmp_path):
    source = tiny_notebook(tmp_path / "source.ipynb", "from normlib import locks\n"
                                                      "with locks.run_lock(out): pass")
    out = tmp_path / "r.json"
    with locks.run_lock(out):
        status, reason = sweep.execute({}, out, tmp_path / "r.ipynb", source=source)
    assert status == "skipped" and "another process" in reason
    assert not out.exists() and not (tmp_path / "r.ipynb").exists()


def test_malicious_string_arrives_as_the_same_string(tmp_path):
    pwned = tmp_path / "pwned"
    value = f'x"); open({str(pwned)!r}, "w"); ("\\'
    source = tiny_notebook(tmp_path / "source.ipynb", "import json; json.dump(data, open(out + '.value', 'w'))")
    sweep.execute({"data": value}, tmp_path / "r.json", tmp_path / "r.ipynb", source=source)
    assert json.loads((tmp_path / "r.json.value").read_text()) == value
    assert not pwned.exists()


# ---------------------------------------------------------------- locks between processes (in process, no kernels)

def test_second_sweep_of_the_same_folder_is_refused(tmp_path, capsys):
    grid = write_grid(tmp_path, "busy", TINY, {"seed": [0]})
    with locks.lock(tmp_path / "reports" / "busy" / ".sweep.lock", "x"):
        assert sweep.main([str(grid), "--out", str(tmp_path / "reports"), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert f"grid 'busy' in {tmp_path / 'reports' / 'busy'} is being executed by another process (pid {os.getpid()})" \
           in err
    assert not (tmp_path / "reports" / "busy" / "runs" / "seed0.ipynb").exists()


def test_run_locked_elsewhere_is_waited_for_then_skipped(tmp_path, capsys):
    grid = write_grid(tmp_path, "held", TINY, {"seed": [0]})
    out = tmp_path / "reports" / "held" / "runs" / "seed0.json"
    with locks.run_lock(out):
        code = sweep.main([str(grid), "--out", str(tmp_path / "reports"), "--no-report", "--lock-wait", "0.5"])
    assert code == 1
    text = capsys.readouterr().out
    assert "waiting up to 0.5 s for 1 run(s) locked by other processes" in text
    assert f"SKIPPED seed0: its run lock is held by pid {os.getpid()}" in text
    assert not out.exists() and not out.with_suffix(".ipynb").exists()  # neither run twice nor marked failed


def test_run_finished_by_the_lock_holder_is_not_run_again(tmp_path, capsys):
    grid = write_grid(tmp_path, "orphan", TINY, {"seed": [0]})
    out = tmp_path / "reports" / "orphan" / "runs" / "seed0.json"
    held, release = threading.Event(), threading.Event()

    def orphan():  # stands for a kernel orphaned by a killed sweep, finishing its run
        with locks.run_lock(out):
            held.set()
            release.wait(30)
            rec = records.failed({**TINY, "seed": 0}, "")
            records.write_json(out, {**rec, "status": "ok", "final_acc": 1.0, "best_acc": 1.0, "steps": 10,
                                     "history": [{"epoch": 1, "train_acc": 1.0, "test_acc": 1.0}], "error": None,
                                     "provenance": {**rec["provenance"], "wall_seconds": 1.0, "device": "cpu"}})

    t = threading.Thread(target=orphan)
    t.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    try:
        code = sweep.main([str(grid), "--out", str(tmp_path / "reports"), "--no-report", "--lock-wait", "30"])
    finally:
        release.set()
        t.join()
    assert code == 0, capsys.readouterr()
    assert "orphan: 1 of 1 runs done (0 now), 0 failed, 0 skipped" in capsys.readouterr().out


# ---------------------------------------------------------------- real sweeps (subprocesses, papermill, kernels)

def test_failed_runs_are_isolated_recorded_and_retried(tmp_path):
    grid = write_grid(tmp_path, "faults", {**TINY, "norm": "none", "epochs": 1, "num_blocks": 24},
                      {"lr": [0.001, 0.002, 10.0]})  # lr 10 through 24 blocks without a norm: the loss overflows
    out, runs = tmp_path / "reports", tmp_path / "reports" / "faults" / "runs"
    r = run_sweep(grid, out, "--no-report")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "faults: 2 of 3 runs done (2 now), 1 failed, 0 skipped" in r.stdout
    assert f"FAILED lr10.0: FloatingPointError: training diverged: train loss nan in epoch 1  (notebook: " \
           f"{runs / 'lr10.0.ipynb'})" in r.stdout
    assert statuses(runs) == {"lr0.001": "ok", "lr0.002": "ok", "lr10.0": "failed"}
    bad = records.read(runs / "lr10.0.json")
    assert bad["error"] == "FloatingPointError: training diverged: train loss nan in epoch 1"
    assert bad["params"]["lr"] == 10.0 and bad["params"]["norm"] == "none" and bad["provenance"]["git_commit"]
    errors = [o for c in nbformat.read(runs / "lr10.0.ipynb", as_version=4).cells for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert errors and errors[0].ename == "FloatingPointError"
    assert leftovers(out) == []

    # rerun: the failed run is retried, a half-written record is rerun, a complete one kept, stale files removed
    good = (runs / "lr0.001.json").read_text()
    half = (runs / "lr0.002.json").read_text()
    (runs / "lr0.002.json").write_text(half[: len(half) // 2])
    stale = [runs / ".lr0.001.tmp99999.ipynb", runs / ".lr0.002.json.tmp99999", runs / "lr0.002.json.ckpt.pt.tmp"]
    for p in stale:
        p.write_text("left by a killed sweep")
    r = run_sweep(grid, out, "--no-report")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "removed 3 temporary file(s)" in r.stdout
    assert "faults: 2 of 3 runs done (1 now), 1 failed, 0 skipped" in r.stdout
    assert (runs / "lr0.001.json").read_text() == good
    assert statuses(runs) == {"lr0.001": "ok", "lr0.002": "ok", "lr10.0": "failed"}
    assert leftovers(out) == []


def test_kill_mid_run_by_sigint_sigterm_and_sigkill_then_resume(tmp_path):
    grid = write_grid(tmp_path, "kills", {**TINY, "epochs": 60, "threads": 1}, {"seed": [0, 1]})
    out, runs = tmp_path / "reports", tmp_path / "reports" / "kills" / "runs"
    ckpts = [runs / "seed0.json.ckpt.pt", runs / "seed1.json.ckpt.pt"]

    def newest() -> int:
        return max((p.stat().st_mtime_ns for p in ckpts if p.exists()), default=0)

    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)):
        since, log = newest(), tmp_path / f"{sig.name}.log"
        proc = start_sweep(grid, out, log, "--no-report")
        try:
            wait_until(lambda: newest() > since, proc, log)  # this sweep's kernels have finished an epoch
            proc.send_signal(sig)
            assert proc.wait(90) == code, log.read_text()[-3000:]
        finally:
            proc.kill()
            proc.wait()
        assert statuses(runs) == {}, "an interrupted run must not get a record, failed or otherwise"
        if sig != signal.SIGKILL:
            assert f"interrupted by {sig.name}: rerun the same command to resume" in log.read_text()
            assert not [p for p in runs.glob(".*.tmp*")]  # its temporary notebooks are gone
            deadline = time.monotonic() + 10  # its kernels were stopped, so their run locks are free
            while locked_runs(runs) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not locked_runs(runs)
    r = run_sweep(grid, out, "--no-report")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "kills: 2 of 2 runs done (2 now), 0 failed, 0 skipped" in r.stdout
    for seed in (0, 1):
        rec = records.read(runs / f"seed{seed}.json")
        assert rec["status"] == "ok" and rec["params"]["seed"] == seed
        assert [h["epoch"] for h in rec["history"]] == list(range(1, 61))  # every epoch exactly once
        assert rec["provenance"]["resumed_at_epoch"] > 0
    assert leftovers(out) == []


def test_smoke_grid_end_to_end_with_a_kill_after_a_finished_run(tmp_path):
    out, folder = tmp_path / "reports", tmp_path / "reports" / "smoke"
    runs, log = folder / "runs", tmp_path / "first.log"
    proc = start_sweep(ROOT / "params" / "smoke.yaml", out, log)
    try:
        wait_until(lambda: "ok" in statuses(runs).values(), proc, log, timeout=200)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10  # its orphaned kernels exit within about a second (and may finish a run)
    while locked_runs(runs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not locked_runs(runs)
    finished = {p.name: p.read_text() for p in runs.glob("*.json") if (records.read(p) or {}).get("status") == "ok"}
    assert 1 <= len(finished) < 8
    r = run_sweep(ROOT / "params" / "smoke.yaml", out, timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"smoke: 8 of 8 runs done ({8 - len(finished)} now), 0 failed, 0 skipped" in r.stdout
    assert set(statuses(runs).values()) == {"ok"} and len(statuses(runs)) == 8
    assert all((runs / name).read_text() == text for name, text in finished.items())  # not run a second time
    assert len(list(runs.glob("*.ipynb"))) == 8
    assert all(sweep.notebook_complete(p) for p in runs.glob("*.ipynb"))  # none cut short by the kill
    html = (folder / "report.html").read_text()
    assert "<table" in html and "BatchNorm" in html and "GroupNorm" in html
    assert not re.search(r'class="[^"]*(input_area|jp-InputArea|highlight)', html)  # no code input
    assert "from normlib import" not in html and "report.load(" not in html
    assert leftovers(out) == []

    # a run's numbers are a function of its parameters alone: rerun alone, with another job count, it is the same
    name = sorted(finished)[0]
    first = records.read(runs / name)
    (runs / name).unlink()
    r = run_sweep(ROOT / "params" / "smoke.yaml", out, "--jobs", "1", "--no-report", timeout=400)
    assert r.returncode == 0 and "8 of 8 runs done (1 now)" in r.stdout, r.stdout + r.stderr
    again = records.read(runs / name)
    strip = lambda rec: [{k: v for k, v in h.items() if not k.endswith("_seconds")} for h in rec["history"]]  # noqa
    assert strip(again) == strip(first) and again["final_acc"] == first["final_acc"]
    assert again["params"]["threads"] == first["params"]["threads"] == 1


def test_a_notebook_cut_short_after_its_record_is_executed_again(tmp_path):
    grid = write_grid(tmp_path, "cut", {**TINY, "epochs": 1}, {"seed": [0]})
    out, runs = tmp_path / "reports", tmp_path / "reports" / "cut" / "runs"
    assert run_sweep(grid, out, "--no-report").returncode == 0
    record = (runs / "seed0.json").read_text()
    nb = nbformat.read(runs / "seed0.ipynb", as_version=4)
    for cell in nb.cells[3:]:  # as papermill leaves it when killed after the record was written
        cell.metadata.papermill["status"] = "pending"
        if cell.cell_type == "code":
            cell.outputs = []
    nbformat.write(nb, runs / "seed0.ipynb")
    assert not sweep.notebook_complete(runs / "seed0.ipynb")
    r = run_sweep(grid, out, "--no-report")
    assert r.returncode == 0 and "executing the notebooks of 1 finished run(s) again" in r.stdout, r.stdout
    assert "cut: 1 of 1 runs done (0 now)" in r.stdout
    assert sweep.notebook_complete(runs / "seed0.ipynb") and (runs / "seed0.json").read_text() == record




def test_the_sweep_sleeps_while_its_kernels_train(tmp_path):
    """The sweep process waits for its runs without spinning: a busy wait would take a core from the kernels."""
    grid = write_grid(tmp_path, "idle", {**TINY, "epochs": 40}, {"seed": [0, 1, 2]}, jobs=1)
    wall, cpu = time.perf_counter(), time.process_time()  # CPU time of this process (the sweep), all threads
    assert sweep.sweep(grid, tmp_path / "out", report=False) == 0
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert cpu < 0.3 * wall, f"the sweep used {cpu:.1f} s of CPU in {wall:.1f} s"
