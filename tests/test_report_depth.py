"""The depth section's rules on constructed records: accuracy gained or lost with depth, the gradient magnitude's
ratio, the original's numbers beside ours, and one seed deciding nothing."""
from helpers.constructed import write_records

from normlib.report.tables import Table
from normlib.report import depth, load


def depth_grid(folder, relu_gain=2.0, sigmoid_gain=-3.0, seeds=(0, 1, 2)):
    """BatchNorm networks of 1, 2 and 4 blocks; accuracy 50 + gain per doubling of blocks + a seed offset that both
    ends share, plus a little per-run noise; grad_abs falls with depth as constructed.history makes it."""
    runs = {}
    for act, gain in (("relu", relu_gain), ("sigmoid", sigmoid_gain)):
        for blocks, step in ((1, 0), (2, 1), (4, 2)):
            for seed in seeds:
                a = 50 + gain * step + 3 * seed + 0.1 * ((seed * 7 + blocks) % 3)
                runs[f"{act}_blocks{blocks}_seed{seed}"] = (
                    {"norm": "batch", "batch_size": 16, "num_blocks": blocks, "activation": act, "seed": seed,
                     "epochs": 2}, [a - 5, a])
    write_records(folder, runs)
    return load.load(folder)


def verdicts(grid) -> dict:
    table = next(i for i in depth.depth_section(grid, "final_acc") if isinstance(i, Table)
                 and "verdict" in i.frame).frame
    return {(r.activation, r.quantity): r for _, r in table.iterrows()}, table


def test_the_original_directions_hold_on_a_grid_built_that_way(tmp_path):
    v, _ = verdicts(depth_grid(tmp_path / "d"))
    assert {k: r["verdict"] for k, r in v.items()} == {
        ("relu", "test accuracy"): "holds", ("sigmoid", "test accuracy"): "holds",
        ("relu", "gradient magnitude"): "holds", ("sigmoid", "gradient magnitude"): "holds"}
    orig, ours = "original (fewest → most blocks)", "ours (fewest → most blocks)"
    assert v[("relu", "test accuracy")][orig] == "54.99 → 80.07 (+25.08 points)"  # the original's, typed in once
    # gradient magnitude: the mean over the blocks' convs (layers 1.. of 0.01 / (layer + 1)): 1 block 0.005, 4 blocks
    # 0.003208 (-35.8%); the stem (layer 0, 0.01 at every depth) apart
    assert v[("relu", "gradient magnitude")][ours] == "0.005 → 0.003208 (-35.8%), 1 → 4 blocks, 9 runs, 3 seeds"
    assert v[("relu", "gradient magnitude")]["stem conv, apart"] == "0.01 → 0.01 (+0.0%)"
    assert v[("relu", "test accuracy")]["stem conv, apart"] == "—"
    assert v[("sigmoid", "gradient magnitude")][orig] == "0.009 → 0.0024 (-73.3%)"
    assert v[("relu", "test accuracy")]["trend per doubling (95% CI)"].startswith("+2.0")  # the constructed gain


def test_a_loss_with_depth_under_relu_does_not_hold_and_a_flat_one_is_not_shown(tmp_path):
    v, _ = verdicts(depth_grid(tmp_path / "d", relu_gain=-2.0, sigmoid_gain=0.0))
    assert v[("relu", "test accuracy")]["verdict"] == "does not hold"
    flat = v[("sigmoid", "test accuracy")]
    assert flat["verdict"] == "not shown" and flat["smallest trend detectable"].endswith(" points")


def test_one_seed_decides_nothing(tmp_path):
    v, _ = verdicts(depth_grid(tmp_path / "d", seeds=(0,)))
    assert {r["verdict"] for r in v.values()} == {"cannot be evaluated"}


def test_the_section_defines_its_gradient_measure_and_the_rules_are_holm_corrected(tmp_path):
    grid = depth_grid(tmp_path / "d")
    text = "\n".join(i for i in depth.depth_section(grid, "final_acc") if isinstance(i, str))
    assert "mean absolute gradient of the blocks' conv weights" in text and "epoch 1" in text
    assert "the stem's conv is left out of it and shown apart" in text
    grads = depth.run_grads(grid.epochs)
    runs = grid.ok.assign(grad=grid.ok.run_id.map(grads.grad), stem=grid.ok.run_id.map(grads.stem))
    out = depth.depth_outcomes(runs, "final_acc")
    assert len(out) == 4 and (out.p_claim_holm >= out.p_claim - 1e-12).all() and out.p_claim_holm.max() <= 1
    assert set(out.df) == {3 - 1} and set(out.n) == {9}  # a slope per seed over its 3 depths, tested over 3 seeds


def test_the_trend_uses_every_depth_not_the_two_ends(tmp_path):
    # ReLU gains 4 points per doubling up to 4 blocks and is back at its start by 16: the ends agree, the middle
    # does not; two seeds disagree at the ends only, so an endpoint test could flip on them
    runs = {}
    for blocks, gain in ((1, 0.0), (2, 4.0), (4, 8.0), (8, 4.0), (16, 0.0)):
        for seed in (0, 1):
            a = 50 + gain + (1.5 if seed and blocks in (1, 16) else 0.0) + (0.5 if seed and blocks == 2 else 0.0)
            runs[f"relu_blocks{blocks}_seed{seed}"] = ({"norm": "batch", "batch_size": 16, "num_blocks": blocks,
                                                         "activation": "relu", "seed": seed, "epochs": 2}, [a - 5, a])
    write_records(tmp_path / "d", runs)
    out = depth.depth_outcomes(load.load(tmp_path / "d").ok.assign(grad=1.0), "final_acc")
    relu = out.set_index(["activation", "quantity"]).loc[("relu", "acc")]
    assert abs(relu.slope) < 0.1 and relu.df == 2 - 1 and relu.verdict == "not shown" and relu.mde > 0
