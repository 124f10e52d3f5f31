"""The normalisation layers a network can use: one map from a norm's name to all there is to know of it (timm's
create_norm style). A new norm is one entry: its layer, its label and colour in the report, whether it keeps running
statistics. The parameters' schema, the model, both engines, the report and the bench read this map. Importing it
loads no torch: each layer is built by a function that imports it."""
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Norm:
    label: str  # how the report names it
    color: str  # its colour in every figure (Okabe-Ito: colour-blind safe, at least 3:1 against white)
    layer: Callable  # (channels, groups, runs) -> nn.Module: `runs` stacked copies, each over its own channels
    running_stats: bool = False  # normalises by batch statistics in training and keeps running ones (BatchNorm)


def _nn():
    import torch.nn as nn
    return nn


def batch_norm(channels: int, groups: int, runs: int):
    return _nn().BatchNorm2d(runs * channels)  # statistics per channel: a stack's runs are apart anyway


def group_norm(channels: int, groups: int, runs: int):
    if channels % groups:
        raise ValueError(f"groups={groups}: must divide the {channels} channels")
    return _nn().GroupNorm(runs * groups, runs * channels)


def layer_norm(channels: int, groups: int, runs: int):
    return _nn().GroupNorm(runs, runs * channels)  # one group over all channels (LayerNorm over C, H, W)


def instance_norm(channels: int, groups: int, runs: int):
    return _nn().GroupNorm(runs * channels, runs * channels)  # one group per channel, affine like the others


def no_norm(channels: int, groups: int, runs: int):
    return _nn().Identity()


NORMS = {
    "batch": Norm("BatchNorm", "#0072B2", batch_norm, running_stats=True),
    "group": Norm("GroupNorm", "#D55E00", group_norm),
    "layer": Norm("LayerNorm", "#009E73", layer_norm),
    "instance": Norm("InstanceNorm", "#CC79A7", instance_norm),
    "none": Norm("No norm", "#555555", no_norm),
}
NAMES = NORMS.keys()  # a live view: the `norm` parameter's choices include a norm registered later


def get(name: str) -> Norm:
    """The norm of that name; an unknown name fails here, with the names there are."""
    if name not in NORMS:
        raise ValueError(f"norm={name!r}: allowed {', '.join(NORMS)}")
    return NORMS[name]


def register(name: str, norm: Norm) -> None:
    """Add a norm (or replace one): from then on a run, a grid and a report accept it."""
    NORMS[name] = norm


def running_stats(name: str) -> bool:
    """Whether the norm keeps running statistics: the BN diagnostics and the batch-size-1 check apply to it."""
    return name in NORMS and NORMS[name].running_stats


def label(name) -> str:
    """The report's name of a norm; an unknown one as it is written."""
    return NORMS[name].label if name in NORMS else str(name)
