"""The sweep's Dask workers as Slurm jobs (`--slurm`, the backend Slurm): dask-jobqueue's SLURMCluster, one batch job
per worker of one slot, as many jobs as --jobs (else the grid's `jobs`); each --slurm adds one sbatch long option
without its dashes, checked by sbatch --test-only before anything is written. The jobs inherit the sweep's environment;
workers' logs: <grid folder>/slurm/. The scheduler runs in the sweep, on loopback unless NORMLIB_SLURM_INTERFACE names
an interface, TLS either way. A job cancelled under a run hands the run to another worker (job_ending). docs/cluster.md.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager

from .backends import Backend
from .dask_settings import LOOPBACK, QUIET, dashboard_address, scratch, security
from ..config import RunConfig
from .grid import GridError, Plan

ENV_INTERFACE = "NORMLIB_SLURM_INTERFACE"  # network interface of the scheduler for workers on other nodes
JOB_NAME = "normlib-worker"  # each worker job's name (squeue) and its log files' prefix
SBATCH_TIMEOUT = 60  # seconds sbatch --test-only may take to answer before the sweep gives up (exit 2)
JOB_END_WAIT = 5  # seconds a worker in a Slurm job whose run's kernel died waits to see whether the job is ending
OPTION = re.compile(r"[a-z][a-z0-9-]*(=.+)?")  # an sbatch long option without its dashes: partition=gpu, exclusive
# sbatch's words when it reaches no cluster: no slurm.conf (nor configless DNS record), or no slurmctld answering
UNREACHABLE = re.compile(r"configuration source|contact slurm controller|controller not responding|slurm\.conf|"
                         r"Connection refused", re.IGNORECASE)


def directives(options: list) -> list:
    """sbatch directives of --slurm options: ['partition=gpu'] -> ['--partition=gpu']; GridError on one that is not
    an sbatch long option."""
    for o in options:
        if not OPTION.fullmatch(o):
            raise GridError(f"--slurm={o!r}: allowed an sbatch long option without its dashes, e.g. partition=gpu, "
                            f"time=04:00:00 or exclusive (one per --slurm)")
    return [f"--{o}" for o in options]


def refusal(text: str) -> str:
    """Slurm's words from sbatch's stderr, on one line."""
    words = [line.removeprefix("sbatch: error: ").strip() for line in text.splitlines() if line.strip()]
    return "; ".join(words)[:300] or "no reason given"


def refused(args: list) -> str:
    """'' if Slurm would accept a job with these directives now (sbatch --test-only submits nothing), else why not."""
    try:
        r = subprocess.run(["sbatch", "--test-only", f"--job-name={JOB_NAME}", *args, "--wrap", "true"],
                           capture_output=True, text=True, timeout=SBATCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"sbatch --test-only did not answer within {SBATCH_TIMEOUT} s"
    return "" if r.returncode == 0 else refusal(r.stderr or r.stdout)


def check(options: list) -> list:
    """The sbatch directives of --slurm, once Slurm accepts them; GridError naming the refused option otherwise."""
    options = [o for o in options if o]  # a bare --slurm adds none
    args = directives(options)
    dashboard_address()
    if shutil.which("sbatch") is None:
        raise GridError("--slurm: sbatch not found; run the sweep where Slurm's commands are (`make slurm` installs "
                        "Debian's slurm-wlm)")
    why = refused(args)
    if why and UNREACHABLE.search(why):  # sbatch without a cluster: no option is at fault
        raise GridError(f"--slurm: no Slurm cluster reachable (slurmctld / slurm.conf): {why}")
    for option, arg in zip(options, args) if why else ():  # name the option Slurm refuses alone, where one is
        alone = refused([arg])
        if alone:
            raise GridError(f"--slurm={option!r}: Slurm refuses it: {alone}")
    if why:
        raise GridError(f"--slurm={','.join(options) or '(defaults)'}: Slurm refuses a job with these options: {why}")
    return args


def where() -> dict:
    """Where the scheduler and the workers listen: loopback, or $NORMLIB_SLURM_INTERFACE's address."""
    interface = os.environ.get(ENV_INTERFACE)
    if interface:
        return {"interface": interface, "worker_extra_args": []}
    return {"scheduler_options": {"host": "127.0.0.1"},  # a worker's HTTP server (/health, /metrics) listens
            "worker_extra_args": ["--host", "127.0.0.1", "--dashboard-address", LOOPBACK]}  # apart from --host


