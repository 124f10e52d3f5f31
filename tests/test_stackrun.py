"""One stack end to end: one record, checkpoint and lock per run, as the runner writes them, naming its partners; a
run's notebook finds its record complete and does not train again; a rerun run keeps its partners."""
import json

import pytest
from helpers.sweeps import TINY

from normlib import config
from normlib.run import checkpoints, runner, stackrun
from normlib.store import records

RUN = dict(TINY, train_size=40, test_size=20, epochs=2, batch_size=4, groups=2, engine="stacked")


def test_a_stack_writes_each_runs_record(tmp_path):
    params = [{**RUN, "seed": s, "out": str(tmp_path / f"seed{s}.json")} for s in (0, 1)]
    recs = stackrun.run_stack(params)
    for p, rec, other in zip(params, recs, ("seed1", "seed0")):
        assert records.is_done(records.read(p["out"]), p)
        assert rec["provenance"]["stacked_with"] == [other] and rec["params"]["engine"] == "stacked"
        assert rec["provenance"]["compile"] == "none" and len(rec["provenance"]["code_sha256"]) == 64
        assert not checkpoints.checkpoint_path(p["out"]).exists()
        assert runner.run(p) == rec  # complete: returned, not trained again
    assert recs[0]["history"] != recs[1]["history"]


def test_a_stack_with_mixed_protocols_is_refused(tmp_path):
    params = [{**RUN, "seed": 0, "out": str(tmp_path / "a.json")},
              {**RUN, "seed": 1, "batch_size": 8, "out": str(tmp_path / "b.json")}]
    with pytest.raises(ValueError, match="stack: runs differ in batch_size=8; allowed to differ: seed, out"):
        stackrun.run_stack(params)
    assert not list(tmp_path.glob("*.json"))


def test_a_stack_resumes_from_its_runs_checkpoints(tmp_path, monkeypatch):
    """Killed after its first epoch (each run's checkpoint written), a stack resumes at epoch 2 and writes the
    records of an uninterrupted stack (timings aside); with one checkpoint missing it starts over."""
    strip = lambda h: [{k: v for k, v in e.items() if not k.endswith("_seconds")} for e in h]  # noqa: E731
    whole = stackrun.run_stack([{**RUN, "seed": s, "out": str(tmp_path / f"whole{s}.json")} for s in (0, 1)])
    params = [{**RUN, "seed": s, "out": str(tmp_path / f"seed{s}.json")} for s in (0, 1)]
    save = checkpoints.Checkpoint.save

    class Killed(Exception):
        pass

    def save_then_die(self, state):
        save(self, state)
        if self.cfg.seed == 1:
            raise Killed

    monkeypatch.setattr(checkpoints.Checkpoint, "save", save_then_die)
    with pytest.raises(Killed):
        stackrun.run_stack(params)
    monkeypatch.setattr(checkpoints.Checkpoint, "save", save)
    assert all(checkpoints.checkpoint_path(p["out"]).exists() for p in params)
    cfgs = [config.validate({**p, "out": str(tmp_path / f"missing{i}.json") if i else p["out"]})
            for i, p in enumerate(params)]
    assert stackrun.resumes_of([checkpoints.Checkpoint(c, "", 0.0) for c in cfgs], "") is None  # would start over
    resumed = stackrun.run_stack(params)
    assert [strip(r["history"]) for r in resumed] == [strip(r["history"]) for r in whole]
    assert [r["provenance"]["resumed_at_epoch"] for r in resumed] == [1, 1]


def test_a_rerun_run_keeps_its_partners(tmp_path):
    """A run of a stack whose record is lost trains again with the same partners: the same record, bit for bit
    (timings aside), while the partner's complete record stays as it is."""
    params = [{**RUN, "seed": s, "out": str(tmp_path / f"seed{s}.json")} for s in (0, 1)]
    first = stackrun.run_stack(params)
    kept = (tmp_path / "seed0.json").read_bytes()
    (tmp_path / "seed1.json").unlink()
    again = stackrun.run_stack(params)
    assert (tmp_path / "seed0.json").read_bytes() == kept
    assert records.untimed(again[1]["history"]) == records.untimed(first[1]["history"])
    assert again[1]["provenance"]["stacked_with"] == ["seed0"]
    alone = runner.run({**RUN, "seed": 1, "out": str(tmp_path / "alone.json")})  # a stack of one: other numbers
    assert alone["provenance"]["stacked_with"] == []
    assert records.untimed(alone["history"]) != records.untimed(first[1]["history"])


def test_a_kernel_trains_the_stack_its_stack_parameter_names(tmp_path, monkeypatch):
    """runner.run (the notebook's call) trains the whole stack named in its `stack` parameter ({seed, out} per run),
    telling the stack's progress once per epoch, and a run whose record is complete is shown, not trained; a stack
    that names this run's `out` with another seed is not this run's. No record keeps the channels."""
    params = [{**RUN, "seed": s, "out": str(tmp_path / f"seed{s}.json")} for s in (0, 1)]
    stack = json.dumps([{"seed": p["seed"], "out": p["out"]} for p in params])
    told = tmp_path / "progress.jsonl"
    rec = runner.run({**params[1], "stack": stack, "progress": str(told)})
    assert rec["provenance"]["stacked_with"] == ["seed0"] and records.is_done(records.read(params[0]["out"]),
                                                                               params[0])
    lines = [json.loads(x) for x in told.read_text().splitlines()]
    assert [(x["event"], x["epoch"], x["step"]) for x in lines if x["event"] != "step"] == [
        ("start", 0, 0), ("epoch", 1, 10), ("epoch", 2, 20)]
    assert all(not set(config.CHANNELS) & set(records.read(p["out"])["params"]) for p in params)
    monkeypatch.setattr(stackrun, "train_stack", lambda *a: pytest.fail("trained again"))
    assert runner.run({**params[0], "stack": stack}) == records.read(params[0]["out"])
    other = config.RunConfig(**{**params[0], "seed": 5, "stack": stack})
    assert stackrun.stack_of(other) == [config.recorded(other)]
