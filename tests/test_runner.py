"""One run end to end: per-epoch checkpoints, resuming to the same record after an interruption (for every norm:
the one test of resume bit-exactness; the sweep tests kill real processes), locks, failures."""
import json

import pytest
import torch
from helpers.sweeps import TINY

from normlib import config, norms
from normlib.run import checkpoints, runner
from normlib.store import locks, progress, records
from normlib.run import train as trainlib



@pytest.fixture(autouse=True)
def keep_threads():
    n = torch.get_num_threads()  # runs set threads=1; give the other tests their threads back
    yield
    torch.set_num_threads(n)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("norm", list(norms.NORMS))
def test_resume_in_process_matches_for_every_norm(tmp_path, monkeypatch, norm):
    params = {**TINY, "norm": norm, "epochs": 3, "diagnostics": True}
    whole = runner.run(params)
    real_train = trainlib.train

    def train_until_epoch_2(cfg, parts, resume, on_epoch, saver, progress=None):
        def hook(state):
            on_epoch(state)
            if len(state["history"]) == 2:
                raise Interrupt

        return real_train(cfg, parts, resume, hook, saver, progress)

    out = tmp_path / "r.json"
    monkeypatch.setattr(runner, "train", train_until_epoch_2)
    with pytest.raises(Interrupt):
        runner.run({**params, "out": str(out)})
    assert checkpoints.checkpoint_path(out).exists() and not out.exists()
    monkeypatch.setattr(runner, "train", real_train)
    rec = runner.run({**params, "out": str(out)})
    assert rec["provenance"]["resumed_at_epoch"] == 2
    assert records.untimed(rec["history"]) == records.untimed(whole["history"])


@pytest.mark.parametrize("norm,kill_at", [("batch", 23), ("batch", 49), ("group", 31)])
def test_a_run_stopped_mid_epoch_resumes_there_to_the_same_record(tmp_path, monkeypatch, norm, kill_at):
    """Saved after every step (checkpoint_every tiny), stopped at step kill_at + 1 of 3 epochs of 20 steps: the
    resumed run starts at step kill_at, within epoch 2 (23: while the BN probe is open; 49: after it closed, in
    epoch 3), and its record is the uninterrupted run's, bit for bit but for timings."""
    params = {**TINY, "train_size": 80, "batch_size": 4, "norm": norm, "epochs": 3, "diagnostics": True}
    whole = runner.run({**params, "out": str(tmp_path / "whole.json"), "checkpoint_every": 0})
    real_step = trainlib.take_step

    def step_until(r, xb, yb, probe):
        if r.step_count == kill_at:
            raise Interrupt
        return real_step(r, xb, yb, probe)

    out = tmp_path / "r.json"
    monkeypatch.setattr(trainlib, "take_step", step_until)
    with pytest.raises(Interrupt):
        runner.run({**params, "out": str(out), "checkpoint_every": 1e-9})
    saved = torch.load(checkpoints.checkpoint_path(out), weights_only=True)
    assert saved["step"] == kill_at and saved["partial"]["done"] == 4 * (kill_at % 20)
    monkeypatch.setattr(trainlib, "take_step", real_step)
    rec = runner.run({**params, "out": str(out)})
    assert rec["provenance"]["resumed_at_step"] == kill_at and rec["provenance"]["resumed_at_epoch"] == kill_at // 20
    assert records.untimed(rec["history"]) == records.untimed(whole["history"])
    assert (rec["final_acc"], rec["best_acc"], rec["steps"]) == (whole["final_acc"], whole["best_acc"], whole["steps"])
    assert not checkpoints.checkpoint_path(out).exists()


def test_a_mid_epoch_checkpoint_of_other_data_starts_over(tmp_path, monkeypatch, capsys):
    """A permutation of another number of images (the data behind $NORMLIB_DATA changed) is never mixed in."""
    params = {**TINY, "epochs": 2, "out": str(tmp_path / "r.json")}
    ckpt = checkpoints.checkpoint_path(params["out"])
    real_step = trainlib.take_step

    def step_until(r, *a):
        if r.step_count == 4:
            raise Interrupt
        return real_step(r, *a)
    monkeypatch.setattr(trainlib, "take_step", step_until)
    with pytest.raises(Interrupt):
        runner.run({**params, "checkpoint_every": 1e-9})
    saved = torch.load(ckpt, weights_only=True)
    saved["partial"]["perm"] = saved["partial"]["perm"][:-1]
    torch.save(saved, ckpt)
    monkeypatch.setattr(trainlib, "take_step", real_step)
    rec = runner.run(params)
    assert rec["provenance"]["resumed_at_step"] == 0
    assert "is within an epoch of 99 training images; this run has 100: starting the run over" in \
        capsys.readouterr().err


