"""Backends (normlib.sweep.backends, normlib.sweep.slurm): the command line's options choose one, in one place, and
a new backend is one class: its connect() (and check(), gone() where it needs them) is all the sweep asks of it."""
from contextlib import contextmanager

import pytest
from helpers.sweeps import TINY, statuses, write_grid

from normlib.sweep import dask_settings, loop as sweep
from normlib.sweep.backends import Backend, Gpus, Local, Scheduler
from normlib.sweep.slurm import Slurm


@pytest.mark.parametrize("args,kind", [
    ([], Local), (["--jobs", "3"], Local), (["--gpus", "2", "--runs-per-gpu", "2"], Gpus),
    (["--scheduler", "tcp://127.0.0.1:8786"], Scheduler), (["--scheduler-file", "s.json"], Scheduler),
    (["--slurm"], Slurm), (["--slurm", "partition=gpu", "--jobs", "4"], Slurm)])
def test_the_options_choose_one_backend(args, kind):
    assert type(sweep.backend(sweep.parser().parse_args(["g.yaml", *args]))) is kind


class OneThread(Backend):
    """A new backend, as one would be added: a cluster inside this process with one worker of one slot, which
    counts its clients and its checks."""
    pins_gpus = False
    local_gpus = True

    def __init__(self):
        self.checked = self.connected = 0

    def check(self) -> None:
        self.checked += 1

    @contextmanager
    def connect(self, g):
        from distributed import Client, LocalCluster
        self.connected += 1
        with dask_settings.scratch(), LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                                   dashboard_address=None, worker_dashboard_address=None) as c, \
                Client(c) as client:
            yield client


@pytest.mark.slow
def test_a_new_backend_is_one_class(tmp_path):
    grid = write_grid(tmp_path, "new", TINY, {"seed": [0, 1]})
    backend = OneThread()
    assert sweep.sweep(grid, backend, out_root=tmp_path / "reports", report=False) == 0
    assert (backend.checked, backend.connected) == (1, 1)
    assert statuses(tmp_path / "reports" / "new" / "runs") == {"seed0": "ok", "seed1": "ok"}