def job_options(args: list, g: Plan, scratch: str = None) -> dict:
    """SLURMCluster's keywords for the worker jobs of grid g with these sbatch directives: one slot each, as many CPUs
    as the runs' torch threads unless a cpus-per-task directive says otherwise; `scratch`: the workers' scratch
    space (Dask's default, <tmp>/dask-scratch-space, stays behind them)."""
    listen = where()
    given = ["--cpus-per-task"] if any(a.startswith("--cpus-per-task=") for a in args) else []
    return dict(
        cores=1, processes=1, nanny=False, job_cpu=max(RunConfig(**r.params).threads for r in g.runs),
        job_name=JOB_NAME, log_directory=str(g.folder / "slurm"),
        # the worker replaces the job's shell, so that Slurm's signals and its final SIGKILL reach it (also where
        # Slurm tracks a job's processes as the descendants of its shell: proctrack/linuxproc)
        python=f"exec {shlex.quote(sys.executable)}",
        memory="1GiB",  # required, but used only for --mem (skipped) and the worker's limit (0 below)
        job_directives_skip=["--mem", "-t ", *given],  # Slurm's defaults: no --mem, no 30-minute time limit
        job_extra_directives=args, local_directory=scratch,
        scheduler_options={**listen.pop("scheduler_options", {}), "dashboard_address": dashboard_address()},
        # the last --memory-limit counts: the memory is the kernels', not the worker's
        worker_extra_args=[*listen.pop("worker_extra_args"), "--no-dashboard", "--memory-limit", "0"], **listen)


@contextmanager
def connect(args: list, g: Plan):
    """A Client of a SLURMCluster of g.jobs worker jobs (job_options), its scheduler in this process, every
    connection TLS with credentials made for this sweep (normlib.sweep.dask_settings.security); the workers read theirs
    from files of mode 0600 that dask-jobqueue writes and removes with the cluster: in this process's scratch folder
    (mode 0700) where the workers are on this node, else beside their logs (where the workers on other nodes see
    them). The jobs are cancelled as it closes."""
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    from ..store import scratch as scratch_folders
    tls, logs = security(), g.folder / "slurm"  # GridError before the first write
    logs.mkdir(parents=True, exist_ok=True)
    keys = logs if os.environ.get(ENV_INTERFACE) else scratch_folders.folder()
    with scratch(), SLURMCluster(silence_logs=QUIET, security=tls, shared_temp_directory=str(keys),
                                 **job_options(args, g, str(keys))) as slurm_cluster, Client(slurm_cluster) as client:
        slurm_cluster.scale(jobs=g.jobs)
        yield client


def jobs_gone(client) -> str:
    """Why the client's SLURMCluster can get no worker (none of its worker jobs is pending or running: scancel,
    preemption, their time limits), or '' (also when squeue cannot say: the sweep waits on)."""
    ids = {str(job.job_id) for job in client.cluster.workers.values() if getattr(job, "job_id", None)}
    try:
        r = subprocess.run(["squeue", "--noheader", "--me", f"--name={JOB_NAME}", "--format=%i"], capture_output=True,
                           text=True, timeout=SBATCH_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if r.returncode or ids & set(r.stdout.split()):
        return ""
    return f"every worker job of the sweep has ended ({', '.join(sorted(ids)) or 'none started'}: scancel, " \
           f"preemption or a time limit)"


class Slurm(Backend):
    """--slurm [OPTION]...: each worker a Slurm job (see the module's docstring)."""

    def __init__(self, options: list):
        self.options, self.args = options, None

    def check(self) -> None:
        self.args = check(self.options)

    def connect(self, g: Plan):
        return connect(self.args, g)

    def gone(self, client) -> str:
        return jobs_gone(client)


def job_ending(reason: str) -> None:
    """Why a run failed, on a worker in a Slurm job, before anything of the failure is written (normlib.execute's
    `failing`): raise distributed.Reschedule, so that the scheduler gives the run to another worker and no failed
    record is left, when its kernel died because the job is ending (scancel, preemption, its time limit: Slurm
    signals every process of the job at once, so the kernel may die before the worker stops). A kernel that died
    otherwise (e.g. out of memory) is a failure of the run, as everywhere; telling the two apart waits up to
    JOB_END_WAIT s."""
    if not reason.startswith("DeadKernelError") or not os.environ.get("SLURM_JOB_ID"):
        return
    from distributed import Reschedule, get_worker
    from distributed.core import Status
    worker, deadline = get_worker(), time.monotonic() + JOB_END_WAIT
    while worker.status == Status.running and time.monotonic() < deadline:
        time.sleep(0.1)
    if worker.status != Status.running:
        raise Reschedule()
