"""Gradient attacks: FGSM and PGD (L-inf or L2, CE loss or CW margin, restarts, best or last
iterate, EOT for randomized models). Pixel space [0, 1] in and out.

None of them calls `model.train()` or `model.eval()`: the caller decides the mode (evaluation
uses eval mode; adversarial training generates its examples in the mode it trains in, as Madry
et al. and Wong et al. do). Gradients are taken with respect to the input only, so an attack
never leaves gradients in the model's parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.layers import is_randomized


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini-Wagner margin, per example: max_{j != y} z_j - z_y (positive = misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.amax(1) - true


LOSSES = {
    "ce": lambda logits, y: F.cross_entropy(logits, y, reduction="none"),
    "cw": margin_loss,
}


class GradientCounter:
    """Counts input-gradient computations, in images (one image's forward and backward pass
    is one): the cost claims of the book are judged from these counts beside wall time."""

    def __init__(self):
        self.images = 0


GRADIENTS = GradientCounter()


def input_gradient(model, x_adv, y, loss_fn, eot: int = 1):
    """Per-example loss and its gradient with respect to the input (a summed loss gives each
    example its own gradient, since examples do not interact in eval mode).

    `eot` > 1 (expectation over transformation, Athalye et al. 2018): for a model that draws
    fresh noise on every call, the gradient, logits and loss are averaged over `eot` calls.
    """
    logits_sum = losses_sum = grad_sum = 0
    with torch.enable_grad():  # attacks work even when called under torch.no_grad()
        for _ in range(eot):
            x = x_adv.detach().requires_grad_(True)
            logits = model(x)
            losses = loss_fn(logits.float(), y)
            (grad,) = torch.autograd.grad(losses.sum(), x)
            logits_sum, losses_sum, grad_sum = logits_sum + logits.detach(), losses_sum + losses.detach(), grad_sum + grad
    count_input_gradients(eot, y)
    return logits_sum / eot, losses_sum / eot, grad_sum / eot


_QUEUED: list[int] = []  # counts made inside torch.compile, added by `add_queued_gradients`


def count_input_gradients(eot: int, y: torch.Tensor) -> None:
    """GRADIENTS.images += eot * len(y). Inside torch.compile (a training step compiled whole,
    `train.compile_step`) the count is queued instead, for the compiled step's caller to add
    with `add_queued_gradients`: reading the counter's int there would make dynamo recompile for
    every value it takes, while the queue is empty at every step's start."""
    if torch.compiler.is_compiling():
        _QUEUED.append(eot * len(y))
    else:
        GRADIENTS.images += eot * len(y)


def add_queued_gradients() -> None:
    GRADIENTS.images += sum(_QUEUED)
    _QUEUED.clear()


