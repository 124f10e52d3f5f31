"""bench/equivalence.py: stacked vs per-run engine paired by seed, its verdict and its table."""
import json

import pytest

from bench import equivalence


def rows(diffs, loss_diffs=None):
    loss_diffs = loss_diffs or [0.0] * len(diffs)
    return [{"seed": i, "stack": [i], "separate_acc": 50.0, "stacked_acc": 50.0 + d, "separate_loss": 1.0,
             "stacked_loss": 1.0 + dl, "separate_s": 1.0, "stacked_s": 1.0} for i, (d, dl) in
            enumerate(zip(diffs, loss_diffs))]


def test_the_verdict_is_a_tost_on_accuracy_and_a_t_test_on_train_loss():
    noise = [0.5, -0.5, 1.0, -1.0, 0.0, 0.5, -0.5, 0.0] * 4  # mean 0, sd 0.6, 32 seeds
    assert equivalence.verdict(rows(noise), 0.5)["passed"]
    biased = equivalence.verdict(rows([d - 0.7 for d in noise]), 0.5)  # the measured mean
    assert not biased["equivalent"] and not biased["passed"] and biased["acc"]["p"] < 0.05
    assert not equivalence.verdict(rows(noise[:4]), 0.5)["equivalent"]  # too few seeds to show it
    loss = equivalence.verdict(rows(noise, [0.01 + d / 100 for d in noise]), 0.5)
    assert loss["equivalent"] and loss["loss_differs"] and not loss["passed"]


def test_the_command_writes_its_table(tmp_path):
    assert equivalence.main(["--seeds", "2", "--stack", "2", "--train-images", "20", "--test-images", "10",
                             "--width", "4", "--num-blocks", "1", "--epochs", "1", "--data", "synthetic",
                             "--device", "cpu", "--control", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "equivalence-cpu.json").read_text())
    assert [r["seed"] for r in saved["runs"]] == [0, 1] and all(r["stack"] == [0, 1] for r in saved["runs"])
    assert all("control_acc" in r for r in saved["runs"]) and "mean_abs_gap" in saved["verdict"]
    table = (tmp_path / "equivalence-cpu.md").read_text()
    assert "| 1 | 0 1 |" in table and "- Control, the separate run with one more thread" in table


def test_an_interrupted_benchmark_resumes_from_its_rows(tmp_path, capsys):
    def tiny(epochs=1):
        return ["--stack", "1", "--train-images", "20", "--test-images", "10", "--width", "4", "--num-blocks", "1",
                "--epochs", str(epochs), "--data", "synthetic", "--device", "cpu", "--out", str(tmp_path)]
    assert equivalence.main(["--seeds", "2", *tiny()]) == 0
    first = capsys.readouterr().out
    log = tmp_path / "equivalence-cpu.jsonl"
    assert len(log.read_text().splitlines()) == 3  # the setup, then one row per seed
    assert equivalence.main(["--seeds", "4", *tiny()]) == 0  # seeds 0 and 1 are kept, 2 and 3 trained
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["seed"] for r in printed] == [2, 3]
    saved = json.loads((tmp_path / "equivalence-cpu.json").read_text())
    assert [r["seed"] for r in saved["runs"]] == [0, 1, 2, 3] and saved["meta"]["resumed_seeds"] == [0, 1]
    assert [r for r in saved["runs"] if r["seed"] < 2] == [json.loads(x) for x in first.splitlines()[:2]]
    assert "Seeds 0-1 come from earlier invocations of the same setup" in (tmp_path / "equivalence-cpu.md").read_text()
    assert equivalence.main(["--seeds", "2", *tiny(epochs=2)]) == 2  # another setup
    assert capsys.readouterr().err.startswith(f"error: --out={str(tmp_path)!r}: {log}: rows of another setup")


@pytest.mark.parametrize("args", [["--seeds", "1"], ["--stack", "0"], ["--margin", "0"]])
def test_bad_arguments_exit_2(args, capsys):
    with pytest.raises(SystemExit) as e:
        equivalence.main(args)
    assert e.value.code == 2 and "error: --" in capsys.readouterr().err


def test_seeds_are_written_as_ranges():
    assert equivalence.seed_ranges([9, 0, 1, 2, 3, 8, 5]) == "0-3, 5, 8-9"



