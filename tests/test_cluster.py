"""Sweeps on Dask clusters: a scheduler and two worker processes over loopback, started as the README's recipe starts
them; a worker killed mid-run; records equal to those of the local path; workers pinned one per GPU; bad options."""
import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from helpers.sweeps import TINY, leftovers, let_in, run_sweep, start_sweep, statuses, wait_until, write_grid

from helpers import ROOT
from normlib.store import locks, records
from normlib.sweep import backends, dask_settings, dispatch, execute, loop as sweep
from normlib.sweep.grid import GridError, Run, Task

GRID = ({**TINY, "epochs": 60, "threads": 1}, {"seed": [0, 1]})  # 60 epochs: time to kill a worker mid-run


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def start(log: Path, *args, env: dict = None) -> subprocess.Popen:
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})


@pytest.fixture
def dask_cluster(tmp_path):
    """(scheduler file, worker processes, the workers' temporary folder): `dask scheduler` and two `dask worker`s
    over loopback, each seeing one "GPU" (CUDA_VISIBLE_DEVICES, resources GPU=1). On a CPU-only machine a run's
    device auto is the CPU, but it asks for a GPU all the same, so each worker runs one run at a time."""
    from distributed import Client
    file, tmp = tmp_path / "scheduler.json", tmp_path / "worker-tmp"
    tmp.mkdir()
    procs = [start(tmp_path / "scheduler.log", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", str(file))]
    try:
        deadline = time.monotonic() + 60
        while not file.exists():
            assert time.monotonic() < deadline and procs[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.1)
        procs += [start(tmp_path / f"worker{i}.log", "worker", "--scheduler-file", str(file), "--host", "127.0.0.1",
                        "--nthreads", "1", "--no-nanny", "--resources", "GPU=1", "--memory-limit", "0",
                        "--name", f"gpu{i}", env={"CUDA_VISIBLE_DEVICES": str(i), "TMPDIR": str(tmp)})
                  for i in range(2)]
        with Client(scheduler_file=str(file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield file, procs[1:], tmp
    finally:
        for p in reversed(procs):  # only the processes this fixture started; the workers first, then the scheduler
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def local_records(tmp_path_factory):
    """The grid's records from the local path (the default cluster inside the sweep process)."""
    folder = tmp_path_factory.mktemp("local")
    r = run_sweep(write_grid(folder, "cl", *GRID), folder / "reports", "--no-report")
    assert r.returncode == 0, r.stdout + r.stderr
    return {p.stem: records.read(p) for p in (folder / "reports" / "cl" / "runs").glob("*.json")}


@pytest.mark.slow
@pytest.mark.parametrize("shared", [True, False], ids=["in place", "returned"])
def test_a_grid_on_a_cluster_survives_a_killed_worker_and_equals_the_local_records(tmp_path, dask_cluster,
                                                                                    local_records, shared):
    """A worker SIGKILLed mid-run: its run goes to the other worker and is done exactly once, resumed from its
    checkpoint where the worker wrote in place, started over where it ran in a temporary folder of its own."""
    file, workers, worker_tmp = dask_cluster
    grid = write_grid(tmp_path, "cl", *GRID)
    out, runs, log = tmp_path / "reports", tmp_path / "reports" / "cl" / "runs", tmp_path / "sweep.log"
    where = runs if shared else worker_tmp
    proc = start_sweep(grid, out, log, "--scheduler-file", str(file), "--no-report",
                       *([] if shared else ["--no-shared-out"]))
    try:
        wait_until(lambda: list(where.rglob("*.json.ckpt.pt")), proc, log, timeout=180)  # a run is past epoch 1
        ckpt = next(where.rglob("*.json.ckpt.pt"))
        kernel = locks.lock_holder(locks.lock_path(ckpt.with_name(ckpt.name.removesuffix(".ckpt.pt"))))
        worker = parent(kernel)
        assert worker in [w.pid for w in workers]
        os.kill(worker, signal.SIGKILL)
        assert proc.wait(300) == 0, log.read_text()[-3000:]
    finally:
        proc.kill()
        proc.wait()
    killed = ckpt.name.removesuffix(".json.ckpt.pt")
    text = log.read_text()
    assert "cl: 2 of 2 runs done (2 now), 0 failed, 0 skipped" in text, text[-3000:]
    assert statuses(runs) == {"seed0": "ok", "seed1": "ok"}  # one record per run
    assert len(list(runs.glob("*.ipynb"))) == 2 and all(execute.notebook_complete(p) for p in runs.glob("*.ipynb"))
    for rid, local in local_records.items():
        rec = records.read(runs / f"{rid}.json")
        assert [h["epoch"] for h in rec["history"]] == list(range(1, 61))  # every epoch exactly once
        assert records.untimed(rec["history"]) == records.untimed(local["history"])  # bit for bit
        assert rec["final_acc"] == local["final_acc"]
        assert rec["params"] == {**local["params"], "out": str(runs / f"{rid}.json")}
        resumed = rec["provenance"]["resumed_at_epoch"]
        assert resumed > 0 if (rid == killed and shared) else resumed == 0, (rid, killed, resumed)
    assert leftovers(out) == []


def test_a_run_from_a_workers_temporary_folder_is_written_under_out(tmp_path):
    """place: the record and notebook a worker away from --out sends back, written where a run in place writes them."""
    out, notebook = tmp_path / "r.json", tmp_path / "r.ipynb"
    rec = records.failed({**TINY, "out": "/worker/tmp/r.json"}, "boom", notebook="/worker/tmp/r.ipynb")
    result = {"status": "failed", "reason": "boom", "record": rec, "notebook": '{"cells": []}'}
    assert dispatch.place(result, Run("r", TINY, out)) == ("failed", "boom")
    written = records.read(out)
    assert written["params"]["out"] == str(out) and written["notebook"] == str(notebook)
    assert notebook.read_text() == '{"cells": []}' and leftovers(tmp_path) == []


def test_a_notebook_sent_back_to_a_full_disk_leaves_nothing_and_fails_the_run(tmp_path, monkeypatch):
    out, notebook = tmp_path / "r.json", tmp_path / "r.ipynb"
    rec = records.failed({**TINY, "out": "/worker/tmp/r.json"}, "boom", notebook="/worker/tmp/r.ipynb")

    def full(path, text):  # part of the notebook written, then the disk is full
        open(path, "w").write(text[:5])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(Path, "write_text", full)
    status, reason = dispatch.place({"status": "ok", "reason": "", "record": rec, "notebook": '{"cells": []}'},
                                   Run("r", TINY, out))
    assert (status, reason) == ("failed", f"OSError: [Errno 28] No space left on device: "
                                          f"'{execute.temp_notebook(notebook)}'")
    assert list(tmp_path.iterdir()) == []  # neither the partial notebook nor a record


@pytest.mark.slow
def test_gpu_workers_each_see_their_own_gpu(monkeypatch):
    """--gpus: one worker process per GPU, pinned by CUDA_VISIBLE_DEVICES (the entries of this process's own list,
    as under Slurm), declaring as many GPU resources and threads as runs it takes at once; the scheduler and the
    workers refuse a client without the cluster's TLS credentials."""
    from distributed import Client
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6")
    with backends.gpu_cluster(2, runs_per_gpu=2) as c, Client(c) as client:
        seen = client.run(os.getenv, "CUDA_VISIBLE_DEVICES")
        workers = client.scheduler_info()["workers"].values()
        servers = [c.scheduler_address, *client.scheduler_info()["workers"]]  # TLS: a client needs the credentials
        assert all(a.startswith("tls://127.0.0.1:") for a in servers) and let_in([a[6:] for a in servers]) == []
    assert sorted(seen.values()) == ["3", "5"]
    assert [(w["resources"], w["nthreads"]) for w in workers] == [({"GPU": 2}, 2)] * 2


@pytest.mark.parametrize("args,error", [
    (["--gpus", "1"], "--gpus=1: this machine has 0 CUDA device(s); run without --gpus, or on a cluster's GPU workers"),
    (["--runs-per-gpu", "2"], "--runs-per-gpu=2: only with --gpus"),
    (["--scheduler", "tcp://127.0.0.1:9", "--jobs", "2"],
     "--jobs=2: with --scheduler='tcp://127.0.0.1:9' the workers' slots (dask worker --nthreads) set how many runs run "
     "at once; drop --jobs"),
    (["--scheduler", "tcp://127.0.0.1:9", "--scheduler-file", "s.json"],
     "--scheduler='tcp://127.0.0.1:9' and --scheduler-file='s.json': choose one (where the runs go)"),
    (["--scheduler-file", "missing.json"], "--scheduler-file='missing.json': no such file; allowed the file that "
                                           "`dask scheduler --scheduler-file PATH` writes"),
    (["--scheduler", "tcp://127.0.0.1:9"], "--scheduler='tcp://127.0.0.1:9': cannot reach the scheduler"),
])
def test_bad_cluster_options_are_refused_before_anything_is_written(tmp_path, capsys, monkeypatch, args, error):
    if args[0] == "--gpus" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setattr(backends, "CONNECT_TIMEOUT", 0.5)  # nothing listens on port 9: refused at once
    grid = write_grid(tmp_path, "opts", TINY, {"seed": [0]})
    assert sweep.main([str(grid), "--out", str(tmp_path / "reports"), *args]) == 2
    assert error in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_a_run_pinned_to_another_gpu_is_refused_on_a_cluster(tmp_path, capsys):
    grid = write_grid(tmp_path, "pinned", {**TINY, "device": "cuda:1"}, {"seed": [0]})
    assert sweep.main([str(grid), "--out", str(tmp_path / "reports"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert ("device='cuda:1': on a cluster each run is given one GPU, which it sees as cuda:0; allowed auto, cpu, "
            "cuda, cuda:0") in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


# ---------------------------------------------------------------- what a default sweep leaves open and behind

LOOPBACK_NETS = ("127.", "::1", "::ffff:127.")


def listening(pid: int) -> set:
    """(ip, port) of every socket that the process and its children (kernels) listen on."""
    import psutil
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    found = set()
    for p in procs:
        try:
            found |= {(c.laddr.ip, c.laddr.port) for c in p.net_connections(kind="inet")
                      if c.status == psutil.CONN_LISTEN}
        except psutil.NoSuchProcess:  # a kernel that ended meanwhile
            pass
    return found


@pytest.mark.slow
def test_a_default_sweep_listens_on_loopback_only_and_leaves_no_lock_or_scratch_folder(tmp_path):
    """While its kernels train, a default sweep and its kernels listen on loopback only; SIGTERM leaves no lock file;
    a finished sweep leaves nothing in the temporary directory (Dask's scratch space included)."""
    grid = write_grid(tmp_path, "open", {**TINY, "epochs": 60, "threads": 1}, {"seed": [0, 1]})
    out, runs, tmp = tmp_path / "reports", tmp_path / "reports" / "open" / "runs", tmp_path / "tmp"
    tmp.mkdir()
    log = tmp_path / "sweep.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "normlib.sweep", str(grid), "--out", str(out), "--no-report"],
                                cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(tmp)})
    try:
        wait_until(lambda: list(runs.glob("*.ckpt.pt")), proc, log, timeout=180)  # a kernel is past epoch 1
        sockets = listening(proc.pid)
        assert sockets and all(ip.startswith(LOOPBACK_NETS) for ip, _ in sockets), sockets
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 143, log.read_text()[-3000:]
    finally:
        proc.kill()
        proc.wait()
    assert sorted(p.name for p in out.rglob("*.lock")) == []
    r = subprocess.run([sys.executable, "-m", "normlib.sweep", str(grid), "--out", str(out), "--no-report"], cwd=ROOT,
                       capture_output=True, text=True, timeout=400, env={**os.environ, "TMPDIR": str(tmp)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in out.rglob("*.lock")) == []
    assert sorted(p.name for p in tmp.iterdir() if "dask" in p.name) == []  # torch's may stay
    assert [str(p.relative_to(tmp)) for p in tmp.glob("normlib-*/*")] == []  # scratch.root() stays, emptied


@pytest.mark.slow
def test_the_dashboard_opens_to_the_network_only_when_asked(monkeypatch):
    from distributed import Client
    monkeypatch.setenv(dask_settings.ENV_DASHBOARD, "0.0.0.0:0")
    with dask_settings.scratch(), backends.local_cluster(1) as c, Client(c) as client:
        port = client.scheduler_info()["services"]["dashboard"]
        sockets = listening(os.getpid())
    assert {ip for ip, p in sockets if p == port} == {"0.0.0.0"}
    assert all(ip.startswith(LOOPBACK_NETS) for ip, p in sockets if p != port), sockets  # the worker's stays local


def test_a_bad_dashboard_address_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(dask_settings.ENV_DASHBOARD, "8787")
    grid = write_grid(tmp_path, "dash", TINY, {"seed": [0]})
    assert sweep.main([str(grid), "--out", str(tmp_path / "reports")]) == 2
    assert "error: NORMLIB_DASHBOARD='8787': allowed HOST:PORT, e.g. 127.0.0.1:8787" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_runs_start_seed_by_seed_and_longest_first_within_a_seed():
    tasks = [Task((Run(f"{n}_bs{b}_seed{s}", {"norm": n, "batch_size": b, "seed": s, "epochs": 1}, None),))
             for n in ("batch", "group") for b in (2, 128) for s in (0, 1, 2)]
    order = [(t.runs[0].params["seed"], t.runs[0].params["batch_size"]) for t in dispatch.start_order(tasks)]
    assert order == [(s, b) for s in (0, 1, 2) for b in (2, 2, 128, 128)]


def test_a_cluster_whose_workers_are_all_gone_ends_the_runs_left_instead_of_waiting_forever(tmp_path, monkeypatch):
    """No worker and none to come (every Slurm worker job ended: normlib.sweep.slurm.jobs_gone): the tasks left are
    cancelled and their runs reported 'left' with the reason, at once rather than never."""
    from distributed import Client, LocalCluster
    monkeypatch.setattr(dispatch, "GONE_CHECK", 0.2)
    runs = [Run(f"seed{s}", {**TINY, "seed": s}, tmp_path / f"seed{s}.json") for s in (0, 1)]
    ended, asked = [], []

    def gone(client):
        asked.append(client)
        return "every worker job has ended" if len(asked) > 1 else ""  # the first check: a job was still queued
    with LocalCluster(processes=False, n_workers=0, dashboard_address=None) as c, Client(c) as client:
        stuck = dispatch.run_all(client, [Task((r,)) for r in runs], lambda *a: ended.append(a), threading.Event(),
                                grace=1, gone=gone)
    assert not stuck and sorted(ended) == [(r, "left", "every worker job has ended") for r in runs]
    assert not any(p.exists() for r in runs for p in (r.out, r.notebook))


def test_without_the_package_that_makes_tls_credentials_a_cluster_of_worker_processes_is_one_line(monkeypatch):
    from distributed.security import Security

    def missing():
        raise ImportError("Using `Security.temporary` requires `cryptography`")
    monkeypatch.setattr(Security, "temporary", staticmethod(missing))
    with pytest.raises(GridError, match="need the cryptography package .*: pip install cryptography$"):
        dask_settings.security()
