"""Sweeps: bad input refused before anything is written, faults isolated, kills resumed, the smoke grid end to end."""
import ast
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
import numpy as np
import pytest
import yaml
from PIL import Image

from normlib import config, records, sweep
from normlib import data as datalib

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(data="synthetic", train_size=100, test_size=50, width=8, num_blocks=1, diagnostics=False, batch_size=10)


@pytest.fixture(autouse=True)
def keep_environment(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # an in-process sweep sets it for its kernels; undo after


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
    return [out.stem for out in outs if records.is_locked(out)]


def leftovers(folder: Path) -> list:
    """Temporary files and checkpoints (lock files are meant to stay: they are empty of meaning once unlocked)."""
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".ckpt.pt"))


# ---------------------------------------------------------------- bad input

BASE = """description: bad input
fixed:
  data: synthetic
  train_size: 100
  test_size: 50
  width: 8
grid:
  norm: [batch, group]
  batch_size: [2]
"""


def image_folder(root: Path) -> Path:
    """A tiny CIFAR-10 image-folder copy: two training and one test image per class."""
    for split, n in (("train", 2), ("test", 1)):
        for c, cls in enumerate(datalib.CLASSES):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((32, 32, 3), 20 * c + i, np.uint8)).save(root / split / cls / f"{i}.png")
    return root


def corrupt_cache(tmp_path: Path, monkeypatch) -> str:
    monkeypatch.setenv(datalib.ENV_CACHE, str(tmp_path / "cache"))
    source = image_folder(tmp_path / "cifar")
    datalib.load(str(source))  # decodes and caches
    (cache,) = (tmp_path / "cache").glob("cifar10-*.npz")
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["train_x"][0, 0, 0, 0] ^= 1  # one flipped bit in the cached images
    np.savez(cache, **arrays)  # the stored checksum no longer matches
    return str(source)


def unwritable(tmp_path: Path, monkeypatch) -> None:
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p).startswith(str(tmp_path)) else
                        real(p, mode, **k))


