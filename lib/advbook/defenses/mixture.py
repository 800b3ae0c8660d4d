"""AdvProp, adversarial label smoothing and SAT in one training loop (Dallaire and David)."""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F

from .. import attacks
from ..models import auxiliary_bn


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
