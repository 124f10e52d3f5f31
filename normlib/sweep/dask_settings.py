"""What every Dask cluster the sweep starts shares (normlib.sweep.backends' and normlib.sweep.slurm's): distributed's
log level, loopback addresses, the dashboard's address, the TLS credentials of a cluster with worker processes,
Dask's scratch space, and no time-to-live for the workers of a cluster on this machine."""
import logging
import os
import tempfile
from contextlib import contextmanager

from ..store import scratch as scratch_folders
from .grid import GridError

QUIET = logging.WARNING  # distributed's own log level in the clusters the sweep starts
LOOPBACK = "127.0.0.1:0"  # every server of a cluster the sweep starts: this machine only, a free port
ENV_DASHBOARD = "NORMLIB_DASHBOARD"  # HOST:PORT of the dashboard of a cluster the sweep starts (default LOOPBACK)


def dashboard_address() -> str:
    """Where the dashboard of a cluster started here listens: $NORMLIB_DASHBOARD (e.g. 0.0.0.0:8787, to open it to
    the network deliberately), else this machine only; GridError unless it is HOST:PORT."""
    address = os.environ.get(ENV_DASHBOARD) or LOOPBACK
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise GridError(f"{ENV_DASHBOARD}={address!r}: allowed HOST:PORT, e.g. 127.0.0.1:8787 (this machine only) "
                        f"or 0.0.0.0:8787 (every interface); unset: this machine only, a free port")
    return address


def security():
    """The TLS credentials of a cluster whose workers are separate processes: a certificate authority and a
    certificate made for this sweep alone, kept in memory (distributed's Security.temporary; Slurm's workers read
    them from files of mode 0600: normlib.sweep.slurm.connect), every connection encrypted and the client's certificate
    required. Any other process, another user's included, cannot connect to the scheduler or a worker."""
    from distributed.security import Security
    try:
        return Security.temporary()
    except ImportError:  # distributed makes them with the cryptography package
        raise GridError("the TLS credentials of a cluster with worker processes need the cryptography package (a "
                        "dependency of normlib, missing here): pip install cryptography") from None


@contextmanager
def scratch():
    """Dask's scratch space for a cluster started here: a temporary folder of its own, removed with the cluster
    (Dask's default, <tmp>/dask-scratch-space, keeps a folder per scheduler and worker behind), in this process's
    scratch folder (normlib.store.scratch)."""
    import dask
    with tempfile.TemporaryDirectory(prefix="dask-", dir=scratch_folders.folder()) as tmp, \
            dask.config.set({"temporary-directory": tmp}):
        yield


@contextmanager
def suspendable():
    """No time-to-live for the workers of a cluster started on this machine: distributed removes a worker silent for
    its worker-ttl (5 minutes), so a sweep suspended longer (SIGSTOP, Ctrl-Z) found its worker gone when resumed and
    waited for ever, its kernels finishing their runs but no other run starting. A worker here that dies closes its
    connection, which the scheduler sees without a TTL."""
    import dask
    with dask.config.set({"distributed.scheduler.worker-ttl": None}):
        yield
