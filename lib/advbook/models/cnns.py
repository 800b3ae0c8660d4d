"""Small convolutional networks: the smoke profile's SmallCNN and Kamath et al.'s StdCNN."""
from __future__ import annotations

from torch import nn


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
