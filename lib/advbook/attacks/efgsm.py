"""Chen and Lee's enhanced FGSM (eFGSM, their Section 3.1, Eqs. 11-14) and its DeepFool-style
distance Delta (Eq. 12), which doubles as their early-stopping estimate (Section 3.2).

Pixel space [0, 1]; the caller chooses the model's mode (training generates in train mode).
Choices where the paper is vague (the chapter states them):
- I in Eq. 11 is the sign memory Gamma of Eq. 13;
- Eq. 11 times Eq. 14 read literally is kappa * sign(Gamma) with kappa ~ N(sign(Gamma) eps, sigma^2),
  whose mean is +eps on every pixel with Gamma != 0 (a brightening); we use delta_0 = clip_eps(kappa)
  (`literal_sign=True` gives the printed form, for the chapter to show);
- the min over i != t of Eq. 12 is taken over the runner-up class (one backward; `classes="all"`
  takes the exact min over K - 1 backwards);
- the step x^e + Delta sign(w) is projected back onto the eps-ball (`project=False`: as printed).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from .gradient import input_gradient, margin_loss


class EfgsmExample(NamedTuple):
    x_adv: torch.Tensor      # the training example
    distance: torch.Tensor   # Delta per image (Eq. 12)
    at_risk: torch.Tensor    # Delta < eps or misclassified at x^e (the paper's "high-risk" images)


def deepfool_linf(model, x, y, classes: str = "runner-up"):
    """The linearized L-inf distance to the decision boundary (Eq. 9/12, q = 1 for p = inf):

        Delta = min_{i != y} |Z_y(x) - Z_i(x)| / ||grad_x Z_y(x) - grad_x Z_i(x)||_1

    Returns (Delta, w, logits): w = grad_x (Z_l - Z_y) for the minimizing class l, the direction in
    which x + Delta sign(w) reaches the linearized boundary. `classes`: "runner-up" (l = argmax_{i != y}
    Z_i, one backward) or "all" (the exact min over the K - 1 other classes).
    """
    if classes not in ("runner-up", "all"):
        raise ValueError(f"classes must be 'runner-up' or 'all', got {classes!r}")
    logits, margin, w = input_gradient(model, x, y, margin_loss)  # margin = Z_l - Z_y, w its gradient
    distance = margin.abs() / w.flatten(1).abs().sum(1).clamp_min(1e-12)
    if classes == "all":
        for i in range(logits.shape[1]):
            other = torch.full_like(y, i)
            gap = lambda z, t, other=other: z.gather(1, other[:, None]).squeeze(1) - z.gather(1, t[:, None]).squeeze(1)
            _, margin_i, w_i = input_gradient(model, x, y, gap)
            d_i = margin_i.abs() / w_i.flatten(1).abs().sum(1).clamp_min(1e-12)
            closer = (d_i < distance) & (other != y)
            distance = torch.where(closer, d_i, distance)
            w = torch.where(closer.view(-1, *[1] * (x.dim() - 1)), w_i, w)
    return distance, w, logits


def efgsm_example(model, x, y, eps: float, sigma: float, gamma: torch.Tensor | None = None, *,
                  classes: str = "runner-up", project: bool = True, literal_sign: bool = False) -> EfgsmExample:
    """One eFGSM example per image (Eqs. 11, 12, 14):

        kappa   ~ N(sign(Gamma) eps, sigma^2)                       (14)
        x^e     = P_[0,1](x + P_[-eps,eps](kappa))                  (11, double sign resolved)
        x^adv   = P_[0,1](P_B(x,eps)(x^e + Delta sign(w_l)))        (12, plus our eps-projection)

    `gamma`: the images' sign memories (Eq. 13; None or zeros at the first epoch: a start of
    pure noise). At-risk: Delta < eps at x^e, or x^e already misclassified.
    """
    if eps < 0 or sigma < 0:
        raise ValueError(f"eps and sigma must be non-negative, got {eps} and {sigma}")
    direction = torch.zeros_like(x) if gamma is None else gamma.to(x.dtype).sign()
    kappa = direction * eps + sigma * torch.randn_like(x)
    start = (kappa * direction if literal_sign else kappa).clamp(-eps, eps)
    x_e = (x + start).clamp(0, 1).detach()
    distance, w, logits = deepfool_linf(model, x_e, y, classes)
    x_adv = x_e + distance.view(-1, *[1] * (x.dim() - 1)) * w.sign()
    if project:
        x_adv = x + (x_adv - x).clamp(-eps, eps)
    at_risk = (distance < eps) | (logits.argmax(1) != y)
    return EfgsmExample(x_adv.clamp(0, 1).detach(), distance.detach(), at_risk.detach())


def update_sign_memory(gamma: torch.Tensor, x_adv: torch.Tensor, x: torch.Tensor, decay: float = 0.95) -> torch.Tensor:
    """Eq. 13: Gamma^{j+1} = decay * Gamma^j + sign(x^adv - x)."""
    return decay * gamma + (x_adv - x).sign()


def efgsm(model, x, y, eps: float, sigma: float | None = None, classes: str = "runner-up", project: bool = True):
    """eFGSM as an evaluation attack: a fresh image has no sign memory (Gamma = 0), so this is the
    noisy start plus the DeepFool step. `sigma` defaults to eps / 2."""
    return efgsm_example(model, x, y, eps, eps / 2 if sigma is None else sigma, classes=classes, project=project).x_adv
