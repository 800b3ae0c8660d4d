"""Attacks: functional and batched, one call shape, inputs and outputs in pixel space [0, 1].

    x_adv = attack(model, x, y, eps=..., ...)

`gradient.py`: FGSM, PGD (with EOT); `apgd.py`: APGD; `external.py`: torchattacks' PGD and AutoAttack
(built from torchattacks' components at the published strength).
`ATTACKS` names them for evaluation specs.
"""
from .apgd import apgd
from .disturbances import DISTURBANCES
from .efgsm import deepfool_linf, efgsm, efgsm_example, update_sign_memory
from .external import autoattack, autoattack_label, torchattacks_pgd
from .transfer import transfer
from .gradient import GRADIENTS, LOSSES, fgsm, input_gradient, margin_loss, pgd, random_delta, step_and_project

ATTACKS = {
    "fgsm": fgsm,
    "pgd": pgd,
    "torchattacks-pgd": torchattacks_pgd,
    "autoattack": autoattack,
    "apgd": apgd,            # APGD-CE / APGD-DLR (Croce and Hein 2020)
    "efgsm": efgsm,          # Chen and Lee's eFGSM without sign memory
    "transfer": transfer,    # PGD crafted on a stored source model (attacks/transfer.py)
    **DISTURBANCES,  # benign transforms (Di et al.'s Table 1), scored with require_clean=False
}

__all__ = ["ATTACKS", "GRADIENTS", "LOSSES", "apgd", "autoattack", "autoattack_label", "fgsm", "input_gradient",
           "margin_loss", "pgd", "random_delta", "step_and_project", "torchattacks_pgd"]
