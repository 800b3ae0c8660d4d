"""Models. Every model takes pixels in [0, 1]: normalization is its first layer.

`build(name, num_classes, in_channels, mean=..., std=...)` gives:
- `small-cnn`: a two-conv network for digits and MNIST (any input size),
- `std-cnn`: the StdCNN of Kamath et al. (their Table 1) for MNIST and Fashion-MNIST,
- `preact-resnet18`, `resnet18`: the CIFAR variants (3x3 stem, no max-pool).

Activations are `nn.ReLU` modules and normalizations come from a `norm_layer` factory, so
that a defense can swap them (smooth activations, auxiliary batch norms) without a new model.
The layers live in `layers.py`, the architectures in their own files, `build` in `factory.py`,
the registry of names in `registry.py`. Neither this file nor the registry is part of a record's
code hash (`store.code_manifest`), so registering a new model does not mark older records stale.
"""
from __future__ import annotations

from .factory import build
from .registry import ARCHITECTURES
from .cnns import SmallCNN, StdCNN
from .lenet import LeNet5
from .wide_resnet import WideResNet
from .reconstructor import ClassifierWithReconstructor, reconstructor_of
from .basicnet import BasicNet, ResNet20, VGG11BN
from .noise import randomized
from .layers import (DualBatchNorm2d, Normalize, SmoothGradReLU, auxiliary_bn, exact_relu_gradient, is_randomized,
                     noise_off, parametric_softplus, replace_relu)
from .resnets import BasicBlock, PreActBlock, ResNet

__all__ = ["ARCHITECTURES", "build", "SmallCNN", "StdCNN", "ResNet", "PreActBlock", "BasicBlock", "Normalize",
           "DualBatchNorm2d", "auxiliary_bn", "SmoothGradReLU", "parametric_softplus", "replace_relu",
           "is_randomized", "noise_off", "exact_relu_gradient"]
