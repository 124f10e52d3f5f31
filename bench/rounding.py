"""Has fp32 rounding a direction in either engine? At points along each run's float64 trajectory (the equivalence
benchmark's setup, where both engines are the same function), one batch's gradient is computed in float64, the
reference, and in fp32 three ways from the same weights and images: by the per-run engine's forward and loss
(train.train_step's), by the same with the batch's images in another order (the same gradient, rounded otherwise:
the control), and by the stacked engine's (stacked.Stack.step's, the runs side by side in one network). For each: the
fp32 error's size relative to the gradient, and three directions it could have, each 0 for rounding without one: its
component along the gradient (every step longer or shorter), its cosine with the weights (a pull like weight decay's)
and its cosine with the same engine's errors on other batches at the same weights (a drift that steps add up). A
direction in the stacked engine's rounding that the per-run engine lacks would explain a gap between their final
accuracies; without one, a gap builds up over a run in a way single steps do not show, or is chance. The conv biases
before BatchNorm are left out: their true gradient is 0 (bench.bias_drift measures them).

usage: python -m bench.rounding [--seeds 0 1 2 3] [--at 0 100 250 500] [--batches 4] [--batch-size 8]
                                [--train-images 2000] [--width 64] [--num-blocks 4] [--data PATH|synthetic]
Writes reports/bench/rounding-cpu.md and .jsonl (a row per run, trajectory step, batch and engine).
"""
import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from normlib.run import data as datalib
from normlib.run import stacked, train
from normlib.config import RunConfig
from normlib.run.model import Network
from normlib.report.stats import ALPHA, paired_stats

from . import bias_drift, equivalence
from .bench import device_info

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("separate", "control", "stacked")


def trajectory(cfgs: list, splits: dict, step: int) -> list:
    """Each run's float64 state dict after `step` optimizer steps of its own training (one float64 stack)."""
    with bias_drift.in_float64(True):
        if step == 0:
            return [train.seeded_model(c, "cpu").state_dict() for c in cfgs]
        runs = stacked.train_stack([dataclasses.replace(c, steps=step) for c in cfgs], splits)
        return [r["model"].state_dict() for r in runs]


def plain_grads(cfg: RunConfig, state: dict, xb: torch.Tensor, yb: torch.Tensor, dtype) -> dict:
    """One run's gradient on a batch, as the per-run engine's step computes it, in `dtype`."""
    net = Network(cfg.norm, cfg.num_blocks, cfg.width, cfg.groups, cfg.activation)
    net = net.to(dtype=dtype, memory_format=torch.channels_last)
    net.load_state_dict(state)
    F.cross_entropy(train.at_least_fp32(net(xb.to(dtype))), yb).backward()
    return {name: p.grad.double() for name, p in net.named_parameters()}


def stacked_grads(cfg: RunConfig, states: list, xs: torch.Tensor, ys: torch.Tensor) -> list:
    """Each run's gradient on its own batch (xs: (K, b, 3, 32, 32)), as the stacked engine's step computes it."""
    runs, b = len(states), xs.shape[1]
    net = Network(cfg.norm, cfg.num_blocks, cfg.width, cfg.groups, cfg.activation, runs=runs)
    stacked.load_runs(net, states)
    stacked.run_losses(net(stacked.side_by_side(xs)).view(runs, b, -1), ys).sum().backward()
    shapes = {k: v.shape for k, v in states[0].items()}
    return [{name: stacked.run_tensor(p.grad, k, runs, shapes[name]).double() for name, p in net.named_parameters()}
            for k in range(runs)]


def flat(tensors: dict, keys: list) -> torch.Tensor:
    return torch.cat([tensors[k].flatten() for k in keys])


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a @ b / (a.norm() * b.norm())).item()


def error(g: dict, ref: dict, weights: dict) -> tuple:
    """The fp32 gradient's error against the float64 one, over every parameter but the noise biases: its size
    relative to the gradient, its component along the gradient (positive: a longer step) and its cosine with the
    weights (positive: a pull like weight decay's, negative: a push); and the error itself."""
    keys = [k for k in ref if not bias_drift.is_noise(k)]
    r, w = flat(ref, keys), flat(weights, keys)
    d = flat(g, keys) - r
    return {"relative": (d.norm() / r.norm()).item(), "along": (d @ r / (r @ r)).item(), "weights": -cosine(d, w)}, d


def batch_indices(n: int, seed: int, step: int, j: int, size: int) -> torch.Tensor:
    """Batch j probed at `step` of run `seed`: `size` of the n training images, drawn afresh."""
    return torch.from_numpy(np.random.default_rng([seed, step, j]).choice(n, size, replace=False))


