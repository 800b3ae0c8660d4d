"""Evaluation: accuracy under a flat list of attack specs, always in fp32 and in eval mode.

An attack spec is a plain dict, the unit an evaluation record is stored under:

    {"name": "PGD-20 8/255", "attack": "pgd", "params": {"eps": 8/255, "alpha": 2/255, "steps": 20},
     "n": 1000}

`attack` is "clean" or a name in `advbook.attacks.ATTACKS`; `params` are its keyword arguments
(the attack's own call shape, `attack(model, x, y, **params)`). Every other key is one of the
evaluation's OPTIONS, which no attack ever sees. `n`: test images (default: all). `seed`: the
attack's random stream (default 0). For models that are random at test time
(`models.is_randomized`): `draws` (R, default 1) evaluates clean and attacked images under R
fresh noise draws and reports the mean and spread, so an attack's success is judged on fresh
draws, never on the lucky draw it was found with; `attacker_noise` False lets the attacker see
the model with its noise switched off (one of the threat models for randomized defenses); EOT is
the attack's own `eot` parameter. For SAT models, `exact_relu_gradient` True makes the attacker
differentiate the true ReLU instead of the smooth surrogate the model was trained with.
`require_clean` (default True) counts an image only if its clean version is classified correctly
too (robust accuracy); False scores the transformed images alone, as for a benign disturbance (a
crop, a colour jitter) whose accuracy is the point. `sweep`: {"name", "value"} marks the spec as
one point of a sweep (`sweep`), which a results record groups back as {name: {value: accuracy}}.

Evaluation runs the model in eval mode (batch norm with running statistics, no dropout) and
puts back whatever mode it found, and in fp32 even inside a caller's autocast. `evaluate_spec`
first runs `checks.sanity_checks` on a few test images (a randomized model, zero input gradients,
a softmax inside the model, non-finite outputs) and reports them under "checks".
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager, nullcontext

import torch

from .attacks import ATTACKS
from .checks import N_IMAGES, sanity_checks
from .data import to_float
from .device import autocast, default_device, flush_denormals
from .models import exact_relu_gradient as exact_gradient
from .models import noise_off

# what a spec holds besides its name, its attack and the attack's `params`: the evaluation's own options
OPTIONS = ("n", "seed", "draws", "attacker_noise", "exact_relu_gradient", "require_clean")
# what a spec shows but is not: its display name and sweep mark (no key includes them)
DISPLAY = ("name", "sweep")
SPEC_FIELDS = (*DISPLAY, "attack", "params", *OPTIONS)
# a record's per-image outcome is one base-36 digit an image: the draws it was right in
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_DRAWS = len(_DIGITS) - 1


@contextmanager
def eval_mode(model):
    """Eval mode for the duration, then each submodule's own mode back (never a silent change:
    a batch norm frozen in eval mode inside a training model stays frozen)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def _batches(x_u8, y, batch_size, device):
    for start in range(0, len(y), batch_size):
        yield to_float(x_u8[start:start + batch_size].to(device)), y[start:start + batch_size].to(device)


def outcomes(model, x_u8, y, attack=None, *, device=None, batch_size=500, seed=0, draws=1, attacker_noise=True,
             exact_relu_gradient=False, require_clean=True, **attack_params) -> torch.Tensor:
    """Per noise draw and per image, whether the model is right under `attack(model, x, y,
    **attack_params)` (None: clean): a (draws, images) bool tensor on the CPU, images in the
    order given, so that a chapter can take the per-image worst case over every attack it ran.

    An image counts as robust in a draw only if that draw classifies it correctly both clean and
    attacked, as in RobustBench, so robust accuracy never exceeds clean accuracy (`require_clean`
    False: the attacked image alone). The adversarial images are computed once; each draw is a
    fresh forward pass of the (randomized) model. Always in fp32: an enclosing autocast (a bf16
    training loop's validation) is switched off for the duration.
    """
    device = device or default_device()
    flush_denormals(device)
    torch.manual_seed(seed)
    batches = []
    with eval_mode(model), autocast(device, "fp32"):
        for x, yb in _batches(x_u8, y, batch_size, device):
            if attack is not None:
                with (nullcontext() if attacker_noise else noise_off(model)), \
                        (exact_gradient(model) if exact_relu_gradient else nullcontext()):
                    x_adv = attack(model, x, yb, **attack_params)
            rows = []
            with torch.no_grad():
                for _ in range(draws):
                    ok = model(x).argmax(1) == yb if attack is None or require_clean else torch.ones_like(yb, dtype=torch.bool)
                    if attack is not None:
                        ok = (model(x_adv).argmax(1) == yb) & ok
                    rows.append(ok.cpu())
            batches.append(torch.stack(rows))
    return torch.cat(batches, 1) if batches else torch.zeros(draws, 0, dtype=torch.bool)


def correct_per_draw(model, x_u8, y, attack=None, **options) -> list[float]:
    """Accuracy under `attack` (None: clean), once per noise draw (`outcomes`' options)."""
    return _per_draw(outcomes(model, x_u8, y, attack, **options))


def _per_draw(right: torch.Tensor) -> list[float]:
    return [int(r.sum()) / max(right.shape[1], 1) for r in right]  # exact: no float32 mean


