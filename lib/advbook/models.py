"""Models. Every model takes pixels in [0, 1]: normalization is its first layer.

`build(name, num_classes, in_channels, mean=..., std=...)` gives:
- `small-cnn`: a two-conv network for digits and MNIST (any input size),
- `std-cnn`: the StdCNN of Kamath et al. (their Table 1) for MNIST and Fashion-MNIST,
- `preact-resnet18`, `resnet18`: the CIFAR variants (3x3 stem, no max-pool).

Activations are `nn.ReLU` modules and normalizations come from a `norm_layer` factory, so
that a defense can swap them (smooth activations, auxiliary batch norms) without a new model.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Normalize(nn.Module):
    """(x - mean) / std per channel; keeps the rest of the model in its usual input range."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


# ----------------------------------------------------------------------------------------
# AdvProp (Xie et al. 2019): an auxiliary batch norm for adversarial inputs
# ----------------------------------------------------------------------------------------

class DualBatchNorm2d(nn.Module):
    """Two batch norms over the same features: `main` for clean inputs (and every evaluation),
    `aux` for adversarial inputs during AdvProp training. Which one runs is set only inside
    `auxiliary_bn(model)`, so the routing cannot leak out of the block that asked for it."""

    def __init__(self, num_features: int):
        super().__init__()
        self.main = nn.BatchNorm2d(num_features)
        self.aux = nn.BatchNorm2d(num_features)
        self.route_aux = False

    def forward(self, x):
        return self.aux(x) if self.route_aux else self.main(x)


@contextmanager
def auxiliary_bn(model: nn.Module):
    """Route every DualBatchNorm2d of `model` through its auxiliary batch norm for the block."""
    duals = [m for m in model.modules() if isinstance(m, DualBatchNorm2d)]
    if not duals:
        raise ValueError("auxiliary_bn needs a model built with advprop=True (it has no DualBatchNorm2d)")
    for m in duals:
        m.route_aux = True
    try:
        yield model
    finally:
        for m in duals:
            m.route_aux = False


# ----------------------------------------------------------------------------------------
# Smooth adversarial training (Xie et al. 2020): ReLU forward, smooth gradient backward
# ----------------------------------------------------------------------------------------

def parametric_softplus(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """f(alpha, x) = log(1 + exp(alpha x)) / alpha, a smooth ReLU; its derivative is sigmoid(alpha x)."""
    return F.softplus(alpha * x) / alpha


class _ReLUWithSoftplusGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * torch.sigmoid(ctx.alpha * x), None


class SmoothGradReLU(nn.Module):
    """ReLU in the forward pass; d/dx of the parametric softplus, sigmoid(alpha x), in the
    backward pass (Xie et al. 2020 use alpha = 10). Replaces nn.ReLU via `replace_relu`."""

    def __init__(self, alpha: float = 10.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return _ReLUWithSoftplusGradient.apply(x, self.alpha)


def replace_relu(model: nn.Module, factory: Callable[[], nn.Module]) -> int:
    """Swap every nn.ReLU module of `model` for `factory()`; returns how many were swapped."""
    count = 0
    for name, child in model.named_children():
        if isinstance(child, nn.ReLU):
            setattr(model, name, factory())
            count += 1
        else:
            count += replace_relu(child, factory)
    return count


class SmallCNN(nn.Module):
    def __init__(self, num_classes=10, in_channels=1, width=32, norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), norm_layer(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), norm_layer(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False), norm_layer(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.classifier = nn.Linear(8 * width, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class StdCNN(nn.Module):
    """Kamath et al. (2019), Table 1: Conv(10,3,3)-ReLU-Conv(10,3,3)-ReLU-MaxPool-Conv(20,3,3)-ReLU-
    Conv(20,3,3)-ReLU-MaxPool-FC(50)-ReLU-Dropout(0.5)-FC(10). Unpadded convolutions, as written."""

    def __init__(self, num_classes=10, in_channels=1, image_size=28, norm_layer=None):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 10, 3), nn.ReLU(), nn.Conv2d(10, 10, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(10, 20, 3), nn.ReLU(), nn.Conv2d(20, 20, 3), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"std-cnn needs images of at least 16 pixels, got {image_size}")
        self.classifier = nn.Sequential(nn.Linear(20 * side * side, 50), nn.ReLU(), nn.Dropout(0.5),
                                        nn.Linear(50, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride, norm_layer):
        super().__init__()
        self.bn1, self.relu1 = norm_layer(in_planes), nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = norm_layer(planes), nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x):
        out = self.relu1(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.relu2(self.bn2(out)))
        return out + shortcut


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride, norm_layer):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1, self.relu1 = norm_layer(planes), nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm_layer(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), norm_layer(planes))
        self.relu2 = nn.ReLU()

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet: 3x3 stem, four stages, global average pooling."""

    def __init__(self, block, num_blocks, num_classes=10, in_channels=3, width=64,
                 norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d):
        super().__init__()
        self.preact = block is PreActBlock
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.stem = nn.Identity() if self.preact else nn.Sequential(norm_layer(width), nn.ReLU())
        layers, in_planes = [], width
        for i, n in enumerate(num_blocks):
            planes = width * 2 ** i
            for stride in [1 if i == 0 else 2] + [1] * (n - 1):
                layers.append(block(in_planes, planes, stride, norm_layer))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        # pre-activation nets need a final BN-ReLU before pooling
        self.head = nn.Sequential(norm_layer(in_planes), nn.ReLU()) if self.preact else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x):
        out = self.layers(self.stem(self.conv1(x)))
        return self.linear(self.pool(self.head(out)).flatten(1))


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

