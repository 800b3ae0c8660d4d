"""LeNet-5 with dropout, with explicit places for a noise layer (Di et al.'s R-LeNet)."""
from __future__ import annotations

from torch import nn

from .random_sign import noise_slot


class LeNet5(nn.Module):
    """Conv(6,5x5,pad 2)-ReLU-MaxPool-Conv(16,5x5)-ReLU-MaxPool-FC(120)-ReLU-Dropout-FC(84)-ReLU-Dropout-FC,
    61,706 parameters on 28x28 MNIST (LeCun et al. 1998, with ReLU, max-pooling and dropout as in
    the paper's "LeNet, dropout" row).

    `perturbation` (see `models.random_sign.noise_slot`) places a noise layer on the input (the
    normalized image the first convolution sees) and/or after each hidden block: after each
    conv-ReLU-pool and after each hidden FC-ReLU, before its dropout.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, dropout: float = 0.5,
                 perturbation: dict | None = None):
        super().__init__()
        if image_size < 4:
            raise ValueError(f"lenet5 needs images of at least 4 pixels, got {image_size}")
        pad2 = 2 if image_size < 12 else 0
        side = (image_size // 2 + 2 * pad2 - 4) // 2
        self.input_noise = noise_slot(perturbation, "input")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), noise_slot(perturbation, "hidden"),
            nn.Conv2d(6, 16, 5, padding=pad2), nn.ReLU(), nn.MaxPool2d(2), noise_slot(perturbation, "hidden"))
        self.classifier = nn.Sequential(
            nn.Linear(16 * side * side, 120), nn.ReLU(), noise_slot(perturbation, "hidden"), nn.Dropout(dropout),
            nn.Linear(120, 84), nn.ReLU(), noise_slot(perturbation, "hidden"), nn.Dropout(dropout),
            nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(self.input_noise(x)).flatten(1))
