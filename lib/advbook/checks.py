"""Sanity checks run before every evaluation (after AutoAttack's `checks.py`, Croce and Hein 2020):
signs that a gradient attack would underestimate the attacker, so that a robust accuracy
computed under them is read with care. Each is cheap (a small batch, two forward passes and
one backward pass) and reported, never fatal:

- `randomized`: the outputs differ on the same input twice (a random defense: the attack needs
  EOT and the score fresh draws);
- `zero_gradients`: the fraction of images whose loss gradient with respect to the input is
  zero everywhere (gradient masking, e.g. saturated outputs or a non-differentiable layer);
- `probabilities`: every output row lies in [0, 1] and sums to 1 (a softmax inside the model:
  the cross-entropy of attacks is then taken of probabilities and its gradients vanish);
- `non_finite`: the fraction of images with a NaN or infinite output.

`warnings` says in words what was found. The caller sets the mode and precision (evaluation:
eval mode, fp32).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

N_IMAGES = 32  # enough to see each of the signs; the checks cost about one attack step on them


def sanity_checks(model, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The checks on the images `x` (pixels in [0, 1]) with labels `y`; see the module docstring."""
    with torch.no_grad():
        first, second = model(x).float(), model(x).float()
    finite = torch.isfinite(first).all(1)
    # a tolerance for GPU kernels that need not repeat to the last bit; noise layers differ by far more
    randomized = not torch.allclose(first[finite], second[finite], rtol=1e-5, atol=1e-6)
    probabilities = bool(finite.all() and (first >= 0).all() and (first <= 1).all()
                         and torch.allclose(first.sum(1), torch.ones(len(first), device=first.device), atol=1e-4))
    with torch.enable_grad():
        inputs = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(inputs).float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, inputs)
    zero = (grad.flatten(1) == 0).all(1)
    out = {"n": len(y), "randomized": randomized, "zero_gradients": zero.float().mean().item(),
           "probabilities": probabilities, "non_finite": 1 - finite.float().mean().item()}
    out["warnings"] = warnings(out)
    return out


def warnings(checks: dict) -> list[str]:
    """What the checks found, in words (empty when nothing)."""
    found = []
    if checks["randomized"]:
        found.append("the model's outputs differ on the same input: it is randomized, so attacks need EOT "
                     "and scores fresh noise draws")
    if checks["zero_gradients"] > 0:
        found.append(f"{checks['zero_gradients']:.0%} of the images have an all-zero input gradient: "
                     "gradient attacks may be masked")
    if checks["probabilities"]:
        found.append("the outputs look like probabilities (rows in [0, 1] summing to 1): a softmax inside the "
                     "model weakens loss-based attacks, which expect logits")
    if checks["non_finite"] > 0:
        found.append(f"{checks['non_finite']:.0%} of the images give non-finite outputs")
    return found
