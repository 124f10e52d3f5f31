"""Do the conv biases before BatchNorm drift alike in the stacked and the per-run engine? Their true gradient is zero
(BatchNorm removes any constant), so what they get is rounding noise, which Adam normalises into full-size steps; if
one engine's noise had a direction, its biases would drift further and BatchNorm's running means would lag them at
test time. Trains one stack of the equivalence benchmark's setup and each of its seeds separately, and prints, per
seed, both final test accuracies and each block's mean |conv bias| (one JSON line per seed).

usage: python -m bench.bias_drift [--seeds 0 1 2 3] [--train-images 2000] [--test-images 1000] [--epochs 2]
                                  [--batch-size 8] [--data PATH|synthetic] [--width 64] [--num-blocks 4]
"""
import argparse
import json
import sys

import torch

from normlib import data as datalib
from normlib import stacked, train
from normlib.config import RunConfig


def block_biases(model) -> dict:
    """Each block's mean |conv bias|."""
    return {k: v.abs().mean().item() for k, v in model.state_dict().items()
            if k.startswith("blocks.") and k.endswith("conv.bias")}


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
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    splits = datalib.splits(datalib.load(a.data), a.train_images, a.test_images, 0, 0)
    cfgs = [RunConfig(norm="batch", batch_size=a.batch_size, epochs=a.epochs, train_size=a.train_images,
                      test_size=a.test_images, width=a.width, num_blocks=a.num_blocks, threads=1, device="cpu",
                      engine="stacked", seed=s) for s in a.seeds]
    for cfg, st in zip(cfgs, stacked.train_stack(cfgs, splits)):
        alone = train.train(cfg, splits)
        print(json.dumps({"seed": cfg.seed, "stacked_acc": st["history"][-1]["test_acc"],
                          "separate_acc": alone["history"][-1]["test_acc"],
                          "stacked_bias": block_biases(st["model"]), "separate_bias": block_biases(alone["model"])}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
