"""Sweeps through a real single-node Slurm cluster (tests/helpers/slurmcluster.py): the smoke grid's Dask workers as
Slurm jobs, its records equal to the local ones and naming their jobs; a worker's job cancelled mid-run; a client
without the sweep's credentials refused, then every job cancelled; an option Slurm refuses. Without Slurm (`make slurm`)
or root the cluster tests skip; the option checks run everywhere."""
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.slurmcluster import Slurm, missing
from helpers.sweeps import TINY, patient, statuses, wait_until, write_grid

from helpers import ROOT
from normlib.store import locks, records
from normlib.sweep import loop as sweep, slurm
from normlib.sweep.grid import GridError

SMOKE = ROOT / "params" / "smoke.yaml"
NO_SLURM = missing()
needs_slurm = pytest.mark.skipif(bool(NO_SLURM), reason=NO_SLURM or "Slurm is here")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A single-node Slurm cluster in a network namespace of its own, for this module's tests."""
    s = Slurm(tmp_path_factory.mktemp("slurm"))
    try:
        s.up()
        yield s
    finally:
        s.down()


def sweep_command(s: Slurm, grid: Path, out: Path, *args) -> list:
    """The sweep as a user starts it, in the cluster's namespace (its scheduler must be where the workers are)."""
    return s.command(sys.executable, "-m", "normlib.sweep", str(grid), "--out", str(out), "--no-report", *args)


def start_sweep(s: Slurm, grid: Path, out: Path, log: Path) -> subprocess.Popen:
    """The sweep with --slurm in the background, its output in `log`."""
    with open(log, "w") as f:
        return subprocess.Popen(sweep_command(s, grid, out, "--slurm"), env=s.env, cwd=ROOT, stdout=f,
                                stderr=subprocess.STDOUT)


def worker_jobs(folder: Path) -> set:
    """The job ids of the grid's Slurm workers, from their log files' names."""
    return {p.name.split("-")[-1].split(".")[0] for p in (folder / "slurm").glob(f"{slurm.JOB_NAME}-*.out")}


@pytest.mark.parametrize("options, error", [
    (["partition gpu"], "--slurm='partition gpu': allowed an sbatch long option without its dashes"),
    (["--partition=gpu"], "--slurm='--partition=gpu': allowed an sbatch long option without its dashes"),
])
def test_an_option_that_is_not_an_sbatch_long_option_is_refused(options, error):
    with pytest.raises(GridError, match="^" + error.replace("(", r"\(").replace(")", r"\)")):
        slurm.check(options)


@pytest.mark.parametrize("args, error", [
    (["--scheduler", "tcp://127.0.0.1:1"], "--slurm and --scheduler: choose one (where the runs go)"),
    (["--runs-per-gpu", "2"], "--runs-per-gpu=2: only with --gpus"),
])
def test_slurm_and_another_clusters_options_are_refused_together(tmp_path, capsys, args, error):
    assert sweep.main([str(SMOKE), "--out", str(tmp_path), "--slurm", *args]) == 2
    assert capsys.readouterr().err == f"error: {error}\n"
    assert list(tmp_path.iterdir()) == []


def test_without_sbatch_the_sweep_says_so_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert sweep.main([str(SMOKE), "--out", str(tmp_path / "out"), "--slurm", "partition=gpu"]) == 2
    assert capsys.readouterr().err.startswith("error: --slurm: sbatch not found")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("words", ["sbatch: error: Could not establish a configuration source",
                                   "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
                                   "(connect failure)"])
