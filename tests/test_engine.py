"""The fast engine against a plain eager loop: same losses, same evaluation, whatever the layout and chunking."""
import math
import platform
import resource

import pytest
import torch
import torch.nn.functional as F

from helpers import tiny_config
from normlib.run import evaluation, train
from normlib.store import records
from normlib.run import device as devices
from normlib.config import RunConfig
from normlib.norms import NORMS
from normlib.run.model import Network

SMALL = dict(width=16, num_blocks=2)  # a narrow network: seconds on two cores


def cfg(**kw):
    return tiny_config({**SMALL, "epochs": 2, "batch_size": 8}, **kw)


def original_tensors(x, y):
    """The original's ToTensor + Normalize(0.5, 0.5) on the whole set, NCHW contiguous."""
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().float() / 255
    return (x - 0.5) / 0.5, torch.from_numpy(y)


def eager_reference(c: RunConfig, splits: dict, device: str = "cpu") -> dict:
    """The plainest loop that trains like the engine: NCHW, whole batches, the same permutation order (drawn, as the
    engine draws it, from a generator on the training device)."""
    torch.manual_seed(c.seed)
    model = Network(c.norm, c.num_blocks, c.width, c.groups, c.activation).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=c.lr)
    gen = torch.Generator(device).manual_seed(c.seed)
    (x, y), (tx, ty) = original_tensors(*splits["train"]), original_tensors(*splits["test"])
    x, y, tx, ty = (t.to(device) for t in (x, y, tx, ty))
    convs = [m.weight for m in model.conv_layers()]
    history = []
    for _ in range(c.epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen, device=device)
        losses, grad_abs = [], torch.zeros(len(convs), device=device)
        for i in range(0, len(x), c.batch_size):
            idx = perm[i:i + c.batch_size]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            grad_abs += torch.stack([w.grad.abs().mean() for w in convs])
            opt.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            out = model(tx)
        history.append({"train_loss": sum(losses) / len(losses), "test_loss": F.cross_entropy(out, ty).item(),
                        "test_acc": 100.0 * (out.argmax(1) == ty).float().mean().item(),
                        "grad_abs": (grad_abs / len(losses)).tolist()})
    return {"history": history, "model": model}


@pytest.mark.parametrize("norm,batch_size", [("batch", 2), ("batch", 40), ("group", 2), ("group", 40),
                                             ("layer", 40), ("none", 40)])
def test_engine_matches_eager_reference(norm, batch_size, first_images):
    """Batch 40 leaves a partial last batch (200 images), as the original's DataLoader does."""
    c = cfg(norm=norm, batch_size=batch_size, epochs=2 if batch_size > 2 else 1,
            train_size=0 if batch_size > 2 else 60)
    splits = first_images(0 if batch_size > 2 else 60)
    got, want = train.train(c, splits), eager_reference(c, splits)
    for g, w in zip(got["history"], want["history"], strict=True):
        assert math.isclose(g["train_loss"], w["train_loss"], rel_tol=1e-4), (g["train_loss"], w["train_loss"])
        assert math.isclose(g["test_loss"], w["test_loss"], rel_tol=1e-3), (g["test_loss"], w["test_loss"])
        assert abs(g["test_acc"] - w["test_acc"]) <= 1.0  # at most one of 100 test images flips
        assert g["grad_abs"] == pytest.approx(w["grad_abs"], rel=1e-3)
    mean_free = norm in ("batch", "instance")  # the conv bias before such a norm has no effect: its gradient is
    for (name, p), q in zip(got["model"].named_parameters(), want["model"].parameters()):  # rounding noise
        if not (mean_free and name.startswith("blocks.") and name.endswith("conv.bias")):
            torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4, msg=lambda m: f"{name}: {m}")


@pytest.mark.slow  # inductor runs the C++ compiler in subprocesses: seconds, more with a cold cache; CPU runs are eager
def test_compiled_step_matches_eager_reference(tiny_splits):
    """The compiled forward, backward and Adam step (the default on CUDA, where it also replays them from CUDA
    graphs) train as the eager loop; a partial last batch runs eagerly."""
    c = cfg(norm="batch", batch_size=40, epochs=2, compile="default", diagnostics=False)
    got, want = train.train(c, tiny_splits), eager_reference(c, tiny_splits)
    for g, w in zip(got["history"], want["history"], strict=True):
        assert math.isclose(g["train_loss"], w["train_loss"], rel_tol=1e-4), (g["train_loss"], w["train_loss"])
        assert math.isclose(g["test_loss"], w["test_loss"], rel_tol=1e-3), (g["test_loss"], w["test_loss"])


