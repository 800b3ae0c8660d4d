"""`build`: an architecture from the registry, wrapped so that it takes [0, 1] pixels."""
from __future__ import annotations

from typing import Callable, Sequence

from torch import nn

from .layers import DualBatchNorm2d, Normalize, SmoothGradReLU, replace_relu
from .registry import ARCHITECTURES


def build(name: str, num_classes: int = 10, in_channels: int = 3, *, mean: Sequence[float] | None = None,
          std: Sequence[float] | None = None, image_size: int = 32, width: int | None = None,
          norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d, advprop: bool = False,
          activation: str = "relu", sat_alpha: float = 10.0, options: dict | None = None) -> nn.Sequential:
    """A model that takes [0, 1] pixels: `Normalize(mean, std)` followed by the architecture.

    `width` scales the channel count (None: the architecture's usual width); the smoke
    profile uses narrow ResNets so that it runs on a CPU. `advprop=True` gives every batch
    norm an auxiliary twin (DualBatchNorm2d); `activation="sat"` swaps the ReLUs for
    SmoothGradReLU(sat_alpha). `options`: the architecture's own keyword arguments (dropout, where
    a noise layer goes, ...), given to its registry entry as `entry(..., **options)`.
    """
    if activation not in ("relu", "sat"):
        raise ValueError(f"activation must be 'relu' or 'sat', got {activation!r}")
    if advprop:
        norm_layer = DualBatchNorm2d
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model '{name}'; known: {', '.join(sorted(ARCHITECTURES))}")
    mean = tuple(mean) if mean is not None else (0.0,) * in_channels
    std = tuple(std) if std is not None else (1.0,) * in_channels
    if len(mean) != in_channels or len(std) != in_channels:
        raise ValueError(f"mean and std need {in_channels} values each, got {len(mean)} and {len(std)}")
    try:
        net = ARCHITECTURES[name](num_classes, in_channels, image_size, norm_layer, width, **(options or {}))
    except TypeError as error:
        if not options:
            raise
        raise ValueError(f"model '{name}' does not take the options {sorted(options)}: {error}") from None
    if advprop and not any(isinstance(m, DualBatchNorm2d) for m in net.modules()):
        raise ValueError(f"'{name}' has no batch norm, so AdvProp does not apply to it")
    if activation == "sat":
        replace_relu(net, lambda: SmoothGradReLU(sat_alpha))
    return nn.Sequential(Normalize(mean, std), net)