def rows_at(cfgs: list, x: torch.Tensor, y: torch.Tensor, step: int, states: list, batches: int) -> list:
    """A row per run, batch and engine at one trajectory step; each with `persists`, the mean cosine of its error
    with the same engine's errors on the other batches at the same weights (0 for rounding without a direction)."""
    rows, errors = [], {}
    for j in range(batches):
        idx = torch.stack([batch_indices(len(y), c.seed, step, j, c.batch_size) for c in cfgs])  # (K, b)
        st = stacked_grads(cfgs[0], states, x[idx], y[idx])  # indexed as the stacked engine indexes
        for k, (c, s) in enumerate(zip(cfgs, states)):
            xb, yb = x[idx[k]], y[idx[k]]  # as the per-run engine indexes
            ref = plain_grads(c, s, xb, yb, torch.float64)
            order = torch.from_numpy(np.random.default_rng([c.seed, step, j, 1]).permutation(len(yb)))
            got = {"separate": plain_grads(c, s, xb, yb, torch.float32),
                   "control": plain_grads(c, s, xb[order], yb[order], torch.float32), "stacked": st[k]}
            for e, g in got.items():
                row, errors[c.seed, e, j] = error(g, ref, s)
                rows.append({"seed": c.seed, "step": step, "batch": j, "engine": e, **row})
    for r in rows:
        others = [cosine(errors[r["seed"], r["engine"], r["batch"]], errors[r["seed"], r["engine"], i])
                  for i in range(batches) if i != r["batch"]]
        r["persists"] = float(np.mean(others)) if others else float("nan")
    return rows


MEASURES = {"along": "error along the gradient", "weights": "error's pull toward the weights (cosine)",
            "persists": "error shared with other batches' (cosine)"}


def summary(rows: list) -> dict:
    """Per engine: the mean relative error, and each direction measure (mean, 95% CI, p) over the (run, step) means
    (the batches at one step share their weights); and the stacked engine's relative error against the control's,
    paired by run, step and batch."""
    by = {e: [r for r in rows if r["engine"] == e] for e in ENGINES}
    out = {}
    for e, rs in by.items():
        at = {(r["seed"], r["step"]) for r in rs}
        means = {m: [np.mean([r[m] for r in rs if (r["seed"], r["step"]) == key]) for key in sorted(at)]
                 for m in MEASURES}
        out[e] = {"relative": float(np.mean([r["relative"] for r in rs])),
                  **{m: paired_stats(v) for m, v in means.items()}}
    out["stacked_vs_control"] = paired_stats([s["relative"] - c["relative"]
                                              for s, c in zip(by["stacked"], by["control"], strict=True)])
    return out


def interval(a: dict) -> str:
    return f"{a['diff']:+.2e} [{a['diff'] - a['ci95']:+.2e}, {a['diff'] + a['ci95']:+.2e}], p {a['p']:.2g}"


def markdown(meta: dict, s: dict) -> str:
    names = {"separate": "per-run engine", "control": "per-run engine, images in another order",
             "stacked": "stacked engine"}
    lines = [f"# Rounding of the two engines against float64: {meta['device']['name']}", "",
             f"`{meta['command']}`; torch {meta['torch']}, 1 thread; {meta['params']}; {meta['rows']} gradients per "
             f"engine ({meta['wall_seconds']:.0f} s). Directions: mean [95% CI] over each run's trajectory steps "
             f"(0 for rounding without one).", "",
             "| fp32 gradient | mean error / gradient | " + " | ".join(MEASURES.values()) + " |",
             "|---|---:|" + "---:|" * len(MEASURES)]
    for e in ENGINES:
        cells = [names[e], f"{s[e]['relative']:.2e}", *(interval(s[e][m]) for m in MEASURES)]
        lines.append("| " + " | ".join(cells) + " |")
    d = s["stacked_vs_control"]
    shown = [MEASURES[m] for m in MEASURES if s["stacked"][m]["p"] < ALPHA]
    size = ("not shown different from" if d["p"] >= ALPHA else "smaller than" if d["diff"] < 0 else "larger than")
    direction = f"has a direction: {', '.join(shown)}" if shown else "shows no direction"
    lines += ["", f"Stacked - control, relative error paired by gradient: {interval(d)}.", "",
              f"**The stacked engine's rounding {direction}**, and its error is {size} the control's, which rounds "
              f"the same gradient otherwise."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.rounding", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="the runs of one stack")
    ap.add_argument("--at", type=int, nargs="+", default=[0, 100, 250, 500], help="trajectory steps probed")
    ap.add_argument("--batches", type=int, default=4, help="batches probed at each step")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--train-images", type=int, default=2000)
    ap.add_argument("--width", type=int, default=RunConfig.width)
    ap.add_argument("--num-blocks", type=int, default=RunConfig.num_blocks)
    ap.add_argument("--data", default="", help='CIFAR-10 folder or archive, or "synthetic"; empty for $NORMLIB_DATA')
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench"))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    splits = datalib.splits(datalib.load(a.data), a.train_images, 1, 0, 0)
    setup = argparse.Namespace(norm="batch", batch_size=a.batch_size, epochs=2, train_images=a.train_images,
                               test_images=1, width=a.width, num_blocks=a.num_blocks, threads=1,
                               device="cpu")
    cfgs = equivalence.configs(setup, a.seeds)
    x, y = train.to_device(*splits["train"], "cpu")
    t0, rows = time.perf_counter(), []
    for step in a.at:
        rows += rows_at(cfgs, x, y, step, trajectory(cfgs, splits, step), a.batches)
    meta = {"command": " ".join(["python -m bench.rounding", *(sys.argv[1:] if argv is None else argv)]),
            "torch": torch.__version__, "device": device_info(torch.device("cpu")),
            "params": f"BatchNorm, batch size {a.batch_size}, seeds {' '.join(map(str, a.seeds))}, steps "
                      f"{' '.join(map(str, a.at))} of {a.train_images} images, {a.batches} batches each",
            "rows": len(rows) // len(ENGINES), "wall_seconds": time.perf_counter() - t0}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rounding-cpu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [meta, *rows]))
    table = markdown(meta, summary(rows))
    (out / "rounding-cpu.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
