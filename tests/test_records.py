"""Records: atomic writes, what counts as done, locks that die with their holder, provenance."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from normlib import config, locks, provenance, records
from normlib import data as datalib


def ok_record(params: dict, epochs: int = 2) -> dict:
    return {"schema": records.SCHEMA, "status": "ok", "error": None, "params": config.RunConfig(**params).dict(),
            "final_acc": 50.0, "history": [{"epoch": e + 1, "test_acc": 50.0} for e in range(epochs)],
            "provenance": {}}


def test_write_json_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "r.json"
    records.write_json(path, {"a": 1})
    records.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]


def test_write_json_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    records.write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        records.write_json(path, {"a": object()})  # not serialisable: fails before the rename
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize("text", ["", '{"schema": 1, "status": "ok", "par', "[1, 2]", '{"status": "ok"}', "\x00\x01"])
def test_read_rejects_missing_half_written_and_foreign_files(tmp_path, text):
    path = tmp_path / "r.json"
    assert records.read(path) is None
    path.write_text(text)
    assert records.read(path) is None


@pytest.mark.parametrize("norm", config.NORMS)
def test_is_done_needs_ok_status_same_params_and_whole_history(norm):
    params = {"norm": norm, "batch_size": 4, "seed": 1}
    rec = ok_record(params)
    assert records.is_done(rec, params)
    assert records.is_done({**rec, "params": {**rec["params"], "out": "elsewhere.json"}}, params)  # out aside
    assert not records.is_done(rec, {**params, "seed": 2})
    assert not records.is_done({**rec, "status": "failed"}, params)
    assert not records.is_done({**rec, "schema": records.SCHEMA + 1}, params)
    assert not records.is_done({**rec, "history": []}, params)
    assert not records.is_done({**rec, "history": [{"epoch": 1}, {"epoch": 3}]}, params)
    assert not records.is_done({k: v for k, v in rec.items() if k != "final_acc"}, params)
    assert not records.is_done({**rec, "params": {"no_such_field": 1}}, params)
    assert not records.is_done(None, params)


def test_failed_record_carries_status_error_params_and_environment():
    rec = records.failed({"norm": "group"}, "FloatingPointError: nan", started="t0", notebook="x.ipynb")
    assert rec["status"] == "failed" and rec["error"] == "FloatingPointError: nan"
    assert rec["params"] == {"norm": "group"} and rec["notebook"] == "x.ipynb" and rec["history"] == []
    prov = rec["provenance"]
    assert prov["started"] == "t0" and prov["ended"]
    assert {"python", "torch", "numpy", "papermill", "git_commit", "git_dirty", "host"} <= set(prov)
    assert all(k in rec for k in records.REQUIRED)


def test_provenance_names_versions_device_git_and_data():
    data = datalib.synthetic(n_train=20, n_test=10)
    prov = provenance.provenance(torch.device("cpu"), data)
    assert prov["torch"] == torch.__version__ and prov["python"] == sys.version.split()[0]
    assert prov["device"] and prov["host"]
    assert prov["data_source"] == "synthetic" and prov["data_sha256"] == data.sha256
    assert len(prov["git_commit"] or "") == 40 and isinstance(prov["git_dirty"], bool)


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
    code = (f"from normlib import locks; import time\nwith locks.run_lock({str(out)!r}):\n"
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


def test_git_state_counts_changed_code_not_changed_results(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "r.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    assert provenance.git_state(tmp_path)["git_dirty"] is False
    (tmp_path / "reports" / "r.json").write_text('{"a": 1}')  # a sweep rewrote a record
    assert provenance.git_state(tmp_path)["git_dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    state = provenance.git_state(tmp_path)
    assert state["git_dirty"] is True and len(state["git_commit"]) == 40