@pytest.mark.parametrize("float64", [False, True], ids=["fp32", "float64"])
def test_the_bias_drift_check_prints_both_engines_biases(capsys, float64):
    import torch

    from bench import bias_drift
    assert bias_drift.main(["--seeds", "0", "1", "--train-images", "20", "--test-images", "10", "--width", "4",
                            "--num-blocks", "2", "--epochs", "1", "--data", "synthetic"]
                           + ["--float64"] * float64) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seed"] for r in rows] == [0, 1] and torch.get_default_dtype() == torch.float32  # restored
    assert all(r["dtype"] == f"torch.float{64 if float64 else 32}" for r in rows)
    if float64:  # the same function: whole runs end together up to rounding
        assert all(r["weight_gap"] < 1e-12 for r in rows)
    assert all(set(r["stacked_bias"]) == set(r["separate_bias"]) == {"blocks.0.conv.bias", "blocks.1.conv.bias"}
               and all(v > 0 for v in r["stacked_bias"].values()) for r in rows)


def test_the_rounding_probe_computes_each_engines_gradient_as_its_step_does(first_images):
    """In float64 the stacked engine's gradient of each run is the per-run engine's on the same weights and images
    (so the probe's fp32 errors are the engines' rounding and nothing else), and fp32 errs by rounding alone."""
    import torch

    from bench import bias_drift, rounding
    from normlib.run import train
    from normlib.config import RunConfig
    cfgs = [RunConfig(data="synthetic", width=8, num_blocks=2, groups=2, batch_size=4, seed=s) for s in (0, 1)]
    splits = first_images(40)
    states = rounding.trajectory(cfgs, splits, 3)
    assert torch.get_default_dtype() == torch.float32 and states[0]["conv1.weight"].dtype == torch.float64
    with bias_drift.in_float64(True):
        x, y = train.to_device(*splits["train"], "cpu")
        idx = torch.stack([rounding.batch_indices(len(y), c.seed, 3, 0, 4) for c in cfgs])
        stacked = rounding.stacked_grads(cfgs[0], states, x[idx], y[idx])
    for k, (c, s) in enumerate(zip(cfgs, states)):
        ref = rounding.plain_grads(c, s, x[idx[k]], y[idx[k]], torch.float64)
        assert rounding.error(stacked[k], ref, s)[0]["relative"] < 1e-12
        fp32, d = rounding.error(rounding.plain_grads(c, s, x[idx[k]], y[idx[k]], torch.float32), ref, s)
        assert 0 < fp32["relative"] < 1e-3 and abs(fp32["along"]) < 1e-3 and -1 <= fp32["weights"] <= 1
        assert d.norm() / rounding.flat(ref, [n for n in ref if not n.endswith("conv.bias")]).norm() == \
            pytest.approx(fp32["relative"])


def test_the_rounding_probe_writes_its_table(tmp_path):
    from bench import rounding
    assert rounding.main(["--seeds", "0", "1", "--at", "0", "2", "--batches", "2", "--train-images", "20",
                          "--width", "4", "--num-blocks", "1", "--data", "synthetic", "--out", str(tmp_path)]) == 0
    meta, *rows = [json.loads(line) for line in (tmp_path / "rounding-cpu.jsonl").read_text().splitlines()]
    assert meta["rows"] == 2 * 2 * 2 and len(rows) == 3 * meta["rows"]  # seeds x steps x batches, per engine
    assert {r["engine"] for r in rows} == set(rounding.ENGINES) and all(r["relative"] > 0 for r in rows)
    assert all(-1 <= r["persists"] <= 1 for r in rows)  # each batch's error against the other batch's
    table = (tmp_path / "rounding-cpu.md").read_text()
    assert all(name in table for name in ("| per-run engine |", "| stacked engine |", "Stacked - control"))


def test_a_passed_benchmark_pools_nothing_on_its_own_and_names_its_one_cell():
    meta = {"params": "norm=batch, batch_size=8, train_images=2000"}
    noise = [0.5, -0.5, 1.0, -1.0, 0.0, 0.5, -0.5, 0.0] * 4
    passed = equivalence.verdict_line(meta, equivalence.verdict(rows(noise), 0.5))
    assert passed.startswith("**Passed on this device, for one cell only** (norm=batch, batch_size=8, ")
    assert "may be pooled" not in passed and "pooled only once this benchmark has passed on every device" in passed
    failed = equivalence.verdict_line(meta, equivalence.verdict(rows([d - 0.7 for d in noise]), 0.5))
    assert failed.startswith("**Not shown on this device") and "is not shown" in failed
