"""The depth section's rules on constructed records: accuracy gained or lost with depth, the gradient magnitude's
ratio, the original's numbers beside ours, and one seed deciding nothing."""
from constructed import write_records

from normlib.report.tables import Table
from normlib.report import further_sections, load, original


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
    table = next(i for i in further_sections.depth_section(grid, "final_acc") if isinstance(i, Table)
                 and "verdict" in i.frame).frame
    return {(r.activation, r.quantity): r for r in table.itertuples()}, table


def test_the_original_directions_hold_on_a_grid_built_that_way(tmp_path):
    v, _ = verdicts(depth_grid(tmp_path / "d"))
    assert {k: r.verdict for k, r in v.items()} == {
        ("relu", "test accuracy"): "holds", ("sigmoid", "test accuracy"): "holds",
        ("relu", "gradient magnitude"): "holds", ("sigmoid", "gradient magnitude"): "holds"}
    assert v[("relu", "test accuracy")]._4 == "54.99 → 80.07 (+25.08 points)"  # the original's, typed in once
    # gradient magnitude: the mean over layers of 0.01 / (layer + 1): 1 block 0.0075, 4 blocks 0.004567 (-39.1%)
    assert v[("relu", "gradient magnitude")].ours.startswith("0.0075 → 0.004567 (-39.1%), 1 → 4 blocks, n = 3")
    assert v[("sigmoid", "gradient magnitude")]._4 == "0.009 → 0.0024 (-73.3%)"


def test_a_loss_with_depth_under_relu_does_not_hold_and_a_flat_one_is_not_shown(tmp_path):
    v, _ = verdicts(depth_grid(tmp_path / "d", relu_gain=-2.0, sigmoid_gain=0.0))
    assert v[("relu", "test accuracy")].verdict == "does not hold"
    assert v[("sigmoid", "test accuracy")].verdict == "not shown"


def test_one_seed_decides_nothing(tmp_path):
    v, _ = verdicts(depth_grid(tmp_path / "d", seeds=(0,)))
    assert {r.verdict for r in v.values()} == {"cannot be evaluated"}


def test_the_section_defines_its_gradient_measure_and_the_rules_are_holm_corrected(tmp_path):
    grid = depth_grid(tmp_path / "d")
    text = "\n".join(i for i in further_sections.depth_section(grid, "final_acc") if isinstance(i, str))
    assert "mean absolute gradient of each conv layer's weights" in text and "epoch 1" in text
    runs = grid.ok.assign(grad=grid.ok.run_id.map(further_sections.run_grads(grid.epochs)))
    out = original.depth_outcomes(runs, "final_acc")
    assert len(out) == 4 and (out.p_claim_holm >= out.p_claim - 1e-12).all()
    assert out.p_claim_holm.max() <= 1 and set(out.test) == {"paired"}