BAD_INPUTS = [  # (case, params file text or a function of (tmp_path, monkeypatch) giving it, extra args, message)
    ("typo", BASE.replace("width: 8", "widht: 8"), [],
     "fixed.widht=8: not a parameter of run.ipynb (did you mean 'width'?); allowed norm, groups, batch_size"),
    ("top-level typo", BASE.replace("grid:", "grdi:"), [], "grdi={'norm': ['batch', 'group'], 'batch_size': [2]}: "
                                                           "unknown key (did you mean 'grid'?); allowed description"),
    ("wrong type", BASE.replace("width: 8", "width: '8'"), [], "fixed.width='8': must be of type int"),
    ("bool for int", BASE.replace("width: 8", "width: 8\n  epochs: true"), [],
     "fixed.epochs=True: must be of type int"),
    ("YAML 1.1 float", BASE.replace("width: 8", "width: 8\n  lr: 1e-3"), [],
     "fixed.lr='1e-3': must be of type float (YAML reads 1e-3 as text: write 1.0e-3 or 0.001)"),
    ("infinite float", BASE.replace("width: 8", "width: 8\n  lr: .inf"), [],
     "fixed.lr=inf: must be of type float (a finite number)"),
    ("batch size 0", BASE.replace("[2]", "[0, 2]"), [], "grid.batch_size=0: must be >= 1"),
    ("batch size above the training set", BASE.replace("[2]", "[2, 500]"), [],
     "run batch_bs500: batch_size=500: must be <= the 100 training images (and 1 more runs)"),
    ("batch size above the data", BASE.replace("train_size: 100", "train_size: 0").replace("[2]", "[2500]"), [],
     "run batch_bs2500: batch_size=2500: must be <= the 2000 training images; data='synthetic' has 2000 training"),
    ("train size above the data", BASE.replace("train_size: 100", "train_size: 3000"), [],
     "run batch_bs2: train_size=3000: must be <= 2000 (0 = all); data='synthetic' has 2000 training and 500 test"),
    ("BatchNorm with batch size 1", BASE.replace("[2]", "[1]"), [],
     "run batch_bs1: batch_size=1: BatchNorm needs at least 2 images per batch"),
    ("groups not dividing channels", BASE.replace("width: 8", "width: 8\n  groups: 3"), [],
     "run group_bs2: groups=3: must divide width=8"),
    ("epochs 0", BASE.replace("width: 8", "width: 8\n  epochs: 0"), [], "fixed.epochs=0: must be >= 1"),
    ("unknown norm", BASE.replace("[batch, group]", "[batch, bn]"), [],
     "grid.norm='bn': allowed batch, group, layer, instance, none"),
    ("unknown activation", BASE.replace("width: 8", "width: 8\n  activation: tanh"), [],
     "fixed.activation='tanh': allowed relu, sigmoid"),
    ("unknown device", BASE.replace("width: 8", "width: 8\n  device: gpu"), [],
     "fixed.device='gpu': allowed auto, cpu, cuda, cuda:N"),
    ("control characters", BASE.replace("data: synthetic", 'data: "a\\nb"'), [],
     "fixed.data='a\\nb': must not contain control characters"),
    ("out in the file", BASE.replace("width: 8", "width: 8\n  out: x.json"), [],
     "fixed.out='x.json': set by the sweep (one record per run under --out); remove it"),
    ("key in fixed and grid", BASE.replace("width: 8", "width: 8\n  norm: batch"), [],
     "grid.norm: also set in fixed; set it in one place"),
    ("empty grid list", BASE.replace("[2]", "[]"), [], "grid.batch_size=[]: must be a non-empty list of values"),
    ("run names collide", BASE.replace("batch_size: [2]", "data: [x/y, x-y]").replace("  data: synthetic\n", ""), [],
     "grid: run names collide (batch_datax-y, group_datax-y); every grid key needs distinct values"),
    ("jobs 0 in the file", BASE + "jobs: 0\n", [], "jobs=0: must be >= 1"),
    ("duplicate key", BASE.replace("width: 8", "width: 8\n  width: 16"), [],
     "not valid YAML: duplicate key 'width' at line 7, column 3"),
    ("invalid YAML", BASE + "  seed: [0\n", [], "not valid YAML: expected ',' or ']', but got '<stream end>'"),
    ("Python object tag", BASE.replace("data: synthetic", 'data: !!python/object/apply:os.system ["touch pwned"]'),
     [], "not valid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply"),
    ("not a mapping", "- norm\n- batch\n", [], "must be a mapping with keys description, jobs, fixed, grid"),
    ("missing params file", None, [], "nope.yaml': cannot read (No such file or directory)"),
    ("missing data", BASE.replace("data: synthetic", "data: /nonexistent/cifar"), [],
     "data='/nonexistent/cifar': no such file or folder; set NORMLIB_DATA"),
    ("corrupt data cache", lambda t, m: BASE.replace("synthetic", corrupt_cache(t, m)).replace("100", "10")
     .replace("50", "5"), [], "is corrupt (checksum mismatch): delete it to decode"),
    ("--jobs 0", BASE, ["--jobs", "0"], "--jobs=0: must be an integer >= 1"),
    ("--timeout -1", BASE, ["--timeout", "-1"], "--timeout=-1: must be >= 0 (0: no limit)"),
    ("output under a file", BASE, ["--out", "{tmp}/afile/reports"], "afile is a file, not a folder"),
    ("unwritable output", lambda t, m: unwritable(t, m) or BASE, [], "is not writable; allowed a writable folder"),
]
if not __import__("torch").cuda.is_available():
    BAD_INPUTS.append(("CUDA without a GPU", BASE.replace("width: 8", "width: 8\n  device: cuda"), [],
                       "device='cuda': this machine has 0 CUDA device(s); allowed auto, cpu"))


