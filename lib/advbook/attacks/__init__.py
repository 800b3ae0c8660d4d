"""Attacks: functional and batched, one call shape, inputs and outputs in pixel space [0, 1].

    x_adv = attack(model, x, y, eps=..., ...)

`gradient.py`: FGSM, PGD (with EOT); `external.py`: torchattacks' PGD and AutoAttack.
`ATTACKS` names them for evaluation specs.
"""
from .disturbances import DISTURBANCES
from .external import autoattack, torchattacks_pgd
from .gradient import GRADIENTS, LOSSES, fgsm, input_gradient, margin_loss, pgd, random_delta, step_and_project

ATTACKS = {
    "fgsm": fgsm,
    "pgd": pgd,
    "torchattacks-pgd": torchattacks_pgd,
    "autoattack": autoattack,
    **DISTURBANCES,  # benign transforms (Di et al.'s Table 1), scored with require_clean=False
}

__all__ = ["ATTACKS", "GRADIENTS", "LOSSES", "autoattack", "fgsm", "input_gradient", "margin_loss", "pgd",
           "random_delta", "step_and_project", "torchattacks_pgd"]
