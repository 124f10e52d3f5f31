"""The norm map: a norm registered there (one entry and its layer) is a run parameter, trains on both engines' model,
and a tiny grid of it gets its report, named and coloured by its entry."""
import pytest
import torch
from helpers.constructed import summary_text
from helpers.sweeps import TINY

from normlib import config, norms
from normlib.run import runner
from normlib.store import records
from normlib.run.model import Network


def pair_norm(channels: int, groups: int, runs: int):
    return torch.nn.GroupNorm(runs * channels // 2, runs * channels)  # two channels per group


@pytest.fixture
def pair(monkeypatch):
    monkeypatch.setitem(norms.NORMS, "pair", norms.Norm("PairNorm", "#E69F00", pair_norm))
    yield


def test_an_unknown_norm_fails_at_once_naming_the_norms_there_are():
    with pytest.raises(ValueError, match=r"norm='pairs': allowed batch, group, layer, instance, none$"):
        norms.get("pairs")
    assert config.check_value("norm", "pair") == "norm='pair': allowed batch, group, layer, instance, none"


def test_only_batchnorm_keeps_running_statistics():
    assert [n for n in norms.NAMES if norms.running_stats(n)] == ["batch"]
    assert config.check({"norm": "batch", "batch_size": 1}) == [
        "batch_size=1: BatchNorm needs at least 2 images per batch (allowed with norm group, layer, instance, none)"]


def test_a_registered_norm_is_one_entry_from_parameter_to_report(tmp_path, monkeypatch, pair):
    assert config.check_value("norm", "pair") == ""
    assert "pair" in config.parameters_cell().splitlines()[0]
    layer = Network("pair", num_blocks=1, width=8, runs=2).blocks[0].norm
    assert isinstance(layer, torch.nn.GroupNorm) and layer.num_groups == 8  # 2 runs x 4 groups of 2 channels
    folder = tmp_path / "pairs"
    runs = {f"{n}_bs{b}_seed{s}": {**TINY, "norm": n, "batch_size": b, "seed": s, "epochs": 1}
            for n in ("pair", "group") for b in (5, 10) for s in (0, 1)}
    records.write_json(folder / "grid.json", {"name": "pairs", "description": "a registered norm",
                                              "runs": [{"run_id": r, "params": p} for r, p in runs.items()]})
    for rid, params in runs.items():
        assert runner.run({**params, "out": str(folder / "runs" / f"{rid}.json")})["status"] == "ok"
    text = summary_text(tmp_path, "pairs", monkeypatch)
    assert text.startswith("# GroupNorm and PairNorm across batch sizes on CIFAR-10")  # its label, in the map's order