def test_a_checkpoint_is_due_after_its_interval_only(tmp_path):
    cfg = lambda every: config.validate({**TINY, "out": str(tmp_path / "r.json"), "checkpoint_every": every})  # noqa
    assert not checkpoints.Checkpoint(cfg(0), records.now(), 0.0).due()  # 0: at epoch ends only
    assert not checkpoints.Checkpoint(cfg(300), records.now(), 0.0).due()
    assert checkpoints.Checkpoint(cfg(1e-9), records.now(), 0.0).due()
    assert not checkpoints.Checkpoint(config.validate({**TINY, "checkpoint_every": 1e-9}), records.now(), 0.0).due()


def test_record_carries_provenance(tmp_path):
    rec = runner.run({**TINY, "norm": "group", "groups": 2, "epochs": 2, "seed": 3, "out": str(tmp_path / "r.json")})
    assert rec["status"] == "ok" and rec["error"] is None
    assert rec["params"]["seed"] == 3 and rec["params"]["groups"] == 2
    prov = rec["provenance"]
    for key in ("python", "torch", "torchvision", "numpy", "device", "host", "git_commit", "git_dirty", "data_source",
                "data_sha256", "started", "ended", "wall_seconds", "resumed_at_epoch"):
        assert key in prov, key
    assert prov["data_source"] == "synthetic" and len(prov["data_sha256"]) == 64
    assert prov["started"] <= prov["ended"] and prov["wall_seconds"] > 0
    assert all(h["train_seconds"] > 0 and h["eval_seconds"] > 0 for h in rec["history"])  # wall time per epoch
    assert records.read(tmp_path / "r.json") == json.loads(json.dumps(rec))


def test_complete_record_is_not_trained_again(tmp_path, monkeypatch):
    params = {**TINY, "norm": "layer", "epochs": 1, "out": str(tmp_path / "r.json")}
    first = runner.run(params)
    monkeypatch.setattr(runner, "train", lambda *a: pytest.fail("trained a run that has a complete record"))
    assert runner.run(params) == json.loads(json.dumps(first))


def test_a_run_held_by_another_process_is_refused(tmp_path):
    out = tmp_path / "r.json"
    with locks.run_lock(out):
        with pytest.raises(locks.Locked, match="another process"):
            runner.run({**TINY, "epochs": 1, "out": str(out)})
    assert not out.exists()


@pytest.mark.parametrize("content", [b"not a checkpoint", "other params"])
def test_unusable_checkpoint_starts_over_and_says_so(tmp_path, capsys, content):
    params = {**TINY, "norm": "instance", "epochs": 1, "out": str(tmp_path / "r.json")}
    ckpt = checkpoints.checkpoint_path(params["out"])
    if content == "other params":
        torch.save({"params": {**config.RunConfig(**params).dict(), "seed": 99}, "history": []}, ckpt)
    else:
        ckpt.write_bytes(content)
    (tmp_path / "r.json.ckpt.pt.tmp").write_bytes(b"half a save")
    rec = runner.run(params)
    assert rec["provenance"]["resumed_at_epoch"] == 0
    assert "starting the run over" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no checkpoint, no lock file


def test_nan_run_raises_and_writes_no_record(tmp_path):
    out = tmp_path / "r.json"
    with pytest.raises(FloatingPointError, match="train loss nan in epoch 1"):
        runner.run({**TINY, "norm": "none", "lr": 10.0, "num_blocks": 24, "epochs": 2, "out": str(out)})
    assert not out.exists()


def test_sizes_are_checked_against_the_data():
    with pytest.raises(ValueError, match=r"data='synthetic': train_size=3000: must be <= 2000"):
        runner.run({**TINY, "train_size": 3000})