def test_sbatch_without_a_cluster_says_no_cluster_is_reachable_not_that_an_option_is_refused(tmp_path, capsys,
                                                                                             monkeypatch, words):
    """sbatch where no slurm.conf or slurmctld is: a stand-in sbatch answers as Debian's does."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "sbatch").write_text(f"#!/bin/sh\necho '{words}' >&2\nexit 1\n")
    (tmp_path / "bin" / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    assert sweep.main([str(SMOKE), "--out", str(tmp_path / "out"), "--slurm", "partition=gpu"]) == 2
    assert capsys.readouterr().err == (f"error: --slurm: no Slurm cluster reachable (slurmctld / slurm.conf): "
                                       f"{words.removeprefix('sbatch: error: ')}\n")
    assert not (tmp_path / "out").exists()


def test_the_sweeps_timeouts_stretch_with_the_load_not_below_their_idle_value(monkeypatch):
    """The smoke sweep under Slurm ran past a fixed 400 s at a load of about 9 on 2 cores: a busy machine is no hang."""
    from helpers import sweeps
    monkeypatch.setattr(sweeps.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(sweeps.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert patient(400) == 1800
    monkeypatch.setattr(sweeps.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert patient(400) == 400


@pytest.mark.slow
@needs_slurm
def test_the_smoke_grid_through_slurm_equals_the_local_records_and_names_its_jobs(cluster, smoke_sweep, tmp_path):
    """Each worker a Slurm job: every record complete, bit for bit the local run's, and naming the job it ran in. The
    smoke grid's seed 0 (its 4 cells), two runs per worker job."""
    grid = tmp_path / "smoke.yaml"
    grid.write_text(f"base: {SMOKE}\ngrid: {{seed: [0]}}\n")
    r = subprocess.run(sweep_command(cluster, grid, tmp_path, "--slurm"), env=cluster.env, cwd=ROOT,
                       capture_output=True, text=True, timeout=patient(300))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + cluster.logs()
    local_root, done = smoke_sweep
    local = {p.stem: records.read(p) for p in (local_root / "smoke" / "runs").glob("*_seed0.json")}
    runs = tmp_path / "smoke" / "runs"
    assert len(local) == 4 and statuses(runs) == {rid: "ok" for rid in local}
    ran_in = set()
    for rid, loc in local.items():
        rec = records.read(runs / f"{rid}.json")
        assert records.untimed(rec["history"]) == records.untimed(loc["history"]), rid  # bit for bit
        assert rec["final_acc"] == loc["final_acc"] and loc["provenance"]["slurm_job_id"] is None
        ran_in.add(rec["provenance"]["slurm_job_id"])
    assert ran_in == worker_jobs(tmp_path / "smoke") and len(ran_in) == 2, (ran_in, r.stdout[-2000:])
    cluster.wait(lambda: cluster.run("squeue", "-h").stdout == "", "end of the worker jobs, which the sweep "
                 "cancels as it ends", timeout=30)  # completing: Slurm SIGKILLs a worker slow to close after KillWait


