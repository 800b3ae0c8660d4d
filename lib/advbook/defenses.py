"""Defenses: each one is a small function that turns a training batch into a loss.

    loss, logits = defense(model, x, y, **hyperparameters)

`logits` are the ones the loss was computed on (for the training accuracy). The model's
mode is the caller's: `fit` trains in train mode, so examples are generated in train mode as
in the reference implementations.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F

from . import attacks
from .data import to_float
from .models import auxiliary_bn


def standard(model, x, y):
    """Empirical risk minimization: min_theta E[ CE(f(x), y) ]."""
    logits = model(x)
    return F.cross_entropy(logits, y), logits


def fgsm_at(model, x, y, eps: float):
    """FGSM adversarial training (Goodfellow et al. 2015): train on x + eps * sign(grad_x L)."""
    x_adv = attacks.fgsm(model, x, y, eps)
    logits = model(x_adv)
    return F.cross_entropy(logits, y), logits


def fgsm_rs(model, x, y, eps: float, alpha: float):
    """FGSM with a random start (Wong et al. 2020): delta ~ U(-eps, eps), one step of size alpha."""
    x_adv = attacks.fgsm(model, x, y, eps, alpha=alpha, random_start=True)
    logits = model(x_adv)
    return F.cross_entropy(logits, y), logits


def pgd_at(model, x, y, eps: float, alpha: float, steps: int):
    """PGD adversarial training (Madry et al. 2018): min_theta E[ max_{||d|| <= eps} CE(f(x + d), y) ],
    the inner max approximated by `steps` steps of PGD from a random start (last iterate)."""
    x_adv = attacks.pgd(model, x, y, eps, alpha, steps, random_start=True, keep_best=False)
    logits = model(x_adv)
    return F.cross_entropy(logits, y), logits


# ----------------------------------------------------------------------------------------
# Dallaire and David: AdvProp, adversarial label smoothing and SAT in one training loop
# ----------------------------------------------------------------------------------------

def als_targets(logits: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Adversarial label smoothing (Goibert and Dohmatob 2019): 1 - alpha on the true class and
    alpha on the class the model currently scores lowest (among the other classes)."""
    scores = logits.detach().float().scatter(1, y[:, None], float("inf"))  # never pick the true class
    lowest = scores.argmin(1)
    targets = torch.zeros_like(scores)
    targets.scatter_(1, y[:, None], 1.0 - alpha)
    targets.scatter_(1, lowest[:, None], alpha)
    return targets


def mixture(model, x, y, *, adversarial: bool, advprop: bool = False, als_alpha: float = 0.0,
            eps: float = 0.1, alpha: float = 2 / 255, steps: int = 2):
    """Algorithm 1 of Dallaire and David, Eq. (4): L(f(x), y) + L(f(x_adv), y), computed as the
    algorithm writes it: one cross-entropy (a mean) over the concatenated predictions, i.e.
    (L_clean + L_adv) / 2.

    Clean predictions use the main batch norms. With `adversarial`, x_adv is `steps`-step PGD;
    with `advprop`, the attack and the adversarial predictions run through the auxiliary batch
    norms. The two sets of predictions are concatenated with duplicated labels; the loss is
    cross-entropy, or with `als_alpha` > 0 cross-entropy against ALS targets. SAT is not a loss:
    it is the model's activation (`models.build(..., activation="sat")`).
    """
    logits = model(x)
    clean_logits = logits
    labels = y
    if adversarial:
        with auxiliary_bn(model) if advprop else nullcontext():
            # no random start: the paper's PGD update from x itself, so that 2 small steps stay
            # well inside the ball ("they do not reach the epsilon at all")
            x_adv = attacks.pgd(model, x, y, eps, alpha, steps, random_start=False, keep_best=False)
            adv_logits = model(x_adv)
        logits, labels = torch.cat([logits, adv_logits]), torch.cat([y, y])
    if als_alpha > 0:
        loss = F.cross_entropy(logits, als_targets(logits, labels, als_alpha))
    else:
        loss = F.cross_entropy(logits, labels)
    return loss, clean_logits


# ----------------------------------------------------------------------------------------
# Epoch-level perturbation: Kamath, Deshpande and Subrahmanyam (2019), Algorithm 1
# ----------------------------------------------------------------------------------------

def input_gradients(model, x_u8, y, batch_size=1000):
    """grad_x CE(f(x_i), y_i) for every training sample, batched (one backward per batch: the
    input gradient of a summed loss is each sample's own gradient)."""
    grads = []
    for start in range(0, len(y), batch_size):
        x = to_float(x_u8[start:start + batch_size])
        grads.append(attacks.input_gradient(model, x, y[start:start + batch_size], attacks.LOSSES["ce"])[2])
    return torch.cat(grads)


def adaptive_selection(grads: torch.Tensor, n: int, power: int, replacement: bool, generator):
    """Algorithm 1, lines 2-4: p_i = g'_i / sum_j g'_j with g'_i = ||g_i||_2 (power 1) or
    ||g_i||_2^2 (power 2); draw n indices from P. Returns K, the distinct indices drawn."""
    weights = grads.flatten(1).norm(dim=1).double() ** power
    if float(weights.sum()) == 0.0:  # a perfectly fitted model: no gradient anywhere, draw uniformly
        weights = torch.ones_like(weights)
    draws = torch.multinomial(weights, n, replacement=replacement, generator=generator)
    return torch.unique(draws)


def perturb_epoch(model, x_u8, y, generator, *, selection: str, eps: float, attack: str = "fgsm",
                  n: int = 0, power: int = 1, replacement: bool = True, steps: int = 10):
    """The samples to replace for one epoch, and their perturbed versions (float, [0, 1]).

    selection "gradient-norm": Algorithm 1's sampling of n samples; "all": every sample.
    attack "fgsm" (the paper's) or "pgd" (its appendix; step 2.5 eps / steps, random start).
    Computed once at the start of the epoch, in the model's current mode (the caller's).
    FGSM uses the gradients of one pass over the training set, x_i + eps sign(g_i), for the
    sampling weights and the perturbation alike, as the algorithm does; "all" costs the same pass.
    """
    if selection not in ("gradient-norm", "all") or attack not in ("fgsm", "pgd"):
        raise ValueError(f"need selection 'gradient-norm' or 'all' and attack 'fgsm' or 'pgd', "
                         f"got {selection!r} and {attack!r}")
    grads = input_gradients(model, x_u8, y) if selection == "gradient-norm" or attack == "fgsm" else None
    indices = adaptive_selection(grads, n, power, replacement, generator) if selection == "gradient-norm" \
        else torch.arange(len(y), device=y.device)
    if attack == "fgsm":  # at the clean point, from the same gradients: x_i + eps sign(g_i)
        return indices, (to_float(x_u8[indices]) + eps * grads[indices].sign()).clamp(0, 1)
    perturbed = [attacks.pgd(model, to_float(x_u8[idx]), y[idx], eps, 2.5 * eps / steps, steps, keep_best=False)
                 for idx in indices.split(1000)]
    return indices, torch.cat(perturbed)


DEFENSES = {
    "standard": standard,
    "fgsm": fgsm_at,
    "fgsm-rs": fgsm_rs,
    "pgd": pgd_at,
    "mixture": mixture,
}


def get(name: str):
    if name not in DEFENSES:
        raise ValueError(f"unknown defense '{name}'; known: {', '.join(sorted(DEFENSES))}")
    return DEFENSES[name]
