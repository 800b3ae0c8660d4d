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
`disturbances.py`: benign test-time transforms. `ATTACKS` names them for evaluation specs and
`COSTS` says what each costs (`advbook.costs`), from its parameters; adding one is its file and a
line in each (see the README).
"""
from ..costs import AttackCost, iterative
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

# What each costs per image, from its spec's params. The operators per step of torchattacks' attacks
# were counted on a small CNN: APGD 50, APGD-T 85, FAB-T 100, Square 75 a query (ours: PGD 15 a step).
COSTS = {
    "fgsm": lambda p: AttackCost(2.0 * p.get("eot", 1), 0.0, 30.0),
    "pgd": iterative,
    "torchattacks-pgd": lambda p: AttackCost(float(p.get("steps", 10)), 0.0, 15.0 * p.get("steps", 10)),
    # APGD-CE and APGD-DLR at 100 steps, EOT over 20 draws for a random model; else APGD-CE (100 steps),
    # APGD-T (9 targets x 100), FAB-T (9 x 100, about 3 passes a step) and Square (5,000 queries)
    "autoattack": lambda p: AttackCost(2 * 100 * 20.0, 0.0, 2 * 100 * 50.0) if p.get("version") == "rand" else
    AttackCost(100 + 900 + 2700.0, 5000.0, 100 * 50 + 900 * 85 + 900 * 100 + 5000 * 75.0),
    "apgd": lambda p: iterative(p, default_steps=100, operators_per_step=50.0),
    "efgsm": lambda p: AttackCost(2.0 * p.get("eot", 1), 0.0, 30.0),
    "transfer": iterative,  # PGD on the source model, counted at the target's cost
    "five-crop": lambda p: AttackCost(0.0, 4.0, 20.0),
    **{name: (lambda p: AttackCost(0.0, 0.0, 20.0)) for name in ("random-crop", "hflip", "grayscale", "color-jitter")},
}

__all__ = ["ATTACKS", "COSTS", "DISTURBANCES", "GRADIENTS", "LOSSES", "apgd", "autoattack", "autoattack_label", "deepfool_linf",
           "efgsm", "efgsm_example", "fgsm", "input_gradient", "margin_loss", "pgd", "random_delta", "step_and_project",
           "torchattacks_pgd", "transfer", "update_sign_memory"]
