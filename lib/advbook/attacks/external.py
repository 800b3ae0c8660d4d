"""Third-party attacks (torchattacks), wrapped into the uniform call shape, inputs in [0, 1]."""
from __future__ import annotations


def torchattacks_pgd(model, x, y, eps, alpha, steps, random_start=True, norm="linf"):
    """torchattacks' PGD or PGDL2 (last iterate, CE loss), for a side-by-side check of ours."""
    import torchattacks

    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    return cls(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)(x, y)


def autoattack(model, x, y, eps, n_classes=10, version="standard", norm="Linf"):
    """AutoAttack (Croce and Hein 2020) as packaged by torchattacks. `standard`: APGD-CE, APGD-T,
    FAB-T, Square; `rand` (for randomized models): APGD-CE and APGD-DLR with EOT over 20 draws."""
    import torchattacks

    return torchattacks.AutoAttack(model, norm=norm, eps=eps, version=version, n_classes=n_classes, seed=0)(x, y)
