"""The baselines every chapter compares against: standard training, FGSM-AT, FGSM-RS, PGD-AT."""
from __future__ import annotations

import torch.nn.functional as F

from .. import attacks


def standard(model, x, y):
    """Empirical risk minimization: min_theta E[ CE(f(x), y) ]."""
    logits = model(x)
    return F.cross_entropy(logits, y), logits


def fgsm_at(model, x, y, eps: float):
    """FGSM adversarial training (Goodfellow et al. 2015): train on x + eps * sign(grad_x L)."""
    x_adv = attacks.fgsm(model, x, y, eps)
    logits = model(x_adv)
    return F.cross_entropy(logits, y), logits


def fgsm_rs(model, x, y, eps: float, alpha: float, clip_start: bool = False):
    """FGSM with a random start (Wong et al. 2020): delta ~ U(-eps, eps), one step of size alpha.

    The gradient is taken at the unclipped start, as in the paper's MNIST code; `clip_start=True`
    clips the start into [0, 1] first, as its CIFAR-10 code does (see `attacks.fgsm`)."""
    x_adv = attacks.fgsm(model, x, y, eps, alpha=alpha, random_start=True, clip_start=clip_start)
    logits = model(x_adv)
    return F.cross_entropy(logits, y), logits


def pgd_at(model, x, y, eps: float, alpha: float, steps: int):
    """PGD adversarial training (Madry et al. 2018): min_theta E[ max_{||d|| <= eps} CE(f(x + d), y) ],
    the inner max approximated by `steps` steps of PGD from a random start (last iterate)."""
    x_adv = attacks.pgd(model, x, y, eps, alpha, steps, random_start=True, keep_best=False)
    logits = model(x_adv)
    return F.cross_entropy(logits, y), logits
