"""Layers that the papers' methods add to a network: input normalization, AdvProp's auxiliary
batch norm, SAT's smooth-gradient ReLU, and the switch for layers that are random at test time."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Normalize(nn.Module):
    """(x - mean) / std per channel; keeps the rest of the model in its usual input range."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


# ----------------------------------------------------------------------------------------
# AdvProp (Xie et al. 2019): an auxiliary batch norm for adversarial inputs
# ----------------------------------------------------------------------------------------

class DualBatchNorm2d(nn.Module):
    """Two batch norms over the same features: `main` for clean inputs (and every evaluation),
    `aux` for adversarial inputs during AdvProp training. Which one runs is set only inside
    `auxiliary_bn(model)`, so the routing cannot leak out of the block that asked for it."""

    def __init__(self, num_features: int):
        super().__init__()
        self.main = nn.BatchNorm2d(num_features)
        self.aux = nn.BatchNorm2d(num_features)
        self.route_aux = False

    def forward(self, x):
        return self.aux(x) if self.route_aux else self.main(x)


@contextmanager
def auxiliary_bn(model: nn.Module):
    """Route every DualBatchNorm2d of `model` through its auxiliary batch norm for the block."""
    duals = [m for m in model.modules() if isinstance(m, DualBatchNorm2d)]
    if not duals:
        raise ValueError("auxiliary_bn needs a model built with advprop=True (it has no DualBatchNorm2d)")
    for m in duals:
        m.route_aux = True
    try:
        yield model
    finally:
        for m in duals:
            m.route_aux = False


# ----------------------------------------------------------------------------------------
# Smooth adversarial training (Xie et al. 2020): ReLU forward, smooth gradient backward
# ----------------------------------------------------------------------------------------

def parametric_softplus(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """f(alpha, x) = log(1 + exp(alpha x)) / alpha, a smooth ReLU; its derivative is sigmoid(alpha x)."""
    return F.softplus(alpha * x) / alpha


class _ReLUWithSoftplusGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        if ctx.alpha is None:  # the true ReLU derivative (an attacker that ignores the surrogate)
            return grad_out * (x > 0).to(grad_out.dtype), None
        return grad_out * torch.sigmoid(ctx.alpha * x), None


class SmoothGradReLU(nn.Module):
    """ReLU in the forward pass; d/dx of the parametric softplus, sigmoid(alpha x), in the
    backward pass (Xie et al. 2020 use alpha = 10). Replaces nn.ReLU via `replace_relu`."""

    def __init__(self, alpha: float = 10.0):
        super().__init__()
        self.alpha = alpha
        self.exact_gradient = False  # set only inside `exact_relu_gradient`

    def forward(self, x):
        return _ReLUWithSoftplusGradient.apply(x, None if self.exact_gradient else self.alpha)


@contextmanager
def exact_relu_gradient(model: nn.Module):
    """Every SmoothGradReLU of `model` back-propagates ReLU's own derivative for the block: the
    attacker of a SAT model then differentiates the function the model computes."""
    layers = [m for m in model.modules() if isinstance(m, SmoothGradReLU)]
    for m in layers:
        m.exact_gradient = True
    try:
        yield model
    finally:
        for m in layers:
            m.exact_gradient = False


def replace_relu(model: nn.Module, factory: Callable[[], nn.Module]) -> int:
    """Swap every nn.ReLU module of `model` for `factory()`; returns how many were swapped."""
    count = 0
    for name, child in model.named_children():
        if isinstance(child, nn.ReLU):
            setattr(model, name, factory())
            count += 1
        else:
            count += replace_relu(child, factory)
    return count




# ----------------------------------------------------------------------------------------
# Randomized layers (noise at prediction time, PNI, random signs): an attacker may be allowed
# to switch their noise off (one of the threat models a randomized defense must meet)
# ----------------------------------------------------------------------------------------

def is_randomized(model: nn.Module) -> bool:
    """True if some layer of `model` draws fresh noise in eval mode (attribute `stochastic`)."""
    return any(getattr(m, "stochastic", False) for m in model.modules())


@contextmanager
def noise_off(model: nn.Module):
    """Every randomized layer of `model` (attribute `stochastic`) deterministic for the block."""
    layers = [m for m in model.modules() if getattr(m, "stochastic", False)]
    for m in layers:
        m.stochastic = False
    try:
        yield model
    finally:
        for m in layers:
            m.stochastic = True