@pytest.mark.parametrize("case,text,args,message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys, case, text, args, message):
    monkeypatch.chdir(tmp_path)  # where a `touch pwned` would land
    (tmp_path / "afile").write_text("a file where a folder should be")
    params = tmp_path / ("nope.yaml" if text is None else "bad.yaml")
    if text is not None:
        params.write_text(text(tmp_path, monkeypatch) if callable(text) else text)
    before = sorted(tmp_path.rglob("*"))
    out = ["--out", str(tmp_path / "reports")] + [a.format(tmp=tmp_path) for a in args]
    assert sweep.main([str(params), *out]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and message in lines[0], err
    assert sorted(tmp_path.rglob("*")) == before  # no report folder, no grid.json, no lock file
    assert not (tmp_path / "pwned").exists()


def test_every_problem_of_a_file_is_listed(capsys, tmp_path):
    params = tmp_path / "bad.yaml"
    params.write_text(BASE.replace("width: 8", "widht: 8\n  epochs: 0").replace("[batch, group]", "[batch, bn]"))
    assert sweep.main([str(params), "--out", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err
    assert "fixed.widht=8" in err and "fixed.epochs=0" in err and "grid.norm='bn'" in err
    assert not (tmp_path / "reports").exists()


def test_grid_checks_use_the_notebook_declared_parameters():
    declared = sweep.notebook_parameters()
    assert set(declared) == set(config.FIELDS)
    assert {declared[k] for k in ("norm", "batch_size", "lr", "diagnostics")} == {"str", "int", "float", "bool"}


@pytest.mark.parametrize("value", ['x"); open("pwned", "w"); ("', 'a\\"b\\', "'''\n\"\"\"", "$(touch pwned) `id`",
                                   "{data} %s", "é ü 😀"])
def test_values_reach_the_notebook_only_as_literals(value):
    from papermill.translators import translate_parameters
    params = {"data": value, "lr": 0.5, "diagnostics": False, "seed": 3}
    assert sweep.literal_parameters(params) == params
    tree = ast.parse(translate_parameters("python3", "python", params, "Parameters"))
    assert [n.targets[0].id for n in tree.body] == list(params)
    assert all(isinstance(n.value, ast.Constant) for n in tree.body)
    assert {n.targets[0].id: n.value.value for n in tree.body} == params


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_literal_values_are_refused(value):
    with pytest.raises(sweep.GridError, match="not a plain literal"):
        sweep.literal_parameters({"lr": value})


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
    source = tiny_notebook(tmp_path / "source.ipynb", "from normlib import records\n"
                                                      "with records.run_lock(out): pass")
    out = tmp_path / "r.json"
    with records.run_lock(out):
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
    with records.lock(tmp_path / "reports" / "busy" / ".sweep.lock", "x"):
        assert sweep.main([str(grid), "--out", str(tmp_path / "reports"), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert f"grid 'busy' in {tmp_path / 'reports' / 'busy'} is being executed by another process (pid {os.getpid()})" \
           in err
    assert not (tmp_path / "reports" / "busy" / "runs" / "seed0.ipynb").exists()


def test_run_locked_elsewhere_is_waited_for_then_skipped(tmp_path, capsys):
    grid = write_grid(tmp_path, "held", TINY, {"seed": [0]})
    out = tmp_path / "reports" / "held" / "runs" / "seed0.json"
    with records.run_lock(out):
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
        with records.run_lock(out):
            held.set()
            release.wait(30)
            records.write_json(out, {**records.failed({**TINY, "seed": 0}, ""), "status": "ok", "final_acc": 1.0,
                                     "history": [{"epoch": 1}], "error": None})

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
    grid = write_grid(tmp_path, "faults", {**TINY, "norm": "none", "epochs": 1}, {"lr": [0.001, 0.002, 1.0e20]})
    out, runs = tmp_path / "reports", tmp_path / "reports" / "faults" / "runs"
    r = run_sweep(grid, out, "--no-report")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "faults: 2 of 3 runs done (2 now), 1 failed, 0 skipped" in r.stdout
    assert f"FAILED lr1e+20: FloatingPointError: training diverged: train loss nan in epoch 1  (notebook: " \
           f"{runs / 'lr1e+20.ipynb'})" in r.stdout
    assert statuses(runs) == {"lr0.001": "ok", "lr0.002": "ok", "lr1e+20": "failed"}
    bad = records.read(runs / "lr1e+20.json")
    assert bad["error"] == "FloatingPointError: training diverged: train loss nan in epoch 1"
    assert bad["params"]["lr"] == 1e20 and bad["params"]["norm"] == "none" and bad["provenance"]["git_commit"]
    errors = [o for c in nbformat.read(runs / "lr1e+20.ipynb", as_version=4).cells for o in c.get("outputs", [])
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
    assert statuses(runs) == {"lr0.001": "ok", "lr0.002": "ok", "lr1e+20": "failed"}
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
    html = (folder / "report.html").read_text()
    assert "<table" in html and "BatchNorm" in html and "GroupNorm" in html
    code_cells = re.findall(r'class="(jp-Cell jp-CodeCell[^"]*)"', html)
    assert code_cells and all("jp-mod-noInput" in c for c in code_cells)  # no code input
    assert "from normlib import" not in html and "report.load(" not in html
    assert leftovers(out) == []


def test_the_sweep_sleeps_while_its_kernels_train(tmp_path):
    """The sweep process waits for its runs without spinning: a busy wait would take a core from the kernels."""
    grid = write_grid(tmp_path, "idle", {**TINY, "epochs": 40}, {"seed": [0, 1, 2]}, jobs=1)
    wall, cpu = time.perf_counter(), time.process_time()  # CPU time of this process (the sweep), all threads
    assert sweep.sweep(grid, tmp_path / "out", report=False) == 0
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert cpu < 0.3 * wall, f"the sweep used {cpu:.1f} s of CPU in {wall:.1f} s"
