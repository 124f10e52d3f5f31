"""Where a sweep's runs execute, one class per backend: Local (a Dask cluster inside the sweep: one worker of `jobs`
slots), Gpus (a worker process per GPU of this machine), Scheduler (an existing Dask cluster); Slurm's is
normlib.sweep.slurm.Slurm. Each checks its options before anything is written and connects a Dask client; the sweep
(normlib.sweep.loop) asks nothing else of it. What each guarantees (loopback, TLS, slots, GPUs): docs/cluster.md."""
import os
from contextlib import contextmanager
from pathlib import Path

from ..store import records
from .dask_settings import LOOPBACK, QUIET, dashboard_address, scratch, security, suspendable
from .grid import GridError, Plan

CONNECT_TIMEOUT = 30  # seconds to reach an existing scheduler before giving up (exit 2, nothing written)


class Backend:
    """A place where runs execute. pins_gpus: each run is given one GPU of its worker, which it sees as cuda:0;
    local_gpus: those are this machine's GPUs (normlib.sweep.grid.check_devices checks the runs' devices by both)."""
    pins_gpus = True
    local_gpus = False

    def check(self) -> None:
        """GridError naming the option and what is allowed when this backend cannot serve; writes nothing."""

    def connect(self, g: Plan):
        """A context manager giving a distributed.Client of the backend's cluster for grid g (g.jobs: the runs at once
        it asks for), started here unless it exists; closed, with whatever was started for it, as the block ends."""
        raise NotImplementedError(f"{type(self).__name__}.connect")

    def gone(self, client) -> str:
        """Why the cluster has no worker and can get none (the sweep then ends the runs left), or '' while one may
        still come (the sweep waits)."""
        return ""


class Local(Backend):
    """The default: one worker of `jobs` slots inside the sweep's process, as threads, so that the kernels stay the
    sweep's own children (a signal reaches one process; a SIGKILLed sweep orphans them as a local run does)."""
    pins_gpus = False
    local_gpus = True

    def check(self) -> None:
        dashboard_address()

    @contextmanager
    def connect(self, g: Plan):
        from distributed import Client
        with scratch(), suspendable(), local_cluster(g.jobs) as c, Client(c) as client:
            yield client


def local_cluster(jobs: int):
    """Local's cluster. Its HTTP server listens on loopback (Dask's default for an in-process worker is every
    interface)."""
    from distributed import LocalCluster
    return LocalCluster(processes=False, n_workers=1, threads_per_worker=jobs, memory_limit=0, silence_logs=QUIET,
                        dashboard_address=dashboard_address(), worker_dashboard_address=LOOPBACK)


class Gpus(Backend):
    """--gpus N [--runs-per-gpu K]: one worker process per GPU of this machine, each seeing only its own, K runs at
    once on each; every connection TLS (normlib.sweep.dask_settings.security)."""
    local_gpus = True

    def __init__(self, gpus: int, runs_per_gpu: int = 1):
        self.gpus, self.runs_per_gpu = gpus, runs_per_gpu

    def check(self) -> None:
        if isinstance(self.runs_per_gpu, bool) or not isinstance(self.runs_per_gpu, int) or self.runs_per_gpu < 1:
            raise GridError(f"--runs-per-gpu={self.runs_per_gpu!r}: must be an integer >= 1")
        dashboard_address()
        gpus = self.gpus
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
            raise GridError(f"--gpus={gpus!r}: must be an integer >= 1")
        from ..run.device import cuda_count
        n = cuda_count()
        if gpus > n:
            raise GridError(f"--gpus={gpus}: this machine has {n} CUDA device(s); "
                            + (f"allowed 1..{n}" if n else "run without --gpus, or on a cluster's GPU workers"))

    @contextmanager
    def connect(self, g: Plan):
        from distributed import Client
        with scratch(), suspendable(), gpu_cluster(self.gpus, self.runs_per_gpu) as c, Client(c) as client:
            yield client


def gpu_cluster(gpus: int, runs_per_gpu: int = 1):
    """Gpus's cluster: a worker per GPU, each seeing only its own (CUDA_VISIBLE_DEVICES, taken from this process's
    list when it has one, e.g. under Slurm) and declaring GPU=runs_per_gpu, with as many slots."""
    from distributed import Nanny, Scheduler, SpecCluster
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(gpus)]
    tls = security()
    workers = {f"gpu{gpu}": {"cls": Nanny, "options": {
        "nthreads": runs_per_gpu, "resources": {"GPU": runs_per_gpu}, "env": {"CUDA_VISIBLE_DEVICES": gpu},
        "memory_limit": 0, "silence_logs": QUIET, "host": "127.0.0.1", "security": tls}}  # memory: the kernels'
        for gpu in ids[:gpus]}
    return SpecCluster(scheduler={"cls": Scheduler, "options": {"host": "127.0.0.1", "protocol": "tls://",
                                                                "security": tls,
                                                                "dashboard_address": dashboard_address()}},
                       workers=workers, silence_logs=QUIET, security=tls)


class Scheduler(Backend):
    """--scheduler ADDRESS or --scheduler-file PATH: an existing Dask cluster, whose workers' slots set how many runs
    run at once; the sweep connects with what Dask's configuration gives a client (its TLS settings included)."""

    def __init__(self, address: str = None, file: str = None):
        self.address, self.file = address, file

    def check(self) -> None:
        if self.file is not None and not Path(self.file).is_file():
            raise GridError(f"--scheduler-file={str(self.file)!r}: no such file; allowed the file that "
                            f"`dask scheduler --scheduler-file PATH` writes")

    @contextmanager
    def connect(self, g: Plan):
        """GridError when the scheduler cannot be reached."""
        from distributed import Client
        option = f"--scheduler={self.address!r}" if self.address else f"--scheduler-file={str(self.file)!r}"
        try:
            client = Client(self.address, scheduler_file=self.file, timeout=CONNECT_TIMEOUT)
        except (OSError, ValueError) as e:  # unreachable, timed out, not a scheduler file
            raise GridError(f"{option}: cannot reach the scheduler ({records.reason(e, 200)}); allowed the address "
                            f"of a running `dask scheduler` (tcp://HOST:8786) or its scheduler file") from None
        with client:
            yield client
