"""Locks: one holder at a time, named when refused; released by the OS when the holder dies; no file left."""
import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from normlib.store import locks


def test_run_lock_excludes_a_second_holder_and_names_the_first(tmp_path):
    out = tmp_path / "r.json"
    assert not locks.is_locked(out)
    with locks.run_lock(out):
        assert locks.is_locked(out)
        assert locks.lock_holder(locks.lock_path(out)) == os.getpid()
        with pytest.raises(locks.Locked, match=rf"out=.*r\.json.*another process \(pid {os.getpid()}\)"):
            with locks.run_lock(out):
                pass
    assert not locks.is_locked(out)
    with locks.run_lock(out):  # free again
        pass


def test_run_lock_dies_with_a_killed_holder(tmp_path):
    out = tmp_path / "r.json"
    code = (f"from normlib.store import locks; import time\nwith locks.run_lock({str(out)!r}):\n"
            f" print('held', flush=True)\n time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert locks.is_locked(out) and locks.lock_holder(locks.lock_path(out)) == proc.pid
        with pytest.raises(locks.Locked):
            with locks.run_lock(out):
                pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5
    while locks.is_locked(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not locks.is_locked(out)  # the stale lock file blocks no one
    with locks.run_lock(out):
        pass
    assert not locks.lock_path(out).exists()  # released: no lock file stays behind


def test_clear_removes_the_file_a_killed_holder_left_and_never_a_held_one(tmp_path):
    out = tmp_path / "r.json"
    path = locks.lock_path(out)
    path.write_text("12345")  # what a holder killed by SIGTERM leaves: its pid, and no flock
    assert locks.clear(path) and not path.exists()
    with locks.run_lock(out):
        assert not locks.clear(path, seconds=0.2)  # held: waited for, then left alone
        assert path.exists() and locks.is_locked(out)
    assert not path.exists()


class FullDisk:
    """A file whose writes fail as on a full disk (the error names no file, as a real flush's does not)."""

    def __init__(self, f):
        self.f = f

    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_lock_whose_pid_cannot_be_written_leaves_no_file_and_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "open", lambda *a, **k: FullDisk(open(*a, **k)), raising=False)
    out = tmp_path / "r.json"
    with pytest.raises(OSError, match=f"No space left on device: '{locks.lock_path(out)}'"):
        with locks.run_lock(out):
            pass
    assert list(tmp_path.iterdir()) == []
