"""CIFAR-style residual networks (3x3 stem, no max-pool): PreAct ResNet-18 and ResNet-18,
with a width multiplier."""
from __future__ import annotations

from typing import Callable

from torch import nn


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