def fgsm(model, x, y, eps: float, *, alpha: float | None = None, random_start: bool = False,
         clip_start: bool = False, loss: str = "ce", eot: int = 1) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): x' = x + eps * sign(grad_x L).

    With `random_start=True` it is FGSM-RS (Wong et al. 2020): delta ~ U(-eps, eps), the gradient
    taken at x + delta, then delta <- clip_eps(delta + alpha * sign(grad)) and x + delta clipped
    into [0, 1]; `alpha` defaults to eps. The two reference implementations differ on the start:

    - `clip_start=False` (default): the gradient at the unclipped start x + delta, which may leave
      [0, 1], as in the paper's MNIST code (locuslab/fast_adversarial, MNIST/train_mnist.py), which
      clips only x + delta after the step. On MNIST, whose pixels are mostly 0 or 1, a clipped start
      would leave half of those pixels exactly where they are.
    - `clip_start=True`: the start clipped so that x + delta is in [0, 1] before the gradient, as
      in the paper's CIFAR-10 code (CIFAR10/train_fgsm.py).

    The returned image is always in [0, 1] and within eps of x.
    """
    _check(x, eps)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
    alpha = eps if alpha is None else alpha
    delta = torch.empty_like(x).uniform_(-eps, eps) if random_start else torch.zeros_like(x)
    if clip_start:
        delta = (x + delta).clamp(0, 1) - x
    _, _, grad = input_gradient(model, x + delta, y, LOSSES[loss], eot)
    delta = (delta + alpha * grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0, 1).detach()


def _per_sample(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *[1] * (x.dim() - 1))


def random_delta(x, eps, norm):
    """A uniform start in the L-inf ball, or a uniformly random direction and radius in L2."""
    if norm == "linf":
        return torch.empty_like(x).uniform_(-eps, eps)
    direction = torch.randn_like(x)
    direction = direction / _per_sample(direction.flatten(1).norm(dim=1).clamp_min(1e-12), x)
    return direction * _per_sample(torch.rand(len(x), device=x.device) * eps, x)


def step_and_project(delta, grad, x, eps, alpha, norm):
    """One PGD step, then back onto the ball and into [0, 1].

    linf: delta <- clip_[-eps, eps](delta + alpha * sign(g));
    l2:   delta <- Proj_{||delta||_2 <= eps}(delta + alpha * g / ||g||_2), norms per sample.
    """
    if norm == "linf":
        delta = (delta + alpha * grad.sign()).clamp(-eps, eps)
    else:
        delta = delta + alpha * grad / _per_sample(grad.flatten(1).norm(dim=1).clamp_min(1e-12), x)
        delta = delta * _per_sample((eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0), x)
    return (x + delta).clamp(0, 1) - x  # stay a valid image


def pgd(model, x, y, eps: float, alpha: float, steps: int, *, norm: str = "linf", loss: str = "ce",
        random_start: bool = True, restarts: int = 1, keep_best: bool = True, eot: int = 1,
        early_exit: bool = True) -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2018) on the loss `ce` or the CW margin `cw`:

        delta_{t+1} = Proj_{||delta|| <= eps}(delta_t + alpha * step(grad_x L(x + delta_t, y)))

    with step = sign for linf and g / ||g||_2 for l2, keeping x + delta in [0, 1].

    `keep_best=True` (the strong evaluation) returns, per example, the first iterate that is
    misclassified, else the one with the highest loss, across all steps and restarts: with a
    fixed random start, more steps can then never lower the attack's success. `keep_best=False`
    returns the last iterate, as training does and as many papers' evaluations do (a last
    iterate can bounce out of a misclassified region, so its accuracy can exceed the best's).
    `eot` averages each step's gradient over that many calls of a randomized model.

    `early_exit` (with `keep_best`): an image's best is fixed by its first success, so later
    steps and restarts compute only on the images not yet fooled, with fewer input gradients.
    Each image gets the start and steps of `early_exit=False`: the same images bit for bit where
    the model's kernels do not depend on the batch's size, else the same to float rounding (a
    smaller batch may run another convolution kernel, as another evaluation batch size does).
    Off where the images of a batch interact (`_images_independent`).
    """
    _check(x, eps)
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
    if steps < 0 or restarts < 1 or eot < 1:
        raise ValueError(f"need steps >= 0, restarts >= 1 and eot >= 1, got {steps}, {restarts} and {eot}")
    if restarts > 1 and not keep_best:
        raise ValueError("restarts > 1 needs keep_best=True (which restart's result would be returned?)")
    loss_fn = LOSSES[loss]
    compact = keep_best and early_exit and _images_independent(model)
    best = x.clone()
    best_fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    best_loss = torch.full((len(x),), float("-inf"), device=x.device)

    def keep(rows, candidate, logits, losses):
        fooled = logits.argmax(1) != y[rows]
        # a first success beats everything; among failures, the higher loss wins
        better = ~best_fooled[rows] & (fooled | (losses > best_loss[rows]))
        best[rows] = torch.where(_per_sample(better, candidate), candidate, best[rows])
        best_loss[rows] = torch.where(better, losses, best_loss[rows])
        best_fooled[rows] = best_fooled[rows] | fooled

    everything = slice(None)
    for _ in range(restarts):
        # drawn for the whole batch even when only some images are still attacked: the images
        # computed on see the same random start as in the full computation, and the random
        # stream is left where the full computation leaves it (the next batch's start)
        delta = random_delta(x, eps, norm) if random_start else torch.zeros_like(x)
        delta = (x + delta).clamp(0, 1) - x
        rows = (~best_fooled).nonzero().squeeze(1) if compact else everything
        x_rows, y_rows, delta = x[rows], y[rows], delta[rows]
        for _ in range(steps):
            if len(y_rows) == 0:
                break
            logits, losses, grad = input_gradient(model, x_rows + delta, y_rows, loss_fn, eot)
            if keep_best:
                keep(rows, (x_rows + delta).detach(), logits, losses)
            delta = step_and_project(delta.detach(), grad, x_rows, eps, alpha, norm)
            if compact:  # one host sync a step, in evaluation only
                unfooled = ~best_fooled[rows]
                if not unfooled.all():
                    rows, x_rows, y_rows, delta = rows[unfooled], x_rows[unfooled], y_rows[unfooled], delta[unfooled]
        if not keep_best:
            return (x + delta).detach()
        if len(y_rows):
            with torch.no_grad():
                logits = model(x_rows + delta)
            keep(rows, (x_rows + delta).detach(), logits, loss_fn(logits.float(), y_rows))
    return best.detach()


def _images_independent(model) -> bool:
    """Whether each image's attack is independent of the rest of its batch, which PGD's early
    exit needs to give the full computation's images: not in train mode (batch norm mixes the
    batch), not for a randomized model (its noise draws depend on the batch's size)."""
    if not isinstance(model, torch.nn.Module):
        return False
    return not model.training and not is_randomized(model)


def _check(x, eps):
    # the [0, 1] range of x is checked once per dataset by the caller (evaluate), not here:
    # reading a tensor's min/max would synchronize the GPU on every training step
    if eps < 0:
        raise ValueError(f"eps must be non-negative, got {eps}")
