"""Epoch-level perturbation: Kamath, Deshpande and Subrahmanyam (2019), Algorithm 1, whole.

At the start of every epoch (`fit`'s `before_epoch` hook): the input gradient of every training
sample, sampling weights from its norm, n draws, FGSM on the drawn samples, and the perturbed
copies swapped in for the epoch (`EpochReplacement`).
"""
from __future__ import annotations

import torch

from .. import attacks
from ..data import to_float


class EpochReplacement:
    """Training samples replaced by perturbed copies for one epoch: a batch looks its rows up
    by position (a gather and a select, so no host synchronization)."""

    def __init__(self, n_train: int, indices: torch.Tensor, images: torch.Tensor):
        self.count = len(indices)
        self.position = torch.full((n_train,), -1, dtype=torch.long, device=indices.device)
        self.position[indices] = torch.arange(len(indices), device=indices.device)
        self.images = images

    def apply(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.count == 0:
            return x
        pos = self.position[idx]
        return torch.where((pos >= 0)[:, None, None, None], self.images[pos.clamp(min=0)], x)



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




def epoch_hook(**params):
    """`fit`'s before-epoch hook for Algorithm 1 with `params` (those of `perturb_epoch`): the
    samples are chosen and perturbed in eval mode, by the model as it stands."""
    def before_epoch(model, x_u8, y, generator) -> EpochReplacement:
        model.eval()
        return EpochReplacement(len(y), *perturb_epoch(model, x_u8, y, generator, **params))
    return before_epoch
