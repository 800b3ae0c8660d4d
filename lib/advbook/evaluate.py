"""Evaluation: clean and robust accuracy under a named attack suite, eps and iteration sweeps.

Evaluation runs the model in eval mode (batch norm with running statistics, no dropout) and
puts back whatever mode it found. Attack random starts are seeded, so an evaluation repeats.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from . import attacks
from .data import to_float
from .train import autocast, default_device


@contextmanager
def eval_mode(model):
    """Eval mode for the duration, then the model's own mode back (never a silent change)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _batches(x_u8, y, batch_size, device):
    for start in range(0, len(y), batch_size):
        yield to_float(x_u8[start:start + batch_size].to(device)), y[start:start + batch_size].to(device)


def accuracy(model, x_u8, y, *, device=None, batch_size=1000, precision="fp32") -> float:
    """Clean accuracy on uint8 images."""
    device = device or default_device()
    correct = torch.zeros((), device=device, dtype=torch.long)
    with eval_mode(model), torch.no_grad(), autocast(device, precision):
        for x, yb in _batches(x_u8, y, batch_size, device):
            correct += (model(x).argmax(1) == yb).sum()
    return correct.item() / max(len(y), 1)


def robust_accuracy(model, x_u8, y, attack, *, device=None, batch_size=500, precision="fp32",
                    seed=0, **attack_params) -> float:
    """Robust accuracy under `attack(model, x, y, **attack_params)` (the uniform call shape).

    An image counts as robust only if it is classified correctly both clean and attacked, as
    in RobustBench, so robust accuracy can never exceed clean accuracy.
    """
    device = device or default_device()
    torch.manual_seed(seed)
    correct = torch.zeros((), device=device, dtype=torch.long)
    with eval_mode(model), autocast(device, precision):
        for x, yb in _batches(x_u8, y, batch_size, device):
            x_adv = attack(model, x, yb, **attack_params)
            with torch.no_grad():
                correct += ((model(x).argmax(1) == yb) & (model(x_adv).argmax(1) == yb)).sum()
    return correct.item() / max(len(y), 1)


# ----------------------------------------------------------------------------------------
# Third-party attacks, wrapped into the uniform call shape
# ----------------------------------------------------------------------------------------

def torchattacks_pgd(model, x, y, eps, alpha, steps, random_start=True):
    """torchattacks' PGD (last iterate, CE loss), for a side-by-side check of ours."""
    import torchattacks

    return torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)(x, y)


def autoattack(model, x, y, eps, n_classes=10, version="standard"):
    """AutoAttack (Croce and Hein 2020) as packaged by torchattacks: APGD-CE, APGD-T, FAB-T, Square."""
    import torchattacks

    return torchattacks.AutoAttack(model, norm="Linf", eps=eps, version=version, n_classes=n_classes, seed=0)(x, y)


def suite(eps: float, alpha: float, steps: int, restarts: int = 1, n_classes: int = 10) -> dict:
    """The named attacks of the book's standard suite at one eps: name -> (attack, params)."""
    return {
        "fgsm": (attacks.fgsm, {"eps": eps}),
        "pgd": (attacks.pgd, {"eps": eps, "alpha": alpha, "steps": steps, "restarts": restarts}),
        "pgd-cw": (attacks.pgd, {"eps": eps, "alpha": alpha, "steps": steps, "restarts": restarts, "loss": "cw"}),
        "torchattacks-pgd": (torchattacks_pgd, {"eps": eps, "alpha": alpha, "steps": steps}),
        "autoattack": (autoattack, {"eps": eps, "n_classes": n_classes}),
    }


CUSTOM = {"fgsm": attacks.fgsm, "pgd": attacks.pgd, "autoattack": autoattack}


def evaluate(model, dataset, spec: dict, *, device=None, precision="fp32") -> dict:
    """All metrics a chapter asks for, from an evaluation spec:

    n (test images), eps, alpha, steps, restarts, attacks (names from `suite`),
    autoattack_n (images for AutoAttack, slow), eps_sweep (list), steps_sweep (list), and
    custom: a list of {"name", "attack": fgsm|pgd|autoattack, "n" (optional), its parameters}.
    Returns {"clean": acc, "<attack>": acc, "eps_sweep": {eps: acc}, "steps_sweep": {k: acc}}.
    """
    device = device or default_device()
    n = spec.get("n")
    x, y = dataset.x_test[:n], dataset.y_test[:n]
    eps, alpha, steps = spec.get("eps"), spec.get("alpha"), spec.get("steps")
    restarts = spec.get("restarts", 1)
    out = {"n": len(y), "clean": accuracy(model, x, y, device=device, precision=precision)}
    named = suite(eps, alpha, steps, restarts, dataset.num_classes) if spec.get("attacks") else {}
    for name in spec.get("attacks", []):
        if name not in named:
            raise ValueError(f"unknown attack '{name}'; known: {', '.join(named)}")
        attack, params = named[name]
        m = (spec.get("autoattack_n") or len(y)) if name == "autoattack" else len(y)
        xs, ys = x[:m], y[:m]
        out[name] = robust_accuracy(model, xs, ys, attack, device=device, precision=precision, **params)
        if name == "autoattack":
            out["autoattack_n"] = len(ys)
    for item in spec.get("custom", []):  # named attacks at their own budgets: {"name", "attack", "n"?, params}
        kind = item["attack"]
        if kind not in CUSTOM:
            raise ValueError(f"unknown attack '{kind}' in {item['name']}; known: {', '.join(CUSTOM)}")
        params = {k: v for k, v in item.items() if k not in ("name", "attack", "n")}
        if kind == "autoattack":
            params["n_classes"] = dataset.num_classes
        m = item.get("n") or len(y)
        out[item["name"]] = robust_accuracy(model, x[:m], y[:m], CUSTOM[kind], device=device, precision=precision,
                                            **params)
    if spec.get("eps_sweep"):
        out["eps_sweep"] = {
            str(e): robust_accuracy(model, x, y, attacks.pgd, device=device, precision=precision,
                                    eps=e, alpha=e * alpha / eps if eps else e / 4, steps=steps, restarts=restarts)
            for e in spec["eps_sweep"]}
    if spec.get("steps_sweep"):
        out["steps_sweep"] = {
            str(k): robust_accuracy(model, x, y, attacks.pgd, device=device, precision=precision,
                                    eps=eps, alpha=alpha, steps=k)
            for k in spec["steps_sweep"]}
    return out