def progress_lines(path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_tells_its_progress_in_its_file_within_epochs_too(tmp_path, monkeypatch):
    """The file its `progress` parameter names: a start line before any step, a line within an epoch whenever
    progress.EVERY seconds of training have passed (here after every step), a line after each epoch's checkpoint; the
    record keeps no channel parameter."""
    monkeypatch.setattr(progress, "EVERY", 0.0)
    path = tmp_path / "progress.jsonl"
    rec = runner.run({**TINY, "epochs": 2, "out": str(tmp_path / "r.json"), "progress": str(path)})
    lines = progress_lines(path)
    assert lines[0] == {"event": "start", "epoch": 0, "step": 0, "steps": 20} and {x["steps"] for x in lines} == {20}
    assert [(x["event"], x["epoch"], x["step"]) for x in lines[1:]] == [
        *[("step", 0, s) for s in range(1, 11)], ("epoch", 1, 10), *[("step", 1, s) for s in range(11, 21)],
        ("epoch", 2, 20)]
    assert not set(config.CHANNELS) & set(rec["params"])


def test_a_resumed_run_starts_its_progress_at_its_checkpoint(tmp_path, monkeypatch):
    params = {**TINY, "epochs": 2, "out": str(tmp_path / "r.json")}
    real_train = trainlib.train

    def until_epoch_1(cfg, parts, resume, on_epoch, saver, progress=None):
        def hook(state):
            on_epoch(state)
            raise Interrupt
        return real_train(cfg, parts, resume, hook, saver, progress)
    monkeypatch.setattr(runner, "train", until_epoch_1)
    with pytest.raises(Interrupt):
        runner.run({**params, "progress": str(tmp_path / "first.jsonl")})
    monkeypatch.setattr(runner, "train", real_train)
    runner.run({**params, "progress": str(tmp_path / "second.jsonl")})
    lines = [x for x in progress_lines(tmp_path / "second.jsonl") if x["event"] != "step"]
    assert lines == [{"event": "start", "epoch": 1, "step": 10, "steps": 20},
                     {"event": "epoch", "epoch": 2, "step": 20, "steps": 20}]


def test_a_checkpoint_on_a_full_disk_is_an_error_naming_the_file_and_keeps_the_last_one(tmp_path, monkeypatch):
    import errno
    import os
    import pathlib
    cfg = config.validate({**TINY, "out": str(tmp_path / "r.json")})
    checkpoint = checkpoints.Checkpoint(cfg, records.now(), 0.0)
    checkpoint.save({"history": [1]})

    def write_bytes(self, data):
        open(self, "wb").write(bytes(data)[:100])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a write's: no file named
    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    tmp = tmp_path / "r.json.ckpt.pt.tmp"
    with pytest.raises(OSError, match=f"No space left on device: '{tmp}'"):  # not torch's inline_container.cc
        checkpoint.save({"history": [1, 2]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json.ckpt.pt"]
    assert torch.load(checkpoint.path, weights_only=True)["history"] == [1]


@pytest.mark.slow
def test_a_run_killed_by_sigkill_mid_epoch_resumes_there_to_the_same_record(tmp_path):
    """A real kill: the run's process gets SIGKILL within its second epoch, after a mid-epoch checkpoint; the rerun
    starts at that checkpoint's step and its record is the uninterrupted run's, bit for bit but for timings."""
    import os
    import signal
    import subprocess
    import sys
    import time
    params = {**TINY, "train_size": 1000, "batch_size": 2, "norm": "batch", "epochs": 3, "diagnostics": True}
    whole = runner.run({**params, "out": str(tmp_path / "whole.json"), "checkpoint_every": 0})
    out = tmp_path / "r.json"
    ckpt = checkpoints.checkpoint_path(out)
    code = (f"from normlib.run import runner; runner.run({{**{params!r}, 'out': {str(out)!r}, "
            f"'checkpoint_every': 0.05}})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            saved = torch.load(ckpt, weights_only=True) if ckpt.exists() else {}
            if saved.get("partial") and saved["step"] > 600:  # within epoch 2 (500 steps an epoch)
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    saved = torch.load(ckpt, weights_only=True)
    assert saved["partial"] and 500 < saved["step"] < 1500 and not out.exists()
    rec = runner.run({**params, "out": str(out)})
    assert rec["provenance"]["resumed_at_step"] == saved["step"]
    assert records.untimed(rec["history"]) == records.untimed(whole["history"])
