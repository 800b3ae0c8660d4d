"""Free adversarial training (Shafahi et al. 2019, "AdvFree"): one backward pass gives both the
weight gradient and the perturbation's gradient; every minibatch is replayed m times in a row
(`TrainConfig.replay`), and the perturbation is carried over from one replay and one minibatch to
the next."""
from __future__ import annotations

import torch
import torch.nn.functional as F


class FreeRun:
    """One run's perturbation delta; the update uses the gradient the previous step's backward left."""

    def __init__(self, n_train: int, device):
        self.delta = None

    def __call__(self, model, x, y, eps: float, step: float):
        """delta <- clip_eps(delta + step sign(grad_delta L)) from the last backward, then
        L = CE(f(clip_[0,1](x + delta)), y); the training backward fills delta.grad for the next call."""
        delta = self.delta
        if delta is not None and delta.grad is not None:
            delta = (delta + step * delta.grad.sign()).clamp(-eps, eps)
        if delta is None or delta.shape[1:] != x.shape[1:]:
            delta = torch.zeros_like(x)
        elif len(delta) != len(x):  # a smaller last batch, or a full one after it
            delta = delta[:len(x)] if len(delta) > len(x) else torch.cat([delta, torch.zeros_like(x[len(delta):])])
        self.delta = delta.detach().requires_grad_(True)
        logits = model((x + self.delta).clamp(0, 1))
        return F.cross_entropy(logits, y), logits


def free_training(n_train: int, device):
    """The DEFENSES entry: a fresh zero perturbation per training run."""
    return FreeRun(n_train, device)


free_training.stateful = True
