"""Do the conv biases before BatchNorm drift alike in the stacked and the per-run engine? Their true gradient is zero
(BatchNorm removes any constant), so what they get is rounding noise, which Adam normalises into full-size steps; if
one engine's noise had a direction, its biases would drift further and BatchNorm's running means would lag them at
test time. Trains one stack of the equivalence benchmark's setup and each of its seeds separately, and prints, per
seed, both final test accuracies, each block's mean |conv bias| and the largest gap between the two engines' final
weights outside those biases and BatchNorm's running means (one JSON line per seed). --float64 trains in float64
(data and models), where the engines are the same function up to rounding: whether whole runs stay together there
tells a gap in the engines' arithmetic from fp32 rounding that grows over a run.

usage: python -m bench.bias_drift [--seeds 0 1 2 3] [--train-images 2000] [--test-images 1000] [--epochs 2]
                                  [--batch-size 8] [--data PATH|synthetic] [--width 64] [--num-blocks 4]
                                  [--float64]
"""
import argparse
import json
import sys
from contextlib import nullcontext

import torch

from normlib.run import data as datalib
from normlib.run import device as devices
from normlib.run import stacked, train
from normlib.config import RunConfig

from . import equivalence


def block_biases(model) -> dict:
    """Each block's mean |conv bias|."""
    return {k: v.abs().mean().item() for k, v in model.state_dict().items()
            if k.startswith("blocks.") and k.endswith("conv.bias")}


def is_noise(name: str) -> bool:
    """A block's conv bias before BatchNorm, or the running mean that adds it up: rounding noise in either engine."""
    return name.startswith("blocks.") and name.endswith(("conv.bias", "running_mean"))


def max_gap(a: dict, b: dict, skip=()) -> float:
    """The largest |difference| between two state dicts' tensors, the names in `skip` aside."""
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if k not in skip)


def weight_gap(a, b) -> float:
    """The largest |difference| between two models' weights, the rounding-noise biases and running means aside."""
    sa = a.state_dict()
    return max_gap(sa, b.state_dict(), {k for k in sa if is_noise(k)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bias_drift", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--train-images", type=int, default=2000)
    ap.add_argument("--test-images", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--width", type=int, default=RunConfig.width)
    ap.add_argument("--num-blocks", type=int, default=RunConfig.num_blocks)
    ap.add_argument("--data", default="", help='CIFAR-10 folder or archive, or "synthetic"; empty for $NORMLIB_DATA')
    ap.add_argument("--float64", action="store_true", help="data and models in float64")
    a = ap.parse_args(argv)
    with in_float64(a.float64):
        return compare(a)


def in_float64(on: bool):
    """Models and images in float64 while it lasts, when `on`."""
    return devices.default_dtype(torch.float64) if on else nullcontext()


def compare(a) -> int:
    """One stack of the seeds and each seed alone (1 thread each); a JSON line per seed."""
    splits = datalib.splits(datalib.load(a.data), a.train_images, a.test_images, 0, 0)
    cfgs = equivalence.configs(argparse.Namespace(**vars(a), norm="batch", threads=1, device="cpu"), a.seeds)
    for cfg, st in zip(cfgs, stacked.train_stack(cfgs, splits)):
        alone = train.train(cfg, splits)
        print(json.dumps({"seed": cfg.seed, "stacked_acc": st["history"][-1]["test_acc"],
                          "separate_acc": alone["history"][-1]["test_acc"],
                          "stacked_bias": block_biases(st["model"]), "separate_bias": block_biases(alone["model"]),
                          "weight_gap": weight_gap(st["model"], alone["model"]),
                          "dtype": str(torch.get_default_dtype())}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