def per_image_text(right: torch.Tensor) -> str:
    """`outcomes`' tensor as stored in a record: per image, in how many draws it was right, one
    base-36 digit each (`check_spec` keeps draws below 36)."""
    return "".join(_DIGITS[int(k)] for k in right.sum(0).tolist())


def per_image_counts(text: str) -> list[int]:
    """A record's per-image text read back: per image, the draws it was right in."""
    return [int(c, 36) for c in text]


def accuracy(model, x_u8, y, *, device=None, batch_size=1000, draws=1) -> float:
    """Clean accuracy on uint8 images (the mean over `draws` for a randomized model)."""
    values = correct_per_draw(model, x_u8, y, None, device=device, batch_size=batch_size, draws=draws)
    return sum(values) / len(values)


def robust_accuracy(model, x_u8, y, attack, *, device=None, batch_size=500, seed=0, draws=1,
                    attacker_noise=True, **attack_params) -> float:
    """Robust accuracy under `attack` (the uniform call shape), the mean over `draws`."""
    values = correct_per_draw(model, x_u8, y, attack, device=device, batch_size=batch_size, seed=seed, draws=draws,
                              attacker_noise=attacker_noise, **attack_params)
    return sum(values) / len(values)


def check_spec(spec: dict) -> None:
    """A clear error for a malformed attack spec, before any work."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise ValueError(f"an attack spec needs a name: {spec}")
    name = spec["name"]
    if spec.get("attack") != "clean" and spec.get("attack") not in ATTACKS:
        raise ValueError(f"unknown attack {spec.get('attack')!r} in '{name}'; known: clean, {', '.join(ATTACKS)}")
    unknown = [k for k in spec if k not in SPEC_FIELDS]
    if unknown:
        raise ValueError(f"'{name}': unknown spec key(s) {', '.join(unknown)}: an attack's arguments go under "
                         f"'params', the evaluation's options are {', '.join(OPTIONS)}")
    params = spec.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"'{name}': params must be a dict of the attack's arguments, got {params!r}")
    if spec["attack"] == "clean" and params:
        raise ValueError(f"'{name}': a clean evaluation takes no attack params, got {sorted(params)}")
    sweep_point = spec.get("sweep")
    if sweep_point is not None and (not isinstance(sweep_point, dict) or set(sweep_point) != {"name", "value"}):
        raise ValueError(f"'{name}': sweep must be {{'name': ..., 'value': ...}}, got {sweep_point!r}")
    draws = spec.get("draws", 1)
    if not isinstance(draws, int) or isinstance(draws, bool) or not 1 <= draws <= MAX_DRAWS:
        raise ValueError(f"'{name}': draws must be a whole number from 1 to {MAX_DRAWS} (one digit of the "
                         f"per-image record), got {draws!r}")
    for key, value in [*spec.items(), *params.items()]:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"'{name}': {key} must be a finite number, got {value}")


def evaluate_spec(model, dataset, spec: dict, *, device=None) -> dict:
    """One attack spec on `dataset`'s test split: {"accuracy", "n", "seconds", "checks", "per_image"}
    (`per_image_text`: per image, in the test split's order, the draws it was right in) and, for
    R > 1 noise draws, "per_draw" and "std"; "attack_label" for an attack that names its
    parameters (`attack.label(**params)`, e.g. AutoAttack's)."""
    check_spec(spec)
    device = device or default_device()
    n = spec.get("n") or len(dataset.y_test)
    x, y = dataset.x_test[:n], dataset.y_test[:n]
    params = spec.get("params", {})
    attack = None if spec["attack"] == "clean" else ATTACKS[spec["attack"]]
    flush_denormals(device)
    with eval_mode(model), autocast(device, "fp32"):
        checks = sanity_checks(model, to_float(x[:N_IMAGES].to(device)), y[:N_IMAGES].to(device))
    started = time.perf_counter()
    right = outcomes(model, x, y, attack, device=device, seed=spec.get("seed", 0), draws=spec.get("draws", 1),
                     attacker_noise=spec.get("attacker_noise", True),
                     exact_relu_gradient=spec.get("exact_relu_gradient", False),
                     require_clean=spec.get("require_clean", True), **params)
    values = _per_draw(right)
    out = {"accuracy": sum(values) / len(values), "n": len(y), "seconds": time.perf_counter() - started,
           "checks": checks, "per_image": per_image_text(right)}
    if hasattr(attack, "label"):
        out["attack_label"] = attack.label(**params)
    if len(values) > 1:
        mean = out["accuracy"]
        out["per_draw"] = values
        out["std"] = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return out


def sweep(base: dict, parameter: str, values, *, name: str | None = None, scale: dict | None = None) -> list[dict]:
    """Specs for a sweep of one attack parameter of `base`, one per value, each marked
    {"sweep": {"name": NAME, "value": VALUE}} and named 'NAME:VALUE' (a spec's name is unique in
    its experiment). `scale`: other parameters that scale with it, e.g. {"alpha": 0.25} for a
    step a quarter of eps."""
    name = name or f"{parameter}_sweep"
    specs = []
    for v in values:
        params = {**base.get("params", {}), parameter: v}
        for other, factor in (scale or {}).items():
            params[other] = round(factor * v, 10)
        specs.append({**base, "name": f"{name}:{v}", "params": params, "sweep": {"name": name, "value": v}})
    return specs
