"""Randomness at test time for the BIPARO chapter: Gaussian noise at prediction, and
Parametric Noise Injection (PNI, He, Rakin and Fan, CVPR 2019) on the weights.

Both layers carry the attribute `stochastic` (`models.is_randomized`, `models.noise_off`), so
evaluation treats them as randomized models: fresh draws when scoring, EOT for the attacker,
and the noise switched off for the "noise-unaware" threat model.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class PredictionNoise(nn.Module):
    """BIPARO Section 3.2.1: "taking x at input the model will predict f_theta(x + eta)",
    eta ~ N(0, sigma^2 I) in pixel units, a fresh draw per forward pass.

    The layer sits after the model's normalization (x - m) / s, so it adds eta / s per channel:
    (x + eta - m) / s = (x - m) / s + eta / s. Noise only at prediction (eval mode): training
    and training-time attacks are unchanged, as in the paper, where the noise is added to a
    model trained without it.
    """

    def __init__(self, sigma: float, pixel_std: Sequence[float]):
        super().__init__()
        if not sigma >= 0:
            raise ValueError(f"sigma must be non-negative, got {sigma}")
        self.sigma = sigma
        self.register_buffer("scale", sigma / torch.tensor(pixel_std, dtype=torch.float32).view(1, -1, 1, 1))
        self.stochastic = sigma > 0

    def forward(self, z):
        if self.training or not self.stochastic:
            return z
        return z + self.scale * torch.randn_like(z)

    def extra_repr(self):
        return f"sigma={self.sigma} (pixel units)"


class _PNI:
    """W~ = W + alpha * eta, eta ~ N(0, std(W)^2) (PNI-W, layer-wise; He et al. 2019, Eq. 2),
    drawn at every forward pass in training and in evaluation; std(W) is over the whole weight
    tensor and detached, alpha a trainable scalar (initial 0.25) kept out of weight decay."""

    def _init_noise(self, alpha: float):
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))
        self.alpha.no_weight_decay = True  # decay would pull the learned noise scale to 0
        self.stochastic = True

    def noisy_weight(self):
        if not (self.training or self.stochastic):
            return self.weight
        eta = torch.randn_like(self.weight) * self.weight.detach().std()
        return self.weight + self.alpha * eta


class PNIConv2d(_PNI, nn.Conv2d):
    def __init__(self, *args, alpha: float = 0.25, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_noise(alpha)

    def forward(self, x):
        return self._conv_forward(x, self.noisy_weight(), self.bias)


class PNILinear(_PNI, nn.Linear):
    def __init__(self, *args, alpha: float = 0.25, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_noise(alpha)

    def forward(self, x):
        return F.linear(x, self.noisy_weight(), self.bias)


def add_pni(net: nn.Module, alpha: float = 0.25) -> nn.Module:
    """`net` with every Conv2d and Linear (the first and the last included) made a PNI layer with
    the same weights: the paper's "trainable Gaussian noise injection at each layer"."""
    for name, child in list(net.named_children()):
        if isinstance(child, nn.Conv2d) and not isinstance(child, PNIConv2d):
            new = PNIConv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                            child.dilation, child.groups, child.bias is not None, alpha=alpha)
        elif isinstance(child, nn.Linear) and not isinstance(child, PNILinear):
            new = PNILinear(child.in_features, child.out_features, child.bias is not None, alpha=alpha)
        else:
            add_pni(child, alpha)
            continue
        new.load_state_dict(child.state_dict(), strict=False)
        setattr(net, name, new)
    return net


class Randomized(nn.Module):
    """An architecture with BIPARO's test-time randomness: PNI on its weights (`pni`) and/or
    Gaussian noise at prediction (`predict_noise` sigma, pixel units, given the dataset's
    per-channel `pixel_std` since the layer follows normalization)."""

    def __init__(self, net: nn.Module, *, pni: bool = False, pni_alpha: float = 0.25, predict_noise: float = 0.0,
                 pixel_std: Sequence[float] | None = None):
        super().__init__()
        if predict_noise and pixel_std is None:
            raise ValueError("predict_noise needs the dataset's pixel_std (the noise is in pixel units)")
        self.noise = PredictionNoise(predict_noise, pixel_std) if predict_noise else nn.Identity()
        self.net = add_pni(net, pni_alpha) if pni else net

    def forward(self, z):
        return self.net(self.noise(z))


def randomized(net: nn.Module, pni: bool = False, pni_alpha: float = 0.25, predict_noise: float = 0.0,
               pixel_std: Sequence[float] | None = None) -> nn.Module:
    """`net` itself when neither option is set (so plain models keep their parameter names)."""
    if not pni and not predict_noise:
        return net
    return Randomized(net, pni=pni, pni_alpha=pni_alpha, predict_noise=predict_noise, pixel_std=pixel_std)
