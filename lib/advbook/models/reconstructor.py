"""Chen and Lee's MNIST classifier C and re-constructor R (their Section 3.4), as a pair.

The paper gives only sizes ("only 0.2 million" parameters for C; "two dense layers and three
transpose convolutional layers", 0.26M, for R). Our layers (the chapter says so):

    C: Conv(1->16, 3x3) - ReLU - MaxPool2 - Conv(16->32, 3x3) - ReLU - MaxPool2 - FC(128) - ReLU - FC(10)
    R: FC(10->128) - ReLU - FC(128->32*s*s) - ReLU - ConvT(32->32, 4, s2) - ReLU - ConvT(32->16, 4, s2) - ReLU
       - ConvT(16->1, 3, s1) - sigmoid        (s = image side / 4; 206,922 + 228,449 parameters on MNIST)

`ClassifierWithReconstructor.forward` returns C's logits only: every attack and evaluation sees
the classifier, as at the paper's inference time; the training defense reaches R through
`reconstructor_of(model)`.
"""
from __future__ import annotations

import torch
from torch import nn


class EfgsmClassifier(nn.Module):
    def __init__(self, num_classes=10, in_channels=1, image_size=28):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"efgsm-mnist needs an image side divisible by 4, got {image_size}")
        side = image_size // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(32 * side * side, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class Reconstructor(nn.Module):
    """R: class probabilities (B, K) -> an image (B, C, H, W) in [0, 1]."""

    def __init__(self, num_classes=10, out_channels=1, image_size=28):
        super().__init__()
        self.side = image_size // 4
        self.dense = nn.Sequential(nn.Linear(num_classes, 128), nn.ReLU(), nn.Linear(128, 32 * self.side ** 2), nn.ReLU())
        self.decode = nn.Sequential(
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, out_channels, 3, stride=1, padding=1), nn.Sigmoid())

    def forward(self, probabilities):
        return self.decode(self.dense(probabilities).view(-1, 32, self.side, self.side))


class ClassifierWithReconstructor(nn.Module):
    """C and, optionally, R; the forward pass is C's alone."""

    def __init__(self, num_classes=10, in_channels=1, image_size=28, reconstructor: bool = True):
        super().__init__()
        self.classifier = EfgsmClassifier(num_classes, in_channels, image_size)
        self.reconstructor = Reconstructor(num_classes, in_channels, image_size) if reconstructor else None

    def forward(self, x):
        return self.classifier(x)


def reconstructor_of(model: nn.Module) -> nn.Module:
    """The re-constructor R inside `model` (a built model wraps the pair after its Normalize)."""
    for module in model.modules():
        if isinstance(module, ClassifierWithReconstructor) and module.reconstructor is not None:
            return module.reconstructor
    raise ValueError("this model has no re-constructor: build 'efgsm-mnist' with options {'reconstructor': True}")
