"""The original's CNN with a switchable normalization layer: conv stem, N x [conv3x3, norm, act], GAP, linear."""
import torch
import torch.nn as nn

from .config import ACTIVATIONS, NORMS


def make_norm(norm: str, channels: int, groups: int = 4) -> nn.Module:
    """One map from a norm name to a layer; every GroupNorm variant is GroupNorm with a group count."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        if channels % groups:
            raise ValueError(f"groups={groups}: must divide the {channels} channels")
        return nn.GroupNorm(groups, channels)
    if norm == "layer":  # one group over all channels (LayerNorm over C, H, W)
        return nn.GroupNorm(1, channels)
    if norm == "instance":  # one group per channel, with affine parameters like the others
        return nn.GroupNorm(channels, channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm={norm!r}: allowed {', '.join(NORMS)}")


def make_activation(activation: str) -> nn.Module:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r}: allowed {', '.join(ACTIVATIONS)}")
    return nn.ReLU() if activation == "relu" else nn.Sigmoid()


class NormBlock(nn.Module):
    """conv3x3 (same padding) -> norm -> activation; shape-preserving."""

    def __init__(self, channels: int, norm: str, groups: int, activation: str):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.norm = make_norm(norm, channels, groups)
        self.act = make_activation(activation)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class Network(nn.Module):
    """The original's network; `norm` is the only difference between the compared models."""

    def __init__(self, norm: str = "batch", num_blocks: int = 4, width: int = 64, groups: int = 4,
                 activation: str = "relu", num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=3, padding=1)  # no norm after the stem, as in the original
        self.blocks = nn.Sequential(*[NormBlock(width, norm, groups, activation) for _ in range(num_blocks)])
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):  # x: (B, 3, 32, 32)
        x = self.blocks(self.conv1(x))  # (B, width, 32, 32)
        x = torch.flatten(self.pool(x), 1)  # (B, width)
        return self.fc(x)  # (B, num_classes)

    def conv_layers(self) -> list:
        """Convolutions in depth order (stem first): the layers whose gradient magnitude is recorded."""
        return [self.conv1] + [b.conv for b in self.blocks]
