"""Attacks: functional and batched, one call shape, inputs and outputs in pixel space [0, 1].

    x_adv = attack(model, x, y, eps=..., ...)

The contract every registered attack keeps (the contract tests check each): it returns images
in [0, 1] within the eps ball of x; it never changes the model's mode (the caller decides it:
evaluation runs in eval mode, training attacks in train mode); it takes gradients with respect
to the input only, so it leaves no gradient in the model's parameters. Arguments beyond
(model, x, y) are keywords an evaluation spec names under its `params`.

`gradient.py`: FGSM and PGD (restarts, best iterate, EOT, early exit); `apgd.py`: APGD;
`external.py`: torchattacks' PGD and AutoAttack built from its components at the published
strength; `efgsm.py`: eFGSM's example; `transfer.py`: PGD crafted on another model;
`disturbances.py`: benign test-time transforms. `ATTACKS` names them for evaluation specs;
adding one is its file and one line here (see the README).
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

__all__ = ["ATTACKS", "DISTURBANCES", "GRADIENTS", "LOSSES", "apgd", "autoattack", "autoattack_label", "deepfool_linf",
           "efgsm", "efgsm_example", "fgsm", "input_gradient", "margin_loss", "pgd", "random_delta", "step_and_project",
           "torchattacks_pgd", "transfer", "update_sign_memory"]
