"""Stacks of a grid's runs: one record, checkpoint and lock per run, as the runner writes them, saying what each run
was stacked with; the runner then finds each record complete and does not train again."""
import pytest

from normlib import config, records, runner, stackrun

RUN = dict(data="synthetic", train_size=40, test_size=20, epochs=2, batch_size=4, width=8, num_blocks=1, groups=2,
           engine="stacked")


def test_cells_group_runs_that_differ_only_in_seed():
    runs = [(f"{n}_s{s}", {"norm": n, "seed": s}, f"{n}_s{s}.json") for n in ("batch", "group") for s in range(3)]
    got = stackrun.cells(runs, max_stack=2)
    assert [[r[0] for r in stack] for stack in got] == [["batch_s0", "batch_s1"], ["batch_s2"],
                                                        ["group_s0", "group_s1"], ["group_s2"]]


def test_a_stack_writes_each_runs_record(tmp_path):
    params = [{**RUN, "seed": s, "out": str(tmp_path / f"seed{s}.json")} for s in (0, 1)]
    recs = stackrun.run_stack(params)
    for p, rec, other in zip(params, recs, ("seed1", "seed0")):
        assert records.is_done(records.read(p["out"]), p)
        assert rec["provenance"]["stacked_with"] == [other] and rec["params"]["engine"] == "stacked"
        assert rec["provenance"]["compile"] == "none" and len(rec["provenance"]["code_sha256"]) == 64
        assert not runner.checkpoint_path(p["out"]).exists()
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
    save = runner.Checkpoint.save

    class Killed(Exception):
        pass

    def save_then_die(self, state):
        save(self, state)
        if self.cfg.seed == 1:
            raise Killed

    monkeypatch.setattr(runner.Checkpoint, "save", save_then_die)
    with pytest.raises(Killed):
        stackrun.run_stack(params)
    monkeypatch.setattr(runner.Checkpoint, "save", save)
    assert all(runner.checkpoint_path(p["out"]).exists() for p in params)
    cfgs = [config.validate({**p, "out": str(tmp_path / f"missing{i}.json") if i else p["out"]})
            for i, p in enumerate(params)]
    assert stackrun.resumes_of([runner.Checkpoint(c, "", 0.0) for c in cfgs], "") is None  # would start over
    resumed = stackrun.run_stack(params)
    assert [strip(r["history"]) for r in resumed] == [strip(r["history"]) for r in whole]
    assert [r["provenance"]["resumed_at_epoch"] for r in resumed] == [1, 1]
