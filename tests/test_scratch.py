"""Scratch folders: Dask's scratch space and kernels' connection files under one folder per process, removed at its
exit or, after a SIGKILL, by the next process that takes one."""
import fcntl
import os
import signal
import subprocess
import sys
import tempfile

import pytest

from normlib.store import scratch
from normlib.sweep import dask_settings, execute


@pytest.fixture(autouse=True)
def own_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(scratch, "_MINE", {})


def test_connection_files_and_dask_scratch_go_in_the_process_folder():
    km = execute.kernel_manager_class([])(kernel_name="python3")
    assert os.path.dirname(km.connection_file) == str(scratch.folder())
    import dask
    with dask_settings.scratch():
        assert os.path.dirname(dask.config.get("temporary-directory")) == str(scratch.folder())
    assert oct(scratch.root().stat().st_mode & 0o777) == "0o700"


def test_only_folders_of_processes_that_are_gone_are_removed():
    mine = scratch.folder()
    gone, alive = scratch.root() / "1-gone", scratch.root() / "2-alive"
    for path in (gone, alive):
        path.mkdir()
        (path / scratch.OWNER).touch()
        (path / "kernel-x.json").write_text("{}")
    with open(alive / scratch.OWNER) as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as its live process holds it
        assert scratch.clean() == 1
    assert sorted(scratch.root().iterdir()) == sorted([mine, alive])


@pytest.mark.slow
def test_a_sigkilled_process_folder_is_removed_by_the_next_one(tmp_path):
    code = ("import sys, time; from normlib.store import scratch; p = scratch.folder(); (p / 'kernel-x.json').touch(); "
            "print(p, flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(tmp_path)})
    left = child.stdout.readline().strip()
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert os.path.exists(left) and str(scratch.root()) in left
    scratch.folder()  # the next process's first use
    assert not os.path.exists(left)
