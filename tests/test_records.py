"""Records: atomic writes, what counts as done, failed records."""
import json

import pytest

from normlib import config, norms
from normlib.store import records


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


@pytest.mark.parametrize("text", ["", '{"schema": 1, "status": "ok", "par', "[1, 2]", '{"status": "ok"}', "\x00\x01",
                                  "[" * 100_000 + "]" * 100_000])  # nested too deeply for the JSON decoder
def test_read_rejects_missing_half_written_and_foreign_files(tmp_path, text):
    path = tmp_path / "r.json"
    assert records.read(path) is None
    path.write_text(text)
    assert records.read(path) is None


@pytest.mark.parametrize("norm", list(norms.NORMS))
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