@pytest.mark.parametrize("fails_at", [1, 3])  # compilation (first call), CUDA-graph capture (by the third)
def test_a_compiled_step_that_raises_falls_back_to_eager(tiny_splits, monkeypatch, fails_at):
    """A failing torch.compile must not fail the run: the step is retaken eagerly from the saved state, the
    record says why, and the numbers are those of an eager run."""
    calls = {"n": 0}

    def broken_compile(fn, mode=None):
        def call(*args, **kw):
            calls["n"] += 1
            if calls["n"] >= fails_at:
                raise RuntimeError("inductor: no C++ compiler (forced by the test)")
            return fn(*args, **kw)
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    c = cfg(norm="batch", batch_size=40, epochs=2, compile="default")
    got = train.train(c, tiny_splits)
    want = train.train(cfg(norm="batch", batch_size=40, epochs=2, compile="none"), tiny_splits)
    assert got["compile_fallback"] == "RuntimeError: inductor: no C++ compiler (forced by the test)"
    assert want["compile_fallback"] is None
    assert records.untimed(got["history"]) == records.untimed(want["history"])


def test_compilation_by_default_on_cuda_only():
    assert devices.compile_mode(RunConfig(), torch.device("cuda")) == "reduce-overhead"
    assert devices.compile_mode(RunConfig(), torch.device("cpu")) == "none"
    assert devices.compile_mode(RunConfig(compile="default"), torch.device("cpu")) == "default"


def test_batches_stay_channels_last(tiny_splits):
    x, _ = train.to_device(*tiny_splits["train"], torch.device("cpu"))
    idx = torch.randperm(len(x))[:7]
    for t in (x, x[idx], x[idx][2:5]):
        assert t.is_contiguous(memory_format=torch.channels_last) and t.dtype == torch.float32
    want, _ = original_tensors(*tiny_splits["train"])
    torch.testing.assert_close(x, want, rtol=0, atol=1e-6)  # x/127.5 - 1 == (x/255 - 0.5)/0.5 up to rounding


@pytest.mark.parametrize("norm", NORMS)
def test_evaluation_in_large_batches_equals_evaluation_at_training_batch_size(norm, tiny_splits):
    """The seed evaluates at the training batch size; the engine in large batches: the same accuracy."""
    model = train.train(cfg(norm=norm, epochs=1), tiny_splits)["model"]
    x, y = train.to_device(*tiny_splits["test"], torch.device("cpu"))
    at_train = evaluation.evaluate(model, x, y, batch=3)  # 100 images: 33 batches and a last one of 1
    for batch in (32, len(x), RunConfig().eval_batch):  # 100 images: batches of 32 and 4, one batch, the default
        loss, acc = evaluation.evaluate(model, x, y, batch=batch)
        assert acc == at_train[1] and math.isclose(loss, at_train[0], rel_tol=1e-5)
    nchw = Network(norm, **SMALL)  # the original's layout and loop
    nchw.load_state_dict(model.state_dict())
    nchw.eval()
    sx, sy = original_tensors(*tiny_splits["test"])
    with torch.no_grad():
        correct = sum((nchw(sx[i:i + 3]).argmax(1) == sy[i:i + 3]).sum().item() for i in range(0, len(sx), 3))
    assert 100.0 * correct / len(sx) == at_train[1]


def test_unknown_compile_mode_names_the_allowed_ones():
    model = Network("group", **SMALL)
    with pytest.raises(ValueError, match="compile='fast': allowed none, default, reduce-overhead"):
        devices.compiled(model, torch.optim.Adam(model.parameters()), "fast")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_cpu_steps_reuse_memory_instead_of_faulting_it_in():
    devices.configure(torch.device("cpu"))
    x = torch.randn(128, 64, 32, 32)  # 32 MiB: one activation at batch 128
    for _ in range(4):  # the heap grows to its working size
        torch.relu(x).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        torch.relu(x).sum()
    fresh_pages = 8 * x.numel() * 4 // 4096  # what mapping each result afresh would cost
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < fresh_pages // 4


def test_bn_probe_reads_the_batch_statistics_bn_computed():
    """The probe recovers each batch's statistics from BN's running-average update; compare with computing them."""
    torch.manual_seed(0)
    model = Network("batch", **SMALL).train()
    x = torch.randn(8, 3, 32, 32) * 2 + 1
    for _ in range(3):  # running statistics away from their initial values
        model(x + torch.randn_like(x))
    seen = []
    hooks = [bn.register_forward_pre_hook(lambda bn, i: seen.append(
        (bn.running_mean.clone(), bn.running_var.clone(), *torch.var_mean(i[0], (0, 2, 3), unbiased=False))))
        for bn in model.modules() if isinstance(bn, torch.nn.BatchNorm2d)]
    probe = evaluation.BNProbe(model)
    model(x)
    got = probe.close()
    for h in hooks:
        h.remove()
    mean_gap = sum(((m - rm).abs() / (rv + 1e-5).sqrt()).mean() for rm, rv, v, m in seen) / len(seen)
    var_gap = sum(((v + 1e-5) / (rv + 1e-5)).log().abs().mean() for rm, rv, v, m in seen) / len(seen)
    assert got["bn_mean_gap"] == pytest.approx(mean_gap.item(), rel=1e-4)
    assert got["bn_var_logratio"] == pytest.approx(var_gap.item(), rel=1e-4)
