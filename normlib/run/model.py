"""The original's CNN with a switchable normalization layer: conv stem, N x [conv3x3, norm, act], GAP, linear.

`runs` > 1 stacks that many copies of the network side by side as one (normlib.run.stacked trains a cell's seeds so):
each convolution is grouped (groups = runs), each norm normalises each run's channels on their own (BatchNorm over
runs x width channels, GroupNorm with runs x groups groups) and the classifier is a batched matmul. Run k owns
channels [k * width, (k + 1) * width) of every layer; with runs = 1 it is the plain network."""
import torch
import torch.nn as nn

from .. import norms
from ..config import ACTIVATIONS


def make_norm(norm: str, channels: int, groups: int = 4, runs: int = 1) -> nn.Module:
    """The norm's layer (normlib.norms); runs: stacked copies, each normalised over its own channels."""
    return norms.get(norm).layer(channels, groups, runs)


def make_activation(activation: str) -> nn.Module:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r}: allowed {', '.join(ACTIVATIONS)}")
    return nn.ReLU() if activation == "relu" else nn.Sigmoid()


class StackedLinear(nn.Module):
    """`runs` linear layers applied each to its own run's features: (runs, B, in) -> (runs, B, out)."""

    def __init__(self, runs: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(runs, out_features, in_features))  # set from the runs
        self.bias = nn.Parameter(torch.zeros(runs, out_features))

    def forward(self, x):
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class NormBlock(nn.Module):
    """conv3x3 (same padding) -> norm -> activation; shape-preserving."""

    def __init__(self, channels: int, norm: str, groups: int, activation: str, runs: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(runs * channels, runs * channels, kernel_size=3, padding=1, groups=runs)
        self.norm = make_norm(norm, channels, groups, runs)
        self.act = make_activation(activation)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class Network(nn.Module):
    """The original's network; `norm` is the only difference between the compared models."""

    def __init__(self, norm: str = "batch", num_blocks: int = 4, width: int = 64, groups: int = 4,
                 activation: str = "relu", num_classes: int = 10, runs: int = 1):
        super().__init__()
        self.runs = runs
        # no norm after the stem, as in the original
        self.conv1 = nn.Conv2d(runs * 3, runs * width, kernel_size=3, padding=1, groups=runs)
        self.blocks = nn.Sequential(*[NormBlock(width, norm, groups, activation, runs) for _ in range(num_blocks)])
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, num_classes) if runs == 1 else StackedLinear(runs, width, num_classes)

    def forward(self, x):  # x: (B, runs * 3, 32, 32), run k's images in channels 3k..3k+2
        x = self.blocks(self.conv1(x))  # (B, runs * width, 32, 32)
        x = torch.flatten(self.pool(x), 1)  # (B, runs * width)
        if self.runs > 1:
            x = x.view(len(x), self.runs, -1).transpose(0, 1)  # (runs, B, width)
        return self.fc(x)  # (B, num_classes), stacked: (runs, B, num_classes)

    def conv_layers(self) -> list:
        """Convolutions in depth order (stem first): the layers whose gradient magnitude is recorded."""
        return [self.conv1] + [b.conv for b in self.blocks]


def network(cfg, runs: int = 1) -> Network:
    """A run's network (a RunConfig's norm, depth, width, groups, activation), or `runs` of them as one stacked network:
    both engines build it here."""
    return Network(cfg.norm, cfg.num_blocks, cfg.width, cfg.groups, cfg.activation, runs=runs)
