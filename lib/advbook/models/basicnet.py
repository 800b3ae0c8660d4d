"""The small networks of the BIPARO chapter: its "BasicNet", ResNet-20 and VGG11 with batch norm.

BasicNet is not defined in the paper. We infer it from the course template the paper's project
started from (its default model, "Basic neural network architecture (from pytorch doc)"): the
PyTorch CIFAR-10 tutorial network, 62,006 parameters for 3x32x32 inputs.
"""
from __future__ import annotations

from torch import nn


class BasicNet(nn.Module):
    """conv(c->6, 5x5) - ReLU - maxpool 2 - conv(6->16, 5x5) - ReLU - maxpool 2 - fc(16*5*5 -> 120) -
    ReLU - fc(120 -> 84) - ReLU - fc(84 -> classes) (the PyTorch tutorial's CIFAR network; the
    template's log-softmax + NLL is cross-entropy on these logits)."""

    def __init__(self, num_classes=10, in_channels=3, image_size=32, width=6):
        super().__init__()
        # unpadded as in the tutorial; below 14 pixels (the smoke profile's 8x8 digits) padded by 2
        pad = 0 if image_size >= 14 else 2
        side = ((image_size + 2 * pad - 4) // 2 + 2 * pad - 4) // 2
        if side < 1:
            raise ValueError(f"basicnet needs images of at least 4 pixels, got {image_size}")
        self.features = nn.Sequential(nn.Conv2d(in_channels, width, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(width, 16, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(16 * side * side, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                        nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class _Block(nn.Module):
    """He et al.'s basic block with the 1x1-convolution shortcut when the shape changes."""

    def __init__(self, cin, cout, stride, norm_layer):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), norm_layer(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), norm_layer(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), norm_layer(cout))
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet20(nn.Module):
    """He et al. (2016)'s CIFAR ResNet-20: a 3x3 stem and 3 stages of 3 basic blocks, widths w, 2w,
    4w (w = 16: 0.27M parameters, the paper's "about 250k")."""

    def __init__(self, num_classes=10, in_channels=3, width=16, norm_layer=nn.BatchNorm2d):
        super().__init__()
        layers = [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), norm_layer(width), nn.ReLU()]
        cin = width
        for stage, cout in enumerate((width, 2 * width, 4 * width)):
            for block in range(3):
                layers.append(_Block(cin, cout, 2 if stage and not block else 1, norm_layer))
                cin = cout
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11BN(nn.Module):
    """VGG11 with batch norm for 32x32 inputs: 3x3 convolutions (64, M, 128, M, 256, 256, M, 512, 512,
    M, 512, 512, M) and one Linear(512, classes): 9.23M parameters (the paper says "about 11 million")."""

    def __init__(self, num_classes=10, in_channels=3, width=64, norm_layer=nn.BatchNorm2d):
        super().__init__()
        layers, cin = [], in_channels
        for v in VGG11:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                cout = v * width // 64
                layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), norm_layer(cout), nn.ReLU()]
                cin = cout
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
