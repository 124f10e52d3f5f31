"""The original study this project reproduces: its published table and its protocol, and how ours differs (its three
expected outcomes and the rules that decide them are objects of report.rules)."""
import math
from pathlib import Path

import pandas as pd

from ..config import TRAIN_IMAGES
from .load import metric_text
from .stats import ci95
from .text import param_text

TOL = 3.0  # accuracy points: the original's "within 3%" (outcome 3) and the band of "similar performance" (outcome 2)
PAIR = ("batch", "group")  # the original's comparison: BatchNorm (a) vs GroupNorm (b)

# The original's published results table: the best of 10 epochs (picked on the test set), mean ± std over 5 runs, all
# of CIFAR-10, Adam lr 1e-3, 4 blocks. The one typed-in result in this project; every use is labelled as the
# original's.
ORIGINAL_RUNS = 5
ORIGINAL_TABLE = {  # batch size: ((BatchNorm mean, std), (GroupNorm mean, std)), accuracy %
    2: ((67.83, 2.21), (71.97, 1.91)),
    4: ((75.92, 1.07), (71.71, 1.15)),
    8: ((77.74, 0.76), (71.91, 0.53)),
    16: ((77.79, 0.54), (71.49, 0.54)),
    32: ((76.83, 1.01), (70.43, 1.26)),
    64: ((75.37, 1.23), (69.71, 0.55)),
    128: ((72.96, 0.85), (67.77, 0.87)),
}
ORIGINAL_PROTOCOL = {"epochs": 10, "train_size": 0, "test_size": 0, "val_size": 0, "num_blocks": 4, "width": 64,
                     "activation": "relu", "lr": 0.001, "steps": 0, "lr_scaling": "none", "groups": 4,
                     "precision": "fp32"}  # the original's code; size 0 = all
ORIGINAL_DATA = "torchvision CIFAR10"  # the original's data: CIFAR-10's python pickles, as data.py names a download
ORIGINAL_METRIC = "best_acc"  # the best of its epochs' test accuracies, the epoch picked on the test set


def original_stats() -> pd.DataFrame:
    """The original's published table as a stats() frame (n = its 5 runs)."""
    rows = [{"batch_size": bs, "norm": norm, "n": ORIGINAL_RUNS, "mean": mean, "std": std,
             "ci95": ci95(std, ORIGINAL_RUNS)}
            for bs, cells in ORIGINAL_TABLE.items() for norm, (mean, std) in zip(PAIR, cells)]
    return pd.DataFrame(rows)


def original_steps() -> dict:
    """Optimizer steps per run of the original at each batch size: its epochs over all training images, the last
    batch of an epoch partial (a DataLoader without drop_last)."""
    return {bs: [ORIGINAL_PROTOCOL["epochs"] * math.ceil(TRAIN_IMAGES / bs)] for bs in ORIGINAL_TABLE}


# ---------------------------------------------------------------- our protocol against the original's

def data_source_text(source: str) -> str:
    """How a data source differs from the original's (CIFAR-10's python pickles); '' when it is those."""
    name = Path(source).name
    if source == ORIGINAL_DATA or "cifar-10-batches-py" in source:
        return ""
    if source == "synthetic":
        return "synthetic images, not CIFAR-10"
    if "jpeg" in name.lower() or "jpg" in name.lower():
        return (f"an image-folder JPEG copy of CIFAR-10 (`{name}`), not the original's python pickles: JPEG "
                f"compression changes the pixels; what that costs in accuracy is measured by the data-copy control "
                f"(params/cpu_pixels_*.yaml) on a subset whose original pixels are known")
    return f"`{name}`, not known to be the original's python pickles of CIFAR-10"


def protocol_differences(runs: pd.DataFrame, metric: str, k: int) -> list:
    """Every respect in which these runs' protocol differs from the original's: data source, each parameter of
    ORIGINAL_PROTOCOL (precision, subset sizes, validation split, epochs, ...) and the metric; [] when none does."""
    out = []
    for source in sorted(runs.prov_data_source.dropna().unique()) if "prov_data_source" in runs else ["unrecorded"]:
        text = data_source_text(str(source))
        if text:
            out.append(f"data: {text}")
    for key, theirs in ORIGINAL_PROTOCOL.items():
        ours = sorted(runs[key].unique().tolist(), key=str)
        if ours != [theirs]:
            what = {"val_size": "validation split", "train_size": "training images",
                    "test_size": "test images"}.get(key, key)
            out.append(f"{what} {', '.join(param_text(key, v) for v in ours)} (original: "
                       f"{'none' if key == 'val_size' else param_text(key, theirs)})")
    if metric != ORIGINAL_METRIC:
        out.append(f"metric {metric}, {metric_text(metric, k)} (original: the best epoch's test accuracy, the epoch "
                   f"picked on the test set, which is optimistic; our `{ORIGINAL_METRIC}` columns make the same "
                   f"selection)")
    return out


def regime_text(runs: pd.DataFrame) -> str:
    """How these runs' training regime differs from the original's in training images or epochs, e.g. '6,000
    training images and 3 epochs against the original's 50,000 and 10'; '' when it differs in neither (a difference
    in data source or metric alone leaves the levels comparable in regime)."""
    images = int(runs.train_images.median()) if "train_images" in runs and runs.train_images.notna().any() else (
        int(runs.train_size.median()) or TRAIN_IMAGES if "train_size" in runs else TRAIN_IMAGES)
    epochs = int(runs.epochs_run.median()) if "epochs_run" in runs else int(runs.epochs.median())
    ours, theirs = [], []
    if images != TRAIN_IMAGES:
        ours.append(f"{images:,} training images")
        theirs.append(f"{TRAIN_IMAGES:,}")
    if epochs != ORIGINAL_PROTOCOL["epochs"]:
        ours.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
        theirs.append(f"{ORIGINAL_PROTOCOL['epochs']}")
    return f"{' and '.join(ours)} against the original's {' and '.join(theirs)}" if ours else ""
