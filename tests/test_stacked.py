"""The stacked engine against separate runs of normlib.run.train: the same numbers, exactly in float64 and within stated
tolerances in fp32, for every norm and both activations; each run's own record, checkpoint and resume."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bench.bias_drift import is_noise, max_gap
from helpers import tiny_config
from normlib.run import evaluation, stacked, train
from normlib.store import records
from normlib.norms import NORMS
from normlib.run.model import Network

SMALL = dict(width=8, num_blocks=2, groups=2)  # a narrow network: seconds on two cores
SEEDS = (0, 1, 2, 3)  # K = 4 runs, as the prototype


def cfg(**kw):
    return tiny_config({**SMALL, "epochs": 1, "batch_size": 2}, **kw)


def cell(seeds=SEEDS, **kw):
    return [cfg(seed=s, **kw) for s in seeds]


def rounding_noise(norm: str, state: dict) -> set:
    """The conv biases before a mean-free norm (batch, instance) and BN's running means, which add them up: those
    biases change nothing downstream, so their gradient is rounding noise that Adam's normalisation turns into a
    full step in either engine (up to 4e-9 apart after 6 steps here)."""
    return {k for k in state if is_noise(k)} if norm in ("batch", "instance") else set()


@pytest.mark.parametrize("norm,activation", [(n, "relu") for n in NORMS] + [("batch", "sigmoid"),
                                                                            ("group", "sigmoid")])
def test_stacked_equals_separate_runs_in_float64(norm, activation, first_images, float64):
    """6 Adam steps at K = 4, batch size 2: every weight, BN's running variances and each record's numbers agree to
    rounding (weights 1e-12 absolute, measured up to 1.5e-14), rounding noise aside (rounding_noise); the records'
    numbers to 1e-8 relative (the BN probe's mean gap reads the running means: 1e-9 apart)."""
    cfgs = cell(norm=norm, activation=activation, steps=6)
    splits = first_images(40)
    got = stacked.train_stack(cfgs, splits)
    for c, g in zip(cfgs, got, strict=True):
        want = train.train(c, splits)
        assert g["model"].state_dict()["conv1.weight"].dtype == torch.float64
        state = want["model"].state_dict()
        assert max_gap(g["model"].state_dict(), state, rounding_noise(norm, state)) < 1e-12
        for gh, wh in zip(g["history"], want["history"], strict=True):
            assert set(gh) == set(wh)
            for key in gh:
                if not key.endswith("_seconds"):
                    assert gh[key] == pytest.approx(wh[key], rel=1e-8, abs=1e-12), key


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_a_stack_of_one_is_the_run_itself(norm, first_images, float64):
    """engine=stacked for a lone run (normlib.run.runner): the plain network, stepped by the stacked engine's step."""
    c = cfg(norm=norm, steps=6, seed=5)
    got, want = stacked.train_stack([c], first_images(40))[0], train.train(c, first_images(40))
    state = want["model"].state_dict()
    assert got["stacked_with"] == [] and max_gap(got["model"].state_dict(), state, rounding_noise(norm, state)) < 1e-12
    assert ("bn_mean_gap" in got["history"][0]) == (norm == "batch")


def test_float64_stack_keeps_each_runs_adam_state(first_images, float64):
    """A checkpoint of a stacked run holds that run's own Adam moments: those of its separate run."""
    cfgs = cell(norm="batch", steps=6)
    splits = first_images(40)
    states = {}
    stacked.train_stack(cfgs, splits, on_epoch=lambda k, state: states.setdefault(k, state))
    for k, c in enumerate(cfgs):
        saved = []
        train.train(c, splits, on_epoch=saved.append)
        want, got = saved[0]["opt"]["state"], states[k]["opt"]["state"]
        names = list(saved[0]["model"])  # the parameters' names in their order, buffers after them
        assert want.keys() == got.keys()
        noise = rounding_noise("batch", saved[0]["model"])
        for i in want:
            if names[i] not in noise:
                assert max_gap(got[i], want[i]) < 1e-12, names[i]


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_stacked_fp32_within_tolerance_of_separate_runs(norm, tiny_splits):
    """2 epochs at batch size 8 (200 images: a partial last batch) in fp32, where the two engines' reduction orders
    differ: training loss within 2e-3 relative, grad_abs within 2e-2; test loss within 5e-3 and test accuracy within
    4 of 100 images, since BN's eval mode reads running means that add up the conv biases before it, whose steps are
    Adam-normalised rounding noise (measured on this CPU for BatchNorm: 1.1e-6, 1.2e-3 and 3 images; pytest -s prints
    the gaps)."""
    cfgs = cell(norm=norm, batch_size=8, epochs=2, seeds=(0, 1, 2))
    gaps = {"train_loss": 0.0, "test_loss": 0.0, "test_acc": 0.0}
    for c, g in zip(cfgs, stacked.train_stack(cfgs, tiny_splits), strict=True):
        want = train.train(c, tiny_splits)
        for gh, wh in zip(g["history"], want["history"], strict=True):
            assert set(gh) == set(wh)
            for key in gaps:
                gap = abs(gh[key] - wh[key]) / (1 if key == "test_acc" else abs(wh[key]))
                gaps[key] = max(gaps[key], gap)
            assert gh["grad_abs"] == pytest.approx(wh["grad_abs"], rel=2e-2)
    print(norm, "largest gaps (relative; test_acc in points):", gaps)
    assert gaps["train_loss"] <= 2e-3 and gaps["test_loss"] <= 5e-3 and gaps["test_acc"] <= 4.0


def test_resumed_stack_is_bit_exact(tiny_splits):
    """Interrupted after its first epoch and resumed from its runs' checkpoints, a stack ends as an uninterrupted one
    (on the CPU, bit for bit)."""
    cfgs = cell(norm="batch", batch_size=8, epochs=2, seeds=(0, 1))
    strip = lambda h: [{k: v for k, v in e.items() if not k.endswith("_seconds")} for e in h]  # noqa: E731
    full = [strip(r["history"]) for r in stacked.train_stack(cfgs, tiny_splits)]
    saved = {}

    class Stop(Exception):
        pass

    def interrupt(k, state):
        saved[k] = state
        if k == len(cfgs) - 1:
            raise Stop

    with pytest.raises(Stop):
        stacked.train_stack(cfgs, tiny_splits, on_epoch=interrupt)
    resumed = stacked.train_stack(cfgs, tiny_splits, [saved[k] for k in range(len(cfgs))])
    assert [strip(r["history"]) for r in resumed] == full


SYNC_OPS = {"_local_scalar_dense", "nonzero", "is_nonzero", "equal", "masked_select", "unique", "_unique2", "item"}


class Ops(TorchDispatchMode):
    """The names of the aten ops that run inside it."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func._schema.name.split("::")[-1])
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_a_step_is_capture_safe(norm, first_images, monkeypatch):
    """The CPU's proxy for 'one CUDA graph replays the step': no op that syncs with the host or has a data-dependent
    shape (Adam aside: the CPU's fused Adam reads its step count on the host, CUDA's capturable one does not), and
    every tensor the step reads or keeps (weights, buffers, Adam state, gradients, permutations, cursor, sums) at the
    same address step after step."""
    st = stacked.Stack(cell(norm=norm, batch_size=4, seeds=(0, 1)), first_images(64))
    st.shuffle()
    offsets = torch.arange(4)
    for _ in range(2):  # Adam's state and the gradients exist from here on
        st.step(offsets)

    def addresses():
        kept = [*st.model.parameters(), *st.model.buffers(), *(p.grad for p in st.model.parameters()),
                *(v for s in st.opt.state.values() for v in s.values()), st.perms, st.cursor, st.sums.loss,
                st.sums.correct, st.sums.grad_l1]
        return [t.data_ptr() for t in kept]

    before = addresses()
    adam = st.opt.step
    monkeypatch.setattr(st.opt, "step", lambda: None)
    with Ops() as ops:
        st.step(offsets)
    monkeypatch.setattr(st.opt, "step", adam)
    st.step(offsets)
    assert not SYNC_OPS & set(ops.names) and "convolution" in ops.names
    assert addresses() == before and st.cursor.item() == 4 * 4


# What could set a stacked run apart from its separate twin in fp32 (issue: stacked 0.70 points below separate at
# batch size 8), each ruled out here; bench/equivalence.py measures what remains, the rounding, over many seeds.
def test_each_run_of_a_stack_sees_the_per_run_engines_data_order(first_images):
    """Epoch after epoch, run k's permutation in a stack is the one the per-run engine draws for its seed."""
    st = stacked.Stack(cell(seeds=(3, 5)), first_images(64))
    alone = [train.Single(c, first_images(64)) for c in st.cfgs]
    for _ in range(2):
        st.shuffle()
        for k, r in enumerate(alone):
            assert torch.equal(st.perms[k], torch.randperm(64, generator=r.gen))


def test_a_stacked_run_is_evaluated_as_its_weights_in_a_plain_network(first_images):
    """The record's evaluation is of run k's own weights and BN statistics, copied into a plain Network."""
    st = stacked.Stack(cell(seeds=(0, 1), norm="batch"), first_images(64))
    st.epoch()
    x, y = st.xs["test"]
    for k in range(st.runs):
        model = st.run_model(k)
        alone = Network("batch", SMALL["num_blocks"], SMALL["width"], SMALL["groups"])
        alone.load_state_dict({n: t.clone() for n, t in model.state_dict().items()})
        assert evaluation.evaluate(model, x, y, 16) == evaluation.evaluate(alone, x, y, 16)
        stacked_logits = st.model.eval()(x.repeat(1, st.runs, 1, 1))[k]  # every run fed the same images
        assert torch.allclose(stacked_logits, alone.eval()(x), atol=1e-5)


def test_a_runs_partners_do_not_change_its_numbers_in_fp32(first_images):
    """Bit for bit on the CPU: run 0 stacked with seed 1 or with seed 2 (the same stack size) gives the same record;
    its BN statistics, groups, loss and Adam state are its own. The stack's size changes the kernels, and so the
    rounding (tests/test_checkpoints.py keeps a resumed stack's partners)."""
    parts = first_images(48)
    with_1 = stacked.train_stack(cell(seeds=(0, 1), norm="batch", epochs=2, batch_size=8), parts)[0]
    with_2 = stacked.train_stack(cell(seeds=(0, 2), norm="batch", epochs=2, batch_size=8), parts)[0]
    assert records.untimed(with_1["history"]) == records.untimed(with_2["history"])
