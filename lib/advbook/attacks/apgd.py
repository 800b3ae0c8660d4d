"""Auto-PGD (Croce and Hein 2020) as packaged by torchattacks: the step size adapts per image
(halved when progress stalls, with momentum), so no step-size choice can weaken it. The paper's
"PGD-ADP" (adaptive PGD, 100 iterations) is read as APGD-CE-100."""
from __future__ import annotations


def apgd(model, x, y, eps: float, steps: int = 100, loss: str = "ce", restarts: int = 1, norm: str = "Linf",
         eot: int = 1):
    """APGD on the cross-entropy (`loss="ce"`) or the scale-invariant difference of logits ratio
    (`loss="dlr"`: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)), best iterate, `restarts` random starts,
    each step's gradient averaged over `eot` calls (for a randomized model). Seeded with 0 on
    every call, so one batch always gets the same starts (AutoAttack's first component is this)."""
    import torchattacks

    if loss not in ("ce", "dlr"):
        raise ValueError(f"loss must be 'ce' or 'dlr', got {loss!r}")
    if norm not in ("Linf", "L2"):
        raise ValueError(f"norm must be 'Linf' or 'L2', got {norm!r}")
    if steps < 1 or restarts < 1 or eot < 1:
        raise ValueError(f"need steps, restarts and eot >= 1, got {steps}, {restarts} and {eot}")
    return torchattacks.APGD(model, norm=norm, eps=eps, steps=steps, n_restarts=restarts, loss=loss, eot_iter=eot,
                             seed=0)(x, y)
