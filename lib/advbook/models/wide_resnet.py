"""Wide residual networks (Zagoruyko and Komodakis 2016), with dropout inside each block and
explicit places for a noise layer (Di et al.'s R-W-ResNet)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .random_sign import noise_slot


class WideBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3, plus the input (or a 1x1 convolution of it when
    the shape changes): the pre-activation block of WRN-d-k."""

    def __init__(self, c_in, c_out, stride, dropout, norm):
        super().__init__()
        self.bn1, self.conv1 = norm(c_in), nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = norm(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride, bias=False)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x):
        out = self.relu1(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv2(self.dropout(self.relu2(self.bn2(self.conv1(out)))))
        return out + skip


class WideResNet(nn.Module):
    """WRN-`depth`-`widen`: a 3x3 stem of 16 channels, three groups of (depth - 4) / 6 blocks of
    16k, 32k and 64k channels (strides 1, 2, 2), BN-ReLU, global average pooling, a linear layer.

    `perturbation` (`models.random_sign.noise_slot`) places a noise layer on the normalized input
    and/or after the stem, after every block and on the pooled features."""

    def __init__(self, num_classes=10, in_channels=3, norm_layer=nn.BatchNorm2d, depth=16, widen=4,
                 dropout=0.3, perturbation=None):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"a WRN's depth is 6n + 4, got {depth}")
        n, widths = (depth - 4) // 6, [16, 16 * widen, 32 * widen, 64 * widen]
        layers = [noise_slot(perturbation, "input"), nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
                  noise_slot(perturbation, "hidden")]
        for group, stride in zip(range(3), (1, 2, 2)):
            for i in range(n):
                layers += [WideBlock(widths[group] if i == 0 else widths[group + 1], widths[group + 1],
                                     stride if i == 0 else 1, dropout, norm_layer), noise_slot(perturbation, "hidden")]
        self.features = nn.Sequential(*layers, norm_layer(widths[3]), nn.ReLU())
        self.pooled_noise = noise_slot(perturbation, "hidden")
        self.fc = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        pooled = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.fc(self.pooled_noise(pooled))
