"""Goodfellow, Shlens and Szegedy (2015)'s FGSM adversarial objective, the "FGSM" baseline of
Di et al. (who give no details: the mixing weight and eps are the original paper's)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attacks import GRADIENTS


def fgsm_mix(model, x, y, eps: float, weight: float = 0.5):
    """J~(theta, x, y) = a J(theta, x, y) + (1 - a) J(theta, x + eps sign(grad_x J(theta, x, y)), y),
    a = `weight` (0.5 in Goodfellow et al.), the adversarial image clipped to [0, 1]. The clean
    forward pass gives both the clean loss term and the attack direction (two passes per batch)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    clean_loss = F.cross_entropy(logits, y)
    grad, = torch.autograd.grad(clean_loss, x, retain_graph=True)
    GRADIENTS.images += len(y)
    x_adv = (x + eps * grad.sign()).clamp(0, 1).detach()
    return weight * clean_loss + (1 - weight) * F.cross_entropy(model(x_adv), y), logits
