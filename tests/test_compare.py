"""Reproduced records against published ones: identical, or by how much and what differs."""
import copy

from normlib import compare, records


def record(acc: float, torch: str = "2.14.1") -> dict:
    return {"schema": records.SCHEMA, "status": "ok", "params": {"norm": "batch", "seed": 0, "out": "a.json"},
            "final_acc": acc, "history": [{"epoch": 1, "test_acc": acc, "test_loss": 1.5, "train_seconds": 9.0}],
            "provenance": {"device": "AMD EPYC (2 cores)", "torch": torch, "torch_threads": 1}}


def test_identical_runs_differing_runs_and_missing_runs(tmp_path, capsys):
    old, new = tmp_path / "old", tmp_path / "new"
    records.write_json(old / "runs" / "same.json", record(40.0))
    timed = record(40.0)
    timed["history"][0]["train_seconds"] = 11.0  # timings are not compared
    timed["params"]["out"] = "elsewhere.json"
    records.write_json(new / "runs" / "same.json", timed)
    records.write_json(old / "runs" / "moved.json", record(40.0))
    records.write_json(new / "runs" / "moved.json", record(41.5, torch="2.15.0"))
    assert compare.main([str(new), str(old)]) == 0
    out = capsys.readouterr().out
    assert "same: bit-identical (final accuracy 40.00%)" in out
    assert "moved: differs: final accuracy 40.00% -> 41.50% (largest gap 1.5 in test_acc); what differs: " \
           "torch 2.14.1 -> 2.15.0" in out
    assert "1 of 2 published runs reproduced bit for bit" in out

    newer = record(40.0)
    newer["history"][0]["diag_precise_acc"] = 41.0  # a newer engine records more
    records.write_json(old / "runs" / "more.json", record(40.0))
    records.write_json(new / "runs" / "more.json", newer)
    compare.main([str(new), str(old)])
    assert "more: differs: final accuracy 40.00% -> 40.00% (every shared number equal; fields in one record only: " \
           "diag_precise_acc)" in capsys.readouterr().out

    records.write_json(old / "runs" / "gone.json", copy.deepcopy(record(30.0)))
    assert compare.main([str(new), str(old)]) == 1
    assert "gone: MISSING" in capsys.readouterr().out


def test_a_folder_without_runs_is_one_line_exit_2(tmp_path, capsys):
    assert compare.main([str(tmp_path / "nope"), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "new=" in err and "no runs/ folder" in err
