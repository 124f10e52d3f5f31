"""Provenance: versions, device, data and git state in every record; changed results are not changed code."""
import subprocess
import sys

import torch

from normlib.run import data as datalib
from normlib.store import provenance
from normlib.run.device import describe


def test_provenance_names_versions_device_git_and_data():
    data = datalib.synthetic(n_train=20, n_test=10)
    prov = provenance.provenance(describe(torch.device("cpu")), data)
    assert prov["torch"] == torch.__version__ and prov["python"] == sys.version.split()[0]
    assert prov["device"] and prov["host"]
    assert prov["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and prov["cpu_type"]
    assert prov["data_source"] == "synthetic" and prov["data_sha256"] == data.sha256
    assert len(prov["git_commit"] or "") == 40 and isinstance(prov["git_dirty"], bool)


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


def test_code_hash_names_the_code_not_its_caches(tmp_path, monkeypatch):
    """Records say which code ran even where git cannot: the hash changes with a code file, not with a cache, and
    the commit a sender names in NORMLIB_COMMIT is recorded beside it."""
    (tmp_path / "normlib" / "__pycache__").mkdir(parents=True)
    (tmp_path / "normlib" / "train.py").write_text("x = 1\n")
    first = provenance.code_sha256(tmp_path)
    (tmp_path / "normlib" / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    assert provenance.code_sha256(tmp_path) == first
    (tmp_path / "normlib" / "train.py").write_text("x = 2\n")
    assert provenance.code_sha256(tmp_path) != first
    monkeypatch.setenv("NORMLIB_COMMIT", "abc123")
    env = provenance.environment()
    assert env["git_commit_given"] == "abc123" and len(env["code_sha256"]) == 64
