"""A run's checkpoint file, and a stack's checkpoints as a set: a kill between two runs' saves loses no epoch."""
import pytest

from normlib import config
from normlib.run import stacked
from normlib.store import records
from normlib.run.checkpoints import Checkpoint, checkpoint_path, resume_stack

RUN = dict(data="synthetic", train_size=40, test_size=20, epochs=2, batch_size=4, width=8, num_blocks=1, groups=2,
           engine="stacked")


class Killed(Exception):
    pass


@pytest.fixture
def parts(tiny_splits):
    """40 training and 20 test images: 10 steps an epoch."""
    return {"train": tuple(v[:40] for v in tiny_splits["train"]), "test": tuple(v[:20] for v in tiny_splits["test"])}


def cell(tmp_path, name: str) -> list:
    return [config.validate({**RUN, "seed": s, "out": str(tmp_path / f"{name}{s}.json")}) for s in (0, 1)]


def test_a_stack_killed_between_two_runs_saves_resumes_from_the_last_whole_set(tmp_path, parts):
    """Epoch 2's save of run 0 is written, run 1's is not (a SIGTERM or a full disk between them): the stack goes
    back to epoch 1, which both files still hold, instead of starting over, and ends as an uninterrupted stack."""
    whole = stacked.train_stack(cell(tmp_path, "whole"), parts)
    cfgs = cell(tmp_path, "seed")
    ckpts = [Checkpoint(c, "start", 0.0) for c in cfgs]

    def save_or_die(k, state):
        if k == 1 and len(state["history"]) == 2:
            raise Killed
        ckpts[k].save(state)

    with pytest.raises(Killed):
        stacked.train_stack(cfgs, parts, on_epoch=save_or_die)
    ckpts = [Checkpoint(c, "again", 0.0) for c in cfgs]
    assert [c.resume["step"] for c in ckpts] == [20, 10]  # the files disagree
    resumes = resume_stack(ckpts, "again")
    assert resumes is not None and [c.resumed_at for c in ckpts] == [1, 1] and ckpts[0].started == "start"
    resumed = stacked.train_stack(cfgs, parts, resumes)
    assert [records.untimed(r["history"]) for r in resumed] == [records.untimed(r["history"]) for r in whole]


def test_a_single_runs_checkpoint_keeps_no_previous_state(tmp_path, parts):
    """Only a stacked run pays for a second state in its file."""
    from normlib.run import train
    cfg = config.validate({**RUN, "engine": "single", "out": str(tmp_path / "r.json")})
    ckpt = Checkpoint(cfg, "start", 0.0)
    train.train(cfg, parts, on_epoch=ckpt.save)
    again = Checkpoint(cfg, "again", 0.0)
    assert checkpoint_path(cfg.out).exists() and [s["step"] for s in again.states()] == [20]


def test_a_stack_with_a_missing_checkpoint_starts_over(tmp_path, parts, capsys):
    cfgs = cell(tmp_path, "seed")
    ckpts = [Checkpoint(c, "start", 0.0) for c in cfgs]
    stacked.train_stack(cfgs, parts, on_epoch=lambda k, state: k == 0 and ckpts[0].save(state))
    ckpts = [Checkpoint(c, "again", 0.0) for c in cfgs]
    assert resume_stack(ckpts, "again") is None and all(c.resume is None and c.started == "again" for c in ckpts)
    assert "starting the stack over" in capsys.readouterr().err
