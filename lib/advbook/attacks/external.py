"""Third-party attacks (torchattacks), wrapped into the uniform call shape, inputs in [0, 1]."""
from __future__ import annotations

import inspect

import torch

from .apgd import apgd

AUTOATTACK_VERSIONS = ("standard", "rand")


def torchattacks_pgd(model, x, y, eps, alpha, steps, random_start=True, norm="linf"):
    """torchattacks' PGD or PGDL2 (last iterate, CE loss), for a side-by-side check of ours."""
    import torchattacks

    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    return cls(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)(x, y)


def autoattack(model, x, y, eps, *, version: str = "standard", norm: str = "Linf", apgd_steps: int = 100,
               apgdt_steps: int = 100, fab_steps: int = 100, targets: int = 9, square_queries: int = 5000,
               p_init: float = 0.8, eot: int | None = None):
    """AutoAttack (Croce and Hein 2020) at its published strength, from torchattacks' components.

    `standard`: APGD-CE (`apgd_steps`, 1 restart), APGD-T (`apgdt_steps`, `targets` target classes),
    FAB-T (`fab_steps`, `targets` targets), Square (`square_queries` queries, `p_init`);
    `rand` (for randomized models): APGD-CE and APGD-DLR (`apgd_steps` each) with EOT over `eot`
    draws (default 20; 1 for `standard`). Every component is seeded with 0 and attacks only the
    images that all the previous ones left correctly classified, as AutoAttack does; the first,
    APGD-CE, attacks the whole batch and is the very computation of `apgd(..., steps=apgd_steps)`,
    so AutoAttack never leaves an image robust that APGD-CE fools. The number of classes is read
    from the model's output. (torchattacks' own AutoAttack runs 10 iterations, not 100.)
    `autoattack_label(**params)` names the parameters used.
    """
    import torchattacks

    eot = _default_eot(version) if eot is None else eot
    if version not in AUTOATTACK_VERSIONS:
        raise ValueError(f"version must be one of {AUTOATTACK_VERSIONS}, got {version!r}")
    if norm not in ("Linf", "L2"):
        raise ValueError(f"norm must be 'Linf' or 'L2', got {norm!r}")
    if min(apgd_steps, apgdt_steps, fab_steps, square_queries, eot) < 1 or not 0 < p_init <= 1:
        raise ValueError("AutoAttack needs steps, square_queries and eot >= 1 and p_init in (0, 1]")
    # one image through the model, off the global random stream (which a randomized model draws
    # from), so that the first component computes exactly what `apgd` alone would
    with torch.no_grad(), torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
        n_classes = model(x[:1]).shape[1]
    if not 1 <= targets <= n_classes - 1:
        raise ValueError(f"targets must be between 1 and {n_classes - 1} (the model has {n_classes} classes), "
                         f"got {targets}")

    def apgd_ce(xs, ys):
        return apgd(model, xs, ys, eps, steps=apgd_steps, loss="ce", norm=norm, eot=eot)

    if version == "rand":
        components = [apgd_ce, lambda xs, ys: apgd(model, xs, ys, eps, steps=apgd_steps, loss="dlr", norm=norm,
                                                   eot=eot)]
    else:
        apgd_t = torchattacks.APGDT(model, norm=norm, eps=eps, steps=apgdt_steps, n_restarts=1, eot_iter=eot,
                                    n_classes=n_classes, seed=0)
        fab_t = torchattacks.FAB(model, norm=norm, eps=eps, steps=fab_steps, n_restarts=1, multi_targeted=True,
                                 n_classes=n_classes, seed=0)
        apgd_t.n_target_classes = fab_t.n_target_classes = targets
        square = torchattacks.Square(model, norm=norm, eps=eps, n_queries=square_queries, n_restarts=1, p_init=p_init,
                                     seed=0)
        components = [apgd_ce, apgd_t, fab_t, square]

    x_adv = x.detach().clone()
    robust = torch.ones(len(y), dtype=torch.bool, device=x.device)
    for attack in components:
        index = robust.nonzero().squeeze(1)
        if len(index) == 0:
            break
        candidate = attack(x[index], y[index])
        with torch.no_grad():
            fooled = model(candidate).argmax(1) != y[index]
        x_adv[index[fooled]] = candidate[fooled]
        robust[index[fooled]] = False
    return x_adv


def _default_eot(version: str) -> int:
    return 20 if version == "rand" else 1


def autoattack_label(**params) -> str:
    """AutoAttack's display name with the parameters that set its strength (the defaults of
    `autoattack` for those not given), e.g. 'AutoAttack standard (APGD-CE 100, APGD-T 100x9,
    FAB-T 100x9, Square 5000, p_init 0.8)'. Other params (eps) are ignored."""
    defaults = {name: p.default for name, p in inspect.signature(autoattack).parameters.items()
                if p.default is not inspect.Parameter.empty}
    p = {**defaults, **{k: v for k, v in params.items() if k in defaults}}
    eot = _default_eot(p["version"]) if p["eot"] is None else p["eot"]
    norm = "" if p["norm"] == "Linf" else f" {p['norm']}"
    if p["version"] == "rand":
        parts = [f"APGD-CE {p['apgd_steps']}", f"APGD-DLR {p['apgd_steps']}"]
    else:
        parts = [f"APGD-CE {p['apgd_steps']}", f"APGD-T {p['apgdt_steps']}x{p['targets']}",
                 f"FAB-T {p['fab_steps']}x{p['targets']}", f"Square {p['square_queries']}, p_init {p['p_init']}"]
    if eot > 1:
        parts.append(f"EOT {eot}")
    return f"AutoAttack {p['version']}{norm} ({', '.join(parts)})"


autoattack.label = autoattack_label  # evaluation records the label of the parameters it ran with