def let_in(s: Slurm, addresses: list) -> list:
    """sweeps.let_in from within the cluster's namespace: the servers that accept a client without credentials."""
    code = (f"import os, sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); from helpers import sweeps; "
            f"print(sweeps.let_in({addresses!r}), flush=True); os._exit(0)")  # attempts left waiting: not joined
    r = s.run(sys.executable, "-c", code, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return eval(r.stdout.strip().splitlines()[-1])


def job_of(pid: int) -> str:
    """The Slurm job a process runs in (its SLURM_JOB_ID)."""
    env = dict(kv.split("=", 1) for kv in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in kv)
    return env["SLURM_JOB_ID"]


@pytest.mark.slow
@needs_slurm
def test_a_cancelled_worker_job_loses_no_run_and_records_each_once(cluster, tmp_path):
    """scancel the job of a worker running a run (past its first epoch): its run goes to the other worker's job
    without a failed record meanwhile, resumes from its checkpoint and is recorded once, every epoch once; the grid
    completes. Meanwhile the sweep's scheduler and its workers listen on loopback only (the default without
    NORMLIB_SLURM_INTERFACE)."""
    epochs = 40
    grid = write_grid(tmp_path, "cancel", {**TINY, "epochs": epochs, "threads": 1}, {"seed": [0, 1]})
    runs, log = tmp_path / "reports" / "cancel" / "runs", tmp_path / "sweep.log"
    proc = start_sweep(cluster, grid, tmp_path / "reports", log)
    try:
        wait_until(lambda: list(runs.glob("*.json.ckpt.pt")), proc, log, timeout=patient(180))  # a run is past epoch 1
        ckpt = next(runs.glob("*.json.ckpt.pt"))
        killed = ckpt.name.removesuffix(".json.ckpt.pt")
        job = job_of(locks.lock_holder(locks.lock_path(runs / f"{killed}.json")))
        dask = [(address, cmd) for address, cmd in cluster.listening() if not cmd.startswith("slurm")]
        assert dask and [a for a in dask if not a[0].startswith("127.0.0.1:")] == []  # scheduler, workers, kernels
        assert cluster.run("scancel", job).returncode == 0
        seen, deadline = set(), time.monotonic() + 300  # the records' statuses while the run moves: never failed
        while proc.poll() is None and time.monotonic() < deadline:
            seen |= set(statuses(runs).values())
            time.sleep(0.05)
        assert proc.wait(300) == 0, log.read_text()[-3000:]
        assert "failed" not in seen, seen
    finally:
        proc.kill()
        proc.wait()
    text = log.read_text()
    assert "cancel: 2 of 2 runs done (2 now), 0 failed, 0 skipped" in text, text[-3000:]
    assert statuses(runs) == {"seed0": "ok", "seed1": "ok"}  # one record per run, each complete
    for rid in ("seed0", "seed1"):
        rec = records.read(runs / f"{rid}.json")
        assert [h["epoch"] for h in rec["history"]] == list(range(1, epochs + 1))  # every epoch exactly once
        prov = rec["provenance"]
        if rid == killed:  # finished in the other worker's job, from the cancelled one's checkpoint
            assert prov["slurm_job_id"] != job and prov["resumed_at_epoch"] > 0, (job, prov)
    assert job in worker_jobs(runs.parent)


@pytest.mark.slow
@needs_slurm
def test_a_partition_slurm_refuses_ends_the_sweep_with_one_line_and_nothing_written(cluster, tmp_path):
    jobs = cluster.run("squeue", "-h", "--states=all", "-o", "%i").stdout  # finished ones too, for MinJobAge
    r = subprocess.run(sweep_command(cluster, SMOKE, tmp_path / "reports", "--slurm", "time=00:10:00", "--slurm",
                                     "partition=nope"), env=cluster.env, cwd=ROOT, capture_output=True, text=True,
                       timeout=patient(120))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.splitlines() == ["error: --slurm='partition=nope': Slurm refuses it: invalid partition specified: "
                                     "nope; allocation failure: Invalid partition name specified"], r.stderr
    assert not (tmp_path / "reports").exists()
    assert cluster.run("squeue", "-h", "--states=all", "-o", "%i").stdout == jobs  # no job submitted


class FakeWorker:
    def __init__(self, status):
        self.status = status


@pytest.mark.parametrize("job, status, reason, rescheduled", [
    ("7", "closing", "DeadKernelError: the kernel died", True),  # the job ends: the run goes elsewhere
    ("7", "running", "DeadKernelError: the kernel died", False),  # the worker lives on: the kernel's own death
    (None, "closing", "DeadKernelError: the kernel died", False),  # not in a Slurm job
    ("7", "closing", "ValueError: boom", False),  # the run's own error
])
def test_a_run_whose_kernel_died_with_its_slurm_job_is_rescheduled_not_failed(monkeypatch, job, status, reason,
                                                                              rescheduled):
    import distributed
    from distributed.core import Status
    monkeypatch.setattr(distributed, "get_worker", lambda: FakeWorker(Status[status]))
    monkeypatch.setattr(slurm, "JOB_END_WAIT", 0.2)
    if job:
        monkeypatch.setenv("SLURM_JOB_ID", job)
    else:
        monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    if rescheduled:
        with pytest.raises(distributed.Reschedule):
            slurm.job_ending(reason)
    else:
        assert slurm.job_ending(reason) is None


@pytest.mark.parametrize("options, cpus", [([], "1"), (["time=01:00:00", "cpus-per-task=4"], "4")])
def test_a_worker_jobs_script_execs_the_worker_with_the_options_given(tmp_path, monkeypatch, options, cpus):
    """The job script: the sweep's options, Slurm's defaults for memory and time (not dask-jobqueue's), the CPUs
    given or else the runs' threads, a worker on loopback that replaces the job's shell, its scratch space ours."""
    from dask_jobqueue.slurm import SLURMJob
    from normlib.sweep.grid import plan
    monkeypatch.delenv(slurm.ENV_INTERFACE, raising=False)
    g = plan(SMOKE, tmp_path, pins_gpus=True, local_gpus=False)
    kwargs = slurm.job_options(slurm.directives(options), g, str(tmp_path / "scratch"))
    kwargs.pop("scheduler_options")
    script = SLURMJob(scheduler="tcp://127.0.0.1:1", name="w", **kwargs).job_script()
    directives = [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH")]
    expected = [f"--cpus-per-task={cpus}"] if not options else ["--time=01:00:00", "--cpus-per-task=4"]
    assert [d for d in directives if d.startswith(("--cpus-per-task", "--mem", "-t", "--time"))] == expected
    worker = script.strip().splitlines()[-1]
    assert worker.startswith(f"exec {sys.executable} -m distributed.cli.dask_worker tcp://127.0.0.1:1")
    assert "--host 127.0.0.1 --dashboard-address 127.0.0.1:0" in worker and worker.endswith("--memory-limit 0")
    assert f"--local-directory {tmp_path / 'scratch'} " in worker  # not <tmp>/dask-scratch-space, left behind
    assert f"-o {tmp_path / 'smoke' / 'slurm'}/{slurm.JOB_NAME}-%J.out" in directives


@pytest.mark.slow
@needs_slurm
def test_workers_refuse_a_client_without_the_credentials_and_when_every_job_is_cancelled_a_rerun_finishes(cluster,
                                                                                                       tmp_path):
    """While both runs train, the scheduler in the sweep and each worker in its Slurm job take only TLS clients with
    the sweep's certificate: plain TCP and another authority's certificate are refused (anyone on the login node
    could otherwise run code as the sweep's user). Then scancel both worker jobs mid-run: the sweep does not wait
    forever but ends with one line naming the runs left (exit 1), with no failed record; the same command again
    finishes the grid."""
    grid = write_grid(tmp_path, "gone", {**TINY, "epochs": 40, "threads": 1}, {"seed": [0, 1]})
    runs, log = tmp_path / "reports" / "gone" / "runs", tmp_path / "sweep.log"
    proc = start_sweep(cluster, grid, tmp_path / "reports", log)
    kernels = []
    try:
        wait_until(lambda: len(list(runs.glob("*.json.ckpt.pt"))) == 2, proc, log, timeout=patient(180))  # both busy
        kernels = [locks.lock_holder(locks.lock_path(runs / f"{rid}.json")) for rid in ("seed0", "seed1")]
        for pid in kernels:  # held while the credentials are tried, so that both runs are mid-run when cancelled
            os.kill(pid, signal.SIGSTOP)
        servers = [a for a, cmd in cluster.listening() if "normlib.sweep" in cmd or "dask_worker" in cmd]
        assert len(servers) >= 3 and let_in(cluster, servers) == [], servers  # the scheduler and 2 workers at least
        for pid in kernels:
            os.kill(pid, signal.SIGCONT)
        jobs = worker_jobs(runs.parent)
        assert len(jobs) == 2 and cluster.run("scancel", *jobs).returncode == 0
        assert proc.wait(120) == 1, log.read_text()[-3000:]
    finally:
        for pid in kernels:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        proc.kill()
        proc.wait()
    text = log.read_text()
    left = [line for line in text.splitlines() if line.startswith("NO WORKER LEFT")]
    assert len(left) == 1 and "every worker job of the sweep has ended" in left[0], text[-3000:]
    assert "failed" not in statuses(runs).values()
    pending = [rid for rid in ("seed0", "seed1") if statuses(runs).get(rid) != "ok"]
    assert pending and f"{len(pending)} run(s) left to do: " in left[0] and all(rid in left[0] for rid in pending)
    r = subprocess.run(sweep_command(cluster, grid, tmp_path / "reports", "--slurm"), env=cluster.env, cwd=ROOT,
                       capture_output=True, text=True, timeout=patient(300))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert statuses(runs) == {"seed0": "ok", "seed1": "ok"}
