"""Attacks: functional and batched, one call shape, inputs and outputs in pixel space [0, 1].

    x_adv = attack(model, x, y, eps=..., ...)

Every attack returns a tensor in [0, 1] inside the eps ball around `x`. None of them calls
`model.train()` or `model.eval()`: the caller decides the mode (evaluation uses eval mode,
adversarial training generates its examples in the mode it trains in, as Madry et al. and
Wong et al. do). Gradients are taken with respect to the perturbation only, so an attack
never leaves gradients in the model's parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini-Wagner margin, per example: max_{j != y} z_j - z_y (positive = misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.amax(1) - true


LOSSES = {
    "ce": lambda logits, y: F.cross_entropy(logits, y, reduction="none"),
    "cw": margin_loss,
}


def input_gradient(model, x_adv, y, loss_fn):
    """Per-example loss and its gradient with respect to the input (a summed loss gives
    each example's own gradient, since examples do not interact in eval mode)."""
    with torch.enable_grad():  # attacks work even when called under torch.no_grad()
        x_adv = x_adv.detach().requires_grad_(True)
        logits = model(x_adv)
        losses = loss_fn(logits.float(), y)
        (grad,) = torch.autograd.grad(losses.sum(), x_adv)
    return logits.detach(), losses.detach(), grad


def fgsm(model, x, y, eps: float, *, alpha: float | None = None, random_start: bool = False,
         loss: str = "ce") -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): x' = x + eps * sign(grad_x L).

    With `random_start=True` it is FGSM-RS (Wong et al. 2020): delta ~ U(-eps, eps), then
    delta <- clip_eps(delta + alpha * sign(grad)); `alpha` defaults to eps.
    """
    _check(x, eps)
    alpha = eps if alpha is None else alpha
    delta = torch.empty_like(x).uniform_(-eps, eps) if random_start else torch.zeros_like(x)
    delta = (x + delta).clamp(0, 1) - x
    _, _, grad = input_gradient(model, x + delta, y, LOSSES[loss])
    delta = (delta + alpha * grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0, 1).detach()


def _random_delta(x, eps, norm):
    if norm == "linf":
        return torch.empty_like(x).uniform_(-eps, eps)
    direction = torch.randn_like(x)
    direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))
    radius = torch.rand(len(x), device=x.device).view(-1, *[1] * (x.dim() - 1)) * eps
    return direction * radius


def _step_and_project(delta, grad, x, eps, alpha, norm):
    if norm == "linf":
        delta = (delta + alpha * grad.sign()).clamp(-eps, eps)
    else:  # l2: a step along the normalized gradient, then back onto the ball
        shape = (-1,) + (1,) * (x.dim() - 1)
        g_norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)
        delta = delta + alpha * grad / g_norm
        d_norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)
        delta = delta * (eps / d_norm).clamp(max=1.0)
    return (x + delta).clamp(0, 1) - x  # stay a valid image


def pgd(model, x, y, eps: float, alpha: float, steps: int, *, norm: str = "linf", loss: str = "ce",
        random_start: bool = True, restarts: int = 1, keep_best: bool = True) -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2018) on the loss `ce` or the CW margin `cw`.

    Each step: delta <- Proj_{||delta|| <= eps}(delta + alpha * sign(grad)) for linf, or
    alpha * grad / ||grad||_2 for l2, keeping x + delta in [0, 1].

    `keep_best` (evaluation) returns, per example, the first iterate that is misclassified,
    else the one with the highest loss, across all steps and restarts: with a fixed random
    start, more steps can then never lower the attack's success. Training uses the plain
    last iterate (`keep_best=False`), as Madry et al. do.
    """
    _check(x, eps)
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
    if steps < 0 or restarts < 1:
        raise ValueError(f"need steps >= 0 and restarts >= 1, got {steps} and {restarts}")
    if restarts > 1 and not keep_best:
        raise ValueError("restarts > 1 needs keep_best=True (which restart's result would be returned?)")
    loss_fn = LOSSES[loss]
    best = x.clone()
    best_fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    best_loss = torch.full((len(x),), float("-inf"), device=x.device)

    def keep(candidate, logits, losses):
        nonlocal best, best_fooled, best_loss
        fooled = logits.argmax(1) != y
        # a first success beats everything; among failures, the higher loss wins
        better = ~best_fooled & (fooled | (losses > best_loss))
        best = torch.where(better.view(-1, *[1] * (x.dim() - 1)), candidate, best)
        best_fooled, best_loss = best_fooled | fooled, torch.where(better, losses, best_loss)

    for _ in range(restarts):
        delta = _random_delta(x, eps, norm) if random_start else torch.zeros_like(x)
        delta = (x + delta).clamp(0, 1) - x
        for _ in range(steps):
            logits, losses, grad = input_gradient(model, x + delta, y, loss_fn)
            if keep_best:
                keep((x + delta).detach(), logits, losses)
            delta = _step_and_project(delta.detach(), grad, x, eps, alpha, norm)
        if not keep_best:
            return (x + delta).detach()
        with torch.no_grad():
            logits = model(x + delta)
        keep((x + delta).detach(), logits, loss_fn(logits.float(), y))
    return best.detach()


def _check(x, eps):
    # the [0, 1] range of x is checked once per dataset by the caller (evaluate), not here:
    # reading a tensor's min/max would synchronize the GPU on every training step
    if eps < 0:
        raise ValueError(f"eps must be non-negative, got {eps}")
