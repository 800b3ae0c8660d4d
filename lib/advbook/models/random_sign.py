"""Multiplicative noise layers for Di, Yu and Tian's "moderate random-sign perturbation".

The paper's g (its Section 3.3): g(x) = x + eps * x ⊙ l(x), where l(x) = sgn(x) with
probability p and -sgn(x) otherwise, elementwise. Since x ⊙ sgn(x) = |x|, this is

    g(x) = x + eps * s * |x|,    s = +1 with probability p, -1 otherwise,

and with the paper's p = 0.5 it is multiplicative Rademacher noise, x * (1 + eps * r): the sign
function plays no role. E[g(x)] = x, Var[g(x)] = eps^2 x^2 and zeros stay zero. Gaussian
dropout with the same variance (x + eps * z * |x|, z ~ N(0, 1)) is the natural ablation.

Both are training-time layers like dropout; `at_test=True` keeps the noise at test time, which
makes the model randomized (`stochastic`: evaluated with several draws and EOT).
"""
from __future__ import annotations

import torch
from torch import nn

KINDS = ("random-sign", "gaussian")
PLACEMENTS = {"input": {"input"}, "hidden": {"hidden"}, "both": {"input", "hidden"}}


class _MultiplicativeNoise(nn.Module):
    def __init__(self, eps: float, at_test: bool = False):
        super().__init__()
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"eps must be in [0, 1) (the paper requires eps < 1), got {eps}")
        self.eps = eps
        self.stochastic = at_test  # noise at test time: a randomized model (`models.is_randomized`)

    def forward(self, x):
        if self.eps == 0 or not (self.training or self.stochastic):
            return x
        return x + self.eps * self.sign_or_normal(x) * x.abs()

    def extra_repr(self):
        return f"eps={self.eps}, at_test={self.stochastic}"


class RandomSign(_MultiplicativeNoise):
    """g(x) = x + eps * x ⊙ l(x), l(x) = sgn(x) w.p. p, -sgn(x) w.p. 1 - p (Di et al., Section 3.3),
    computed as x + eps * s * |x| with s = +-1, a fresh draw per element and per forward pass."""

    def __init__(self, eps: float, p: float = 0.5, at_test: bool = False):
        super().__init__(eps, at_test)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p is a probability, got {p}")
        self.p = p

    def sign_or_normal(self, x):
        return torch.where(torch.rand_like(x) < self.p, 1.0, -1.0).to(x.dtype)

    def extra_repr(self):
        return f"eps={self.eps}, p={self.p}, at_test={self.stochastic}"


class MultiplicativeGaussian(_MultiplicativeNoise):
    """x + eps * z * |x|, z ~ N(0, 1): the variance eps^2 x^2 of RandomSign(eps, p=0.5), Gaussian."""

    def sign_or_normal(self, x):
        return torch.randn_like(x)


def perturbation_layer(kind: str = "random-sign", eps: float = 0.1, p: float = 0.5, at_test: bool = False):
    """A factory of noise layers, from a model config's `perturbation` entry."""
    if kind == "random-sign":
        return lambda: RandomSign(eps, p, at_test)
    if kind == "gaussian":
        return lambda: MultiplicativeGaussian(eps, at_test)
    raise ValueError(f"perturbation kind must be one of {KINDS}, got {kind!r}")


def noise_slot(perturbation: dict | None, where: str) -> nn.Module:
    """The layer at one of an architecture's explicit insertion points ("input" or "hidden"):
    a noise layer if `perturbation` (kind, eps, p, at_test, placement) puts one there, else
    the identity."""
    if not perturbation:
        return nn.Identity()
    options = dict(perturbation)
    placement = options.pop("placement", "both")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {list(PLACEMENTS)}, got {placement!r}")
    return perturbation_layer(**options)() if where in PLACEMENTS[placement] else nn.Identity()
