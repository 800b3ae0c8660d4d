"""Models. Every model takes pixels in [0, 1]: normalization is its first layer.

`build(name, num_classes, in_channels, mean=..., std=...)` gives:
- `small-cnn`: a two-conv network for digits and MNIST (any input size),
- `std-cnn`: the StdCNN of Kamath et al. (their Table 1) for MNIST and Fashion-MNIST,
- `preact-resnet18`, `resnet18`: the CIFAR variants (3x3 stem, no max-pool).

Activations are `nn.ReLU` modules and normalizations come from a `norm_layer` factory, so
that a defense can swap them (smooth activations, auxiliary batch norms) without a new model.
The layers live in `layers.py`, the architectures in `cnns.py` and `resnets.py`, `build` in
`factory.py`. This file holds only the registry: it is not part of a record's code hash
(`store.code_manifest`), so registering a new model does not mark older records stale.
"""
from __future__ import annotations

from .factory import build
from .cnns import SmallCNN, StdCNN
from .lenet import LeNet5
from .wide_resnet import WideResNet
from .efgsm_mnist import ClassifierWithReconstructor, reconstructor_of
from .basicnet import BasicNet, ResNet20, VGG11BN
from .noise import randomized
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
    # options: dropout, perturbation (a noise layer's kind, eps, p, placement: models/random_sign.py)
    "lenet5": lambda nc, ic, size, norm, width, **options: LeNet5(nc, ic, size, **options),
    # options: depth, widen (k), dropout, perturbation
    "wrn": lambda nc, ic, size, norm, width, **options: WideResNet(nc, ic, norm, **options),
    # Chen and Lee's MNIST classifier, with their re-constructor unless options say reconstructor=False
    "efgsm-mnist": lambda nc, ic, size, norm, width, **options: ClassifierWithReconstructor(nc, ic, size, **options),
    # BIPARO's models; options: pni, pni_alpha, predict_noise (sigma) with pixel_std (models/noise.py)
    "basicnet": lambda nc, ic, size, norm, width, **options: randomized(BasicNet(nc, ic, size, width or 6), **options),
    "resnet20": lambda nc, ic, size, norm, width, **options: randomized(ResNet20(nc, ic, width or 16, norm), **options),
    "vgg11-bn": lambda nc, ic, size, norm, width, **options: randomized(VGG11BN(nc, ic, width or 64, norm), **options),
    "resnet18-noisy": lambda nc, ic, size, norm, width, **options: randomized(
        ResNet(BasicBlock, [2, 2, 2, 2], nc, ic, width or 64, norm), **options),
}

