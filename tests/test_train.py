import json

import pytest
import torch

from helpers import engine_history
from helpers import tiny_config
from normlib.run import evaluation, train
from normlib.store import records
from normlib.norms import NORMS


SMALL = dict(width=16, num_blocks=2, lr=0.003)  # a narrow network (a tenth of the default's time), and an lr at
# which every norm learns the tiny synthetic set within 3 epochs


def cfg(**kw):
    return tiny_config({**SMALL, "epochs": 2, "batch_size": 16}, **kw)


@pytest.mark.parametrize("norm", NORMS)
def test_learns_tiny_synthetic(norm, tiny_splits):
    hist = train.train(cfg(norm=norm, epochs=3), tiny_splits)["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["test_acc"] >= 2 * 10  # twice chance: InstanceNorm removes each image's own mean and scale,
    # much of what tells the synthetic classes apart, so it learns slowest (50% after 3 epochs, the others >= 80%)
    assert len(hist[-1]["grad_abs"]) == SMALL["num_blocks"] + 1 and all(g > 0 for g in hist[-1]["grad_abs"])
    assert ("bn_mean_gap" in hist[0]) == (norm == "batch")
    assert ("diag_batchstat_acc" in hist[-1]) == (norm == "batch")


def test_same_seed_same_history_other_seed_differs(tiny_splits):
    a = records.untimed(train.train(cfg(norm="batch"), tiny_splits)["history"])
    b = records.untimed(train.train(cfg(norm="batch"), tiny_splits)["history"])
    c = records.untimed(train.train(cfg(norm="batch", seed=1), tiny_splits)["history"])
    assert a == b and a != c


def test_steps_mode_counts_updates(tiny_splits):
    out = train.train(cfg(batch_size=32, steps=10, epochs=1), tiny_splits)
    assert out["steps"] == 10 and [h["step"] for h in out["history"]] == [7, 10]  # 200 images: 7 batches an epoch


def test_batch_stat_accuracy_leaves_running_stats(tiny_splits):
    model = train.train(cfg(norm="batch", epochs=1), tiny_splits)["model"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = train.to_device(*tiny_splits["test"], torch.device("cpu"))
    evaluation.batch_stat_accuracy(model, x, y, batch=4)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if "num_batches" not in k)


def test_divergence_is_an_error(tiny_splits):
    with pytest.raises(FloatingPointError, match="diverged"):
        train.train(cfg(norm="none", lr=1e6, epochs=3, num_blocks=4), tiny_splits)  # 2 blocks: finite, 1e28


def test_batch_stat_diagnostic_batches_mix_classes(monkeypatch, tiny):
    """The test set of the image-folder copy is ordered by class: the diagnostic batches must not be."""
    from normlib.run import data as datalib
    order = tiny.test_y.argsort(kind="stable")
    parts = datalib.splits(tiny, 0, 0, 0, 0)
    parts["test"] = (parts["test"][0][order], parts["test"][1][order])
    seen = []
    monkeypatch.setattr(evaluation, "batch_stat_accuracy",
                        lambda m, x, y, b: seen.append(y[:b].unique().numel()) or 0.0)
    train.train(cfg(norm="batch", epochs=1, batch_size=16), parts)
    assert seen and seen[0] > 1


def test_history_is_bit_identical_to_the_fixture():
    """The per-run engine's numbers (losses, accuracies, gradient magnitudes, BN diagnostics) are those it gave when
    the fixture of this CPU type was written, bit for bit: a refactoring that changes them fails here. Every number
    the fixture holds must be equal; a diagnostic added since is a new key beside them."""
    path, here = engine_history.fixture(), engine_history.where()
    if not path.exists():
        pytest.skip(f"no fixture for {here['cpu_capability']}: write it with python "
                    "tests/helpers/engine_history.py --write")
    want = json.loads(path.read_text())
    if want["torch"] != here["torch"]:
        pytest.skip(f"the fixture was written with torch {want['torch']}; this is {here['torch']}")
    got = engine_history.histories()
    assert {norm: [{k: h[k] for k in w} for h, w in zip(got[norm], hist)] for norm, hist in want["histories"].items()} \
        == want["histories"]
    assert all(len(got[norm]) == len(hist) for norm, hist in want["histories"].items())
