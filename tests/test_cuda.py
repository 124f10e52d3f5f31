"""The CUDA path (skipped without a GPU; the device is normlib.run.device's choice for `auto`): the default there,
torch.compile in 'reduce-overhead' mode replaying the forward, backward and fused Adam step from CUDA graphs, trains
as the uncompiled engine and as the plain eager loop.

The engine draws each epoch's permutation from a generator on the training device, so on CUDA the data order is not
the CPU's for the same seed: the eager loop runs on CUDA too, with the same generator and the engine's TF32 setting.
"""
import dataclasses
import math

import pytest

from normlib.run import device as devices
from normlib.run import stacked, train
from test_engine import cfg, eager_reference
from test_stacked import max_gap, rounding_noise

DEVICE = str(devices.pick("auto"))  # "cuda" where there is one
pytestmark = pytest.mark.skipif(DEVICE != "cuda", reason="needs a CUDA GPU")

# (norm, batch size, training images): a partial last batch (200 % 48) runs eagerly beside the graphs; batch 2 is the
# launch-bound case CUDA graphs are for
CASES = [("batch", 48, 0), ("group", 48, 0), ("batch", 2, 60), ("group", 2, 60)]


@pytest.mark.parametrize("norm,batch_size,n", CASES)
def test_cuda_graphs_train_as_the_uncompiled_engine_and_the_eager_loop(norm, batch_size, n, first_images):
    splits = first_images(n)
    c = dict(norm=norm, batch_size=batch_size, epochs=2, train_size=n, device=DEVICE)
    graphs = train.train(cfg(**c, compile="auto"), splits)
    plain = train.train(cfg(**c, compile="none"), splits)
    want = eager_reference(cfg(**c), splits, DEVICE)
    assert (graphs["compile"], graphs["compile_fallback"]) == ("reduce-overhead", None)
    for g, p, w in zip(graphs["history"], plain["history"], want["history"], strict=True):
        print(norm, batch_size, "train loss", g["train_loss"], p["train_loss"], w["train_loss"],
              "test acc", g["test_acc"], p["test_acc"], w["test_acc"])
        assert math.isclose(g["train_loss"], p["train_loss"], rel_tol=1e-3), (g["train_loss"], p["train_loss"])
        assert math.isclose(g["train_loss"], w["train_loss"], rel_tol=1e-3), (g["train_loss"], w["train_loss"])
        assert math.isclose(g["test_loss"], w["test_loss"], rel_tol=1e-2), (g["test_loss"], w["test_loss"])
        assert abs(g["test_acc"] - w["test_acc"]) <= 2.0  # at most two of 100 test images flip
        assert g["grad_abs"] == pytest.approx(p["grad_abs"], rel=1e-2)
    if norm == "batch":  # the final BN diagnostics ran on the compiled model
        assert {"diag_running_acc", "diag_batchstat_acc", "diag_precise_acc"} <= set(graphs["history"][-1])


def test_cuda_graph_replays_do_not_alias_the_logits_of_earlier_steps(tiny_splits):
    """The training accuracy sums each step's logits after the next replay may have overwritten the graph's output
    buffer; it must equal the uncompiled engine's."""
    c = dict(norm="batch", batch_size=8, epochs=1, device=DEVICE, diagnostics=False)
    graphs = train.train(cfg(**c, compile="auto"), tiny_splits)
    plain = train.train(cfg(**c, compile="none"), tiny_splits)
    assert abs(graphs["history"][0]["train_acc"] - plain["history"][0]["train_acc"]) <= 1.0


# the stacked engine (normlib.run.stacked): K runs as one network, each step replayed as one CUDA graph
STACK_CASES = [("batch", 2, 60), ("group", 2, 60), ("batch", 48, 0), ("group", 48, 0)]  # 200 % 48: a partial batch


@pytest.mark.parametrize("norm,batch_size,n", STACK_CASES)
def test_stacked_graphs_train_as_separate_runs_in_float64(norm, batch_size, n, first_images, float64):
    """Captured and replayed (the main step and the partial last batch each from their own graph, the BN-probe steps
    eager), three stacked runs in float64 end where three separate runs of the per-run engine end, on the device."""
    splits = first_images(n)
    cfgs = [cfg(norm=norm, batch_size=batch_size, epochs=2, train_size=n, seed=s, device=DEVICE, width=8,
                num_blocks=2, groups=2) for s in (0, 1, 2)]
    got = stacked.train_stack(cfgs, splits)
    assert got[0]["compile"] == "cuda-graphs"
    for c, g in zip(cfgs, got, strict=True):
        want = train.train(dataclasses.replace(c, compile="none"), splits)
        state = want["model"].state_dict()
        assert max_gap(g["model"].state_dict(), state, rounding_noise(norm, state)) < 1e-10
        for gh, wh in zip(g["history"], want["history"], strict=True):
            print(norm, batch_size, c.seed, "train loss", gh["train_loss"], wh["train_loss"])
            assert gh["train_loss"] == pytest.approx(wh["train_loss"], rel=1e-8)
            assert abs(gh["test_acc"] - wh["test_acc"]) <= 1.0  # eval-mode BN reads the running means (rounding_noise)


@pytest.mark.parametrize("norm,batch_size,n", STACK_CASES)
def test_stacked_graphs_in_fp32_match_the_eager_stack_and_separate_runs(norm, batch_size, n, first_images):
    """fp32 with TF32, as the grid runs: the replayed stack as the same stack stepped eagerly (the same kernels, but
    cuDNN's weight gradients may sum in any order: 1e-4), and near the separate runs (TF32 rounds differently in a
    grouped convolution: 1e-2 in the training loss, 5 of 100 test images)."""
    splits = first_images(n)
    cfgs = [cfg(norm=norm, batch_size=batch_size, epochs=2, train_size=n, seed=s, device=DEVICE) for s in (0, 1, 2)]
    graphs = stacked.train_stack(cfgs, splits)
    eager = stacked.train_stack([dataclasses.replace(c, compile="none") for c in cfgs], splits)
    assert (graphs[0]["compile"], eager[0]["compile"]) == ("cuda-graphs", "none")
    for c, g, e in zip(cfgs, graphs, eager, strict=True):
        want = train.train(dataclasses.replace(c, compile="none"), splits)
        for gh, eh, wh in zip(g["history"], e["history"], want["history"], strict=True):
            print(norm, batch_size, c.seed, "train loss", gh["train_loss"], eh["train_loss"], wh["train_loss"],
                  "test acc", gh["test_acc"], eh["test_acc"], wh["test_acc"])
            assert math.isclose(gh["train_loss"], eh["train_loss"], rel_tol=1e-4)
            assert math.isclose(gh["train_loss"], wh["train_loss"], rel_tol=1e-2)
            assert abs(gh["test_acc"] - wh["test_acc"]) <= 5.0
            assert set(gh) == set(wh)
