"""Models. Every model takes pixels in [0, 1]: normalization is its first layer.

`build(name, num_classes, in_channels, mean=..., std=...)` gives:
- `small-cnn`: a two-conv network for digits and MNIST (any input size),
- `std-cnn`: the StdCNN of Kamath et al. (their Table 1) for MNIST and Fashion-MNIST,
- `preact-resnet18`, `resnet18`: the CIFAR variants (3x3 stem, no max-pool).

Activations are `nn.ReLU` modules and normalizations come from a `norm_layer` factory, so
that a defense can swap them (smooth activations, auxiliary batch norms) without a new model.
The layers live in `layers.py`, the architectures in `cnns.py` and `resnets.py`.
"""
from __future__ import annotations

from typing import Callable, Sequence

from torch import nn

from .cnns import SmallCNN, StdCNN
from .layers import (DualBatchNorm2d, Normalize, SmoothGradReLU, auxiliary_bn, exact_relu_gradient, is_randomized,
                     noise_off, parametric_softplus, replace_relu)
from .resnets import BasicBlock, PreActBlock, ResNet

__all__ = ["ARCHITECTURES", "build", "SmallCNN", "StdCNN", "ResNet", "PreActBlock", "BasicBlock", "Normalize",
           "DualBatchNorm2d", "auxiliary_bn", "SmoothGradReLU", "parametric_softplus", "replace_relu",
           "is_randomized", "noise_off", "exact_relu_gradient"]


ARCHITECTURES = {
    "small-cnn": lambda nc, ic, size, norm, width: SmallCNN(nc, ic, width or 32, norm),
    "std-cnn": lambda nc, ic, size, norm, width: StdCNN(nc, ic, size),
    "preact-resnet18": lambda nc, ic, size, norm, width: ResNet(PreActBlock, [2, 2, 2, 2], nc, ic, width or 64, norm),
    "resnet18": lambda nc, ic, size, norm, width: ResNet(BasicBlock, [2, 2, 2, 2], nc, ic, width or 64, norm),
}


def build(name: str, num_classes: int = 10, in_channels: int = 3, *, mean: Sequence[float] | None = None,
          std: Sequence[float] | None = None, image_size: int = 32, width: int | None = None,
          norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d, advprop: bool = False,
          activation: str = "relu", sat_alpha: float = 10.0) -> nn.Sequential:
    """A model that takes [0, 1] pixels: `Normalize(mean, std)` followed by the architecture.

    `width` scales the channel count (None: the architecture's usual width); the smoke
    profile uses narrow ResNets so that it runs on a CPU. `advprop=True` gives every batch
    norm an auxiliary twin (DualBatchNorm2d); `activation="sat"` swaps the ReLUs for
    SmoothGradReLU(sat_alpha).
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
    net = ARCHITECTURES[name](num_classes, in_channels, image_size, norm_layer, width)
    if advprop and not any(isinstance(m, DualBatchNorm2d) for m in net.modules()):
        raise ValueError(f"'{name}' has no batch norm, so AdvProp does not apply to it")
    if activation == "sat":
        replace_relu(net, lambda: SmoothGradReLU(sat_alpha))
    return nn.Sequential(Normalize(mean, std), net)

