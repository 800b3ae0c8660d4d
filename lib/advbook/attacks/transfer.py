"""Transfer (black-box) attacks: adversarial images crafted on a *source* model, scored on the
evaluated (target) model.

A spec names the source by its results-store key, so the evaluation record says exactly which
trained model made the images, and evaluate.py needs nothing new:

    {"name": "transfer from PGD-AT", "attack": "transfer", "source": "<model key>",
     "eps": 0.3, "alpha": 0.01, "steps": 100}

The source is rebuilt from its stored record (`experiments.build_model` on its own data split, so
its normalization matches) and its stored weights; the source model must be trained (and its
weights present) before the target is evaluated.
"""
from __future__ import annotations

import torch

from .gradient import pgd

_SOURCES: dict[str, torch.nn.Module] = {}


def load_source(key: str, device) -> torch.nn.Module:
    """The stored model `key`, rebuilt and loaded once per process, in eval mode."""
    if key not in _SOURCES:
        from .. import experiments, store  # late: experiments imports the evaluation, which imports us

        record = store.load_model(key)
        if record is None:
            raise ValueError(f"transfer source {key} is not in the results store")
        with torch.random.fork_rng(devices=[]):  # building draws initial weights: keep the attack's stream as it was
            model = experiments.build_model(record["config"], experiments.prepare_data(record["config"]))
        if not store.load_weights(model, key):
            raise ValueError(f"transfer source {key} has a record but no weights here")
        _SOURCES[key] = model.eval()
    return _SOURCES[key].to(device)


def transfer(model, x, y, source: str, eps: float, alpha: float, steps: int, loss: str = "ce",
             random_start: bool = True):
    """x_adv = PGD-`steps` on the source model (best iterate against the source), then given to the target.
    The target model is never queried while crafting."""
    return pgd(load_source(source, x.device), x, y, eps, alpha, steps, loss=loss, random_start=random_start)
