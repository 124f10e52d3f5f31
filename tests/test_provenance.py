"""Provenance: versions, device, data and git state in every record; changed results are not changed code."""
import subprocess
import sys

import torch

from normlib import data as datalib
from normlib import provenance


def test_provenance_names_versions_device_git_and_data():
    data = datalib.synthetic(n_train=20, n_test=10)
    prov = provenance.provenance(torch.device("cpu"), data)
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
