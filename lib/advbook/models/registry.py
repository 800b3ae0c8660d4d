"""The registry of architectures: name -> constructor(num_classes, in_channels, image_size,
norm_layer, width, **options). Not part of a record's code hash (`store.code_manifest`): adding a
name here marks no older record stale; the architectures' own files are hashed."""
from __future__ import annotations

from .basicnet import BasicNet, ResNet20, VGG11BN
from .cnns import SmallCNN, StdCNN
from .reconstructor import ClassifierWithReconstructor
from .lenet import LeNet5
from .noise import randomized
from .resnets import BasicBlock, PreActBlock, ResNet
from .wide_resnet import WideResNet

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


# the (channels, height, width) inputs each architecture is built for: MNIST's and CIFAR-10's
# unless said otherwise (VGG11's five poolings need 32 x 32); the contract tests run each on these
STANDARD_SHAPES = ((1, 28, 28), (3, 32, 32))
INPUT_SHAPES = {name: STANDARD_SHAPES for name in ARCHITECTURES} | {"vgg11-bn": ((3, 32, 32),)}
