"""Transfer (black-box) attacks: adversarial images crafted on a *source* model, scored on the
evaluated (target) model.

A spec names the source by its results-store key, so the evaluation record says exactly which
trained model made the images:

    {"name": "transfer from PGD-AT", "attack": "transfer",
     "params": {"source": "<model key>", "eps": 0.3, "alpha": 0.01, "steps": 100}}

The experiment runner resolves the key to the trained model (`experiments.load_trained`) before
the attack runs, so this file needs no store: the attack receives the source model itself. The
source must be trained (and its weights present) before the target is evaluated.
"""
from __future__ import annotations

import torch

from .gradient import pgd


def transfer(model, x, y, source: torch.nn.Module, eps: float, alpha: float, steps: int, loss: str = "ce",
             random_start: bool = True):
    """x_adv = PGD-`steps` on the source model (best iterate against the source), then given to the target.
    The target model is never queried while crafting."""
    if not isinstance(source, torch.nn.Module):
        raise TypeError(f"transfer needs the source model itself, got {type(source).__name__}: resolve its "
                        "store key with experiments.load_trained first")
    return pgd(source.to(x.device), x, y, eps, alpha, steps, loss=loss, random_start=random_start)
