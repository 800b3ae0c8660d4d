"""BIPARO's training mixes: MAT-Rand (Araujo et al. 2020) and natural batches among adversarial ones."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import attacks


def _check_probability(name, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} is a probability, got {p}")


def pgd_norm_at(model, x, y, eps: float, alpha: float, steps: int, norm: str = "l2"):
    """PGD adversarial training in the L-inf or L2 ball (BIPARO Table 1's "L2 PGD training"):

        min_theta E[ CE(f(x + delta*), y) ],  delta* = PGD_norm(x, y; eps, alpha, steps)

    with the L2 step alpha * g / ||g||_2 and projection onto ||delta||_2 <= eps (random start,
    last iterate, as in training)."""
    x_adv = attacks.pgd(model, x, y, eps, alpha, steps, norm=norm, random_start=True, keep_best=False)
    logits = model(x_adv)
    return F.cross_entropy(logits, y), logits


def mat_rand(model, x, y, linf: dict, l2: dict, p_linf: float = 0.5):
    """MAT-Rand: per batch, train on L-inf PGD with probability p_linf, else on L2 PGD:

        x_adv = PGD_inf(x, y) if u < p_linf else PGD_2(x, y),  u ~ U(0, 1);  loss = CE(f(x_adv), y)

    Only the chosen attack is generated (the same distribution as making both and picking one, at
    half the cost). `linf`, `l2`: eps, alpha, steps of each PGD (random start, last iterate)."""
    _check_probability("p_linf", p_linf)
    norm, params = ("linf", linf) if torch.rand(()) < p_linf else ("l2", l2)
    x_adv = attacks.pgd(model, x, y, params["eps"], params["alpha"], params["steps"], norm=norm,
                        random_start=True, keep_best=False)
    logits = model(x_adv)
    return F.cross_entropy(logits, y), logits


def natural_mix(model, x, y, p_natural: float, linf: dict, l2: dict, p_linf: float = 0.5):
    """BIPARO Section 3.3's "mix of 95% adversarial examples and 5% of natural examples": a whole
    batch is natural with probability p_natural, else MAT-Rand:

        loss = CE(f(x), y) if u < p_natural else MAT-Rand loss,  u ~ U(0, 1)"""
    _check_probability("p_natural", p_natural)
    if torch.rand(()) < p_natural:
        logits = model(x)
        return F.cross_entropy(logits, y), logits
    return mat_rand(model, x, y, linf, l2, p_linf)
