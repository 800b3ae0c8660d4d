"""TRADES (Zhang et al. 2019): the natural loss plus a boundary term that asks the prediction not
to change inside the eps-ball."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attacks import GRADIENTS


def trades_kl(logits_adv, logits_clean):
    """KL(f(x) || f(x')) per example, with f the softmax."""
    return F.kl_div(logits_adv.float().log_softmax(1), logits_clean.float().softmax(1), reduction="none").sum(1)


def trades(model, x, y, eps: float, alpha: float, steps: int, beta: float = 6.0):
    """min_theta E[ CE(f(x), y) + beta max_{||x' - x|| <= eps} KL(f(x) || f(x')) ], the inner max by
    `steps` steps of sign-gradient ascent on the KL from x' = x + 0.001 N(0, I) (the TRADES code)."""
    with torch.no_grad():
        target = model(x)
    x_adv = (x + 0.001 * torch.randn_like(x)).clamp(0, 1).detach()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(trades_kl(model(x_adv), target).sum(), x_adv)
        x_adv = (x + (x_adv.detach() + alpha * grad.sign() - x).clamp(-eps, eps)).clamp(0, 1).detach()
    GRADIENTS.images += steps * len(y)
    logits = model(x)
    return F.cross_entropy(logits, y) + beta * trades_kl(model(x_adv), logits).mean(), logits
