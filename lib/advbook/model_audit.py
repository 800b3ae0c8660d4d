"""`advbook audit`: a user's own checkpoint put through the book's evaluation, offline.

    advbook audit --arch small-cnn --weights model.pt --dataset mnist --eps 0.3 --output audit/
    advbook audit --model mynet:build --weights model.pt --dataset cifar10-jpeg --eps 8/255 --output audit/

`prepare` checks everything before any work, each problem a one-line `ParameterError`: the
threat model, the seeds and budget, the output folder, the weights (a state dict, read with
`weights_only=True`), the dataset, the model (an architecture of `models.ARCHITECTURES` or the
user's `module:callable`), that it returns (batch, classes) logits and that it expects the
book's [0, 1] pixels. `run` measures, per image and on the first `n` test images (or the `n` a
chapter's records draw with `--test-seed`), in eval mode
and fp32 (`evaluate.eval_mode`): clean accuracy, FGSM, best-iterate PGD with restarts, APGD-CE,
AutoAttack at its published strength, PGD crafted on a surrogate (transfer) and a PGD eps sweep,
so that the worst case is the fraction of images that no attack under any seed fooled. A model
whose two forward passes differ (`checks.sanity_checks`) is randomized: the gradient attacks
also run with EOT and AutoAttack in its `rand` version. The masking checklist is
`masking.checklist`, read from a record-shaped dict, plus three lines of its own (the sweep
falls, transfer is weaker than white-box, the input gradients exist). `write_report` writes
report.json (every number) and report.html (self-contained). Nothing goes to the results store.
"""
from __future__ import annotations

import base64
import html
import importlib
import inspect
import io
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from torch import nn

from . import data, masking, models
from .atomic import write_atomic
from .attacks import ATTACKS, LOSSES, autoattack, autoattack_label, input_gradient, pgd
from .checks import N_IMAGES, sanity_checks, warnings
from .device import autocast, default_device, flush_denormals
from .errors import ParameterError
from .evaluate import eval_mode
from .paths import results_roots, writable

DATASETS = ("digits", "mnist", "cifar10-jpeg")  # the datasets the book holds offline
NORMS = {"linf": "Linf", "l2": "L2"}             # the norm as PGD names it -> as APGD and AutoAttack do
PGD_STEPS, PGD_RESTARTS = 50, 10                 # the book's strong PGD (Performance: PGD-50, 10 restarts)
APGD_STEPS = 100                                 # APGD-CE as AutoAttack runs it
EOT = 20                                         # draws per gradient for a randomized model (AutoAttack rand's)
SWEEP_FACTORS = (0.25, 0.5, 1, 2, 4)             # eps sweep points, as multiples of the audited eps
DEFAULT_N = 1000
BATCH = 500
FORWARD = 1 / 3  # a forward pass's cost in input gradients, for the estimates
# a weak model of our own to craft transfer attacks on: a small CNN trained briefly on training images
SURROGATE = {"arch": "small-cnn", "width": 16, "train_images": 5000, "epochs": 5, "batch_size": 64, "lr": 0.1,
             "schedule": "cyclic", "seed": 0}
# the audit's own checks' tolerances (masking.TOLERANCE holds those of the book's checklist)
TOLERANCE = {
    "sweep_rise": 1.0,      # points a sweep point may sit above a smaller eps's (each eps draws its own starts)
    "transfer": 1.0,        # points transfer may fool more images than white-box PGD by
    "bad_gradients": 0.5,   # fraction of images whose input gradient may be all zero or non-finite
    "input_range": 0.25,    # accuracy another input convention may gain over [0, 1] before the model is refused
}


@dataclass(frozen=True)
class Attack:
    """One measurement of the audit: `attack` is "clean", a name in `ATTACKS`, or "transfer" (PGD
    on the surrogate); `params` its keyword arguments; `seeded` when it draws from the global
    random stream (run once per seed; the others are seeded inside or deterministic)."""
    key: str
    label: str
    attack: str
    params: dict
    seeded: bool
    sweep_eps: float | None = None  # a point of the eps sweep (not part of the worst case)


@dataclass
class Audit:
    """A validated audit: the model on its device with its weights, the test images, the threat model."""
    model: nn.Module
    described: dict     # what the model is and where its weights came from
    dataset: data.Dataset
    x: torch.Tensor     # uint8 test images
    y: torch.Tensor
    norm: str
    eps: float
    eps_text: str
    seeds: tuple[int, ...]
    budget: float | None
    output: Path
    device: torch.device
    arguments: dict
    images: str = ""    # which test images, in words


# ----------------------------------------------------------------------------------------
# Validation, before any work
# ----------------------------------------------------------------------------------------

def parse_eps(text: str) -> float:
    """A budget as a number or a fraction ('0.3', '8/255')."""
    match = re.fullmatch(r"\s*([0-9.eE+-]+)\s*(?:/\s*([0-9.eE+-]+)\s*)?", text)
    try:
        if match is None:
            raise ValueError
        value = float(match[1]) / (float(match[2]) if match[2] else 1.0)
    except (ValueError, ZeroDivisionError):
        raise ParameterError(f"--eps takes a number or a fraction such as 8/255, got {text!r}") from None
    if not math.isfinite(value):
        raise ParameterError(f"--eps must be finite, got {text!r}")
    return value


def largest_eps(norm: str, dims: int) -> float:
    """The budget at which every image can be turned into any other (the L-inf ball of radius 1, the
    L2 ball of the cube's diagonal): there a classifier that is not constant has 0 % robust accuracy."""
    return 1.0 if norm == "linf" else math.sqrt(dims)


def _floats(text: str | None, what: str, channels: int) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ParameterError(f"{what} takes {channels} comma-separated numbers, got {text!r}") from None
    if len(values) != channels or not all(math.isfinite(v) for v in values):
        raise ParameterError(f"{what} takes {channels} finite numbers (one per channel), got {text!r}")
    return values


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise ParameterError(f"--seeds takes comma-separated integers, got {text!r}") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ParameterError(f"--seeds takes distinct non-negative integers, got {text!r}")
    return seeds


def _options(pairs: list[str]) -> dict:
    """--option NAME=VALUE pairs; a value is read as JSON (numbers, true, lists) where it parses, else as text."""
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"--option takes NAME=VALUE, got {pair!r}")
        try:
            options[name] = json.loads(value)
        except json.JSONDecodeError:
            options[name] = value
    return options


def _output(folder: Path) -> Path:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ParameterError(f"--output {folder} exists and is not an empty folder: give a new or empty one "
                             "(an audit never writes over a report)")
    for store in (root.resolve() for root in results_roots()):
        if folder.resolve() == store or store in folder.resolve().parents:
            raise ParameterError(f"--output {folder} is inside the results store {store}, which an audit never touches")
    return folder


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in `path`, read with weights_only=True; a one-line ParameterError for a missing
    or corrupt file, a pickle that needs weights_only=False (refused: loading it runs code from the
    file), and anything that is not a dict of tensors."""
    if not path.is_file():
        raise ParameterError(f"--weights {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError or EOFError, by how the file is broken
        needs = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if needs:
            raise ParameterError(f"--weights {path} refused: it holds a pickled Python object ({needs[1]}) that "
                                 "torch.load can only rebuild with weights_only=False, which runs code from the file; "
                                 "save model.state_dict() instead") from None
        # torch's own message goes on to suggest weights_only=False: only the reason is shown
        found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(exc))
        reason = found[1] if found else re.match(r"[^.\n]*", str(exc))[0] or "it ends early"
        raise ParameterError(f"--weights {path} is not a file torch.save wrote, or it is corrupt or truncated "
                             f"({type(exc).__name__}: {reason})") from None
    if not isinstance(state, dict) or not state:
        raise ParameterError(f"--weights {path} holds a {type(state).__name__}, not a state dict; "
                             "save model.state_dict()")
    other = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if other:
        nested = [k for k in other if isinstance(state[k], dict)]
        hint = f" (a training checkpoint? the weights may be under {nested[0]!r}: save that dict alone)" \
            if nested else ""
        raise ParameterError(f"--weights {path} is not a state dict: {', '.join(map(str, other[:5]))} "
                             f"{'are' if len(other) > 1 else 'is'} not tensors{hint}")
    return state


def _fit_weights(model: nn.Module, state: dict, path: Path, what: str) -> None:
    """Load `state` into `model`, or one line naming the missing, unexpected or misshapen keys."""
    expected = model.state_dict()

    def some(keys):
        return ", ".join(keys[:5]) + (f" ... ({len(keys)} in all)" if len(keys) > 5 else "")

    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = ([f"missing keys {some(missing)}"] if missing else []) + \
               ([f"unexpected keys {some(unexpected)}"] if unexpected else [])
    shapes = [f"{k} is {tuple(state[k].shape)}, the model's {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if shapes:
        problems.append(f"shapes differ: {'; '.join(shapes[:3])}")
    if problems:
        raise ParameterError(f"--weights {path} does not fit {what}: {'; '.join(problems)}")
    model.load_state_dict(state)


def _user_model(spec: str) -> nn.Module:
    """`module:callable` imported from the working directory, called with no arguments."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise ParameterError(f"--model takes MODULE:CALLABLE (e.g. mynet:build), got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ParameterError(f"--model {spec}: cannot import {module_name} from {os.getcwd()}: "
                             f"{type(exc).__name__}: {exc}") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ParameterError(f"--model {spec}: {module_name} has no callable {name}")
    try:
        model = factory()
    except Exception as exc:
        raise ParameterError(f"--model {spec}: {name}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ParameterError(f"--model {spec}: {name}() returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _model(args, dataset: data.Dataset, state: dict, mean, std, options: dict) -> tuple[nn.Module, dict]:
    """The model with its weights, and what it is in words."""
    if args.arch is not None:
        try:
            model = models.build(args.arch, dataset.num_classes, dataset.in_channels, mean=mean, std=std,
                                 image_size=dataset.image_size, width=args.width, options=options)
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"--arch {args.arch}: {exc}") from None
        what = f"{args.arch}" + (f" (width {args.width})" if args.width else "")
        # the whole built model's state dict (its Normalize first, as `models.build` puts it) or the bare network's
        whole = "0.mean" in state
        if whole and mean is not None:
            stored = (state.get("0.mean"), state.get("0.std"))
            if any(s is None or not torch.allclose(s.flatten(), torch.tensor(v)) for s, v in zip(stored, (mean, std))):
                raise ParameterError(f"--weights {args.weights} carry their own normalization (mean "
                                     f"{_listed(stored[0])}, std {_listed(stored[1])}), not --mean/--std's; drop "
                                     "--mean and --std")
        _fit_weights(model if whole else model[1], state, args.weights, what)
        normalization = "from the weights" if whole else "none" if mean is None else "--mean/--std"
    else:
        model = _user_model(args.model)
        what = f"the model of {args.model}"
        _fit_weights(model, state, args.weights, what)
        if mean is not None:
            model = nn.Sequential(models.Normalize(mean, std), model)
        normalization = "inside the model" if mean is None else "--mean/--std, in front of the model"
    described = {"model": what, "weights": str(args.weights), "weights_sha256": data._sha256(args.weights),
                 "parameters": sum(p.numel() for p in model.parameters()), "normalization": normalization}
    return model, described


def _listed(t) -> str:
    return "none" if t is None else ",".join(f"{v:g}" for v in t.flatten().tolist())


def _check_model(model: nn.Module, dataset: data.Dataset, x_u8: torch.Tensor, y: torch.Tensor,
                 device: torch.device) -> None:
    """(batch, classes) logits, and [0, 1] pixels expected: the model is refused if another input
    convention (0-255, [-1, 1], standardized) classifies far more of the images right."""
    x, y = data.to_float(x_u8.to(device)), y.to(device)
    shape = (len(y), dataset.num_classes)
    with eval_mode(model), autocast(device, "fp32"), torch.no_grad():
        try:
            out = model(x)
        except Exception as exc:
            raise ParameterError(f"the model fails on {dataset.display_name} images (shape {tuple(x.shape)}): "
                                 f"{type(exc).__name__}: {exc}") from None
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ParameterError(f"the model's output for a batch of {len(y)} images is {got}; the audit needs "
                                 f"(batch, classes) logits, here {shape}")
        train = data.to_float(dataset.x_train[:5000]).double()
        mean = train.mean(dim=(0, 2, 3)).float().view(1, -1, 1, 1).to(device)
        std = train.std(dim=(0, 2, 3)).float().view(1, -1, 1, 1).to(device)
        conventions = {"0-255 pixels": x * 255, "[-1, 1] pixels": 2 * x - 1,
                       "pixels standardized by the dataset's mean and std": (x - mean) / std}
        unit = (out.argmax(1) == y).float().mean().item()
        scores = {name: (model(v).argmax(1) == y).float().mean().item() for name, v in conventions.items()}
    name, best = max(scores.items(), key=lambda kv: kv[1])
    if best - unit > TOLERANCE["input_range"]:
        raise ParameterError(f"the model expects inputs outside [0, 1]: it classifies {unit:.0%} of {len(y)} test "
                             f"images right on [0, 1] pixels but {best:.0%} on {name}; attacks work on [0, 1] "
                             "pixels, so put the scaling inside the model (or give --mean/--std)")


def prepare(args) -> Audit:
    """The audit the command line asks for, every argument checked before any work (see the module
    docstring); each problem is one ParameterError."""
    if args.dataset not in DATASETS:
        raise ParameterError(f"unknown dataset {args.dataset!r}; the audit knows {', '.join(DATASETS)} "
                             "(cifar10-jpeg: the book's CIFAR-10 JPEG q75 copy)")
    if args.arch is not None and args.arch not in models.ARCHITECTURES:
        raise ParameterError(f"unknown architecture {args.arch!r}; known: {', '.join(sorted(models.ARCHITECTURES))} "
                             "(or --model MODULE:CALLABLE for your own)")
    if args.arch is None and (args.width is not None or args.option):
        raise ParameterError("--width and --option set an --arch's architecture; your --model builds its own")
    if args.width is not None and args.width < 1:
        raise ParameterError(f"--width must be a positive number of channels, got {args.width}")
    if args.norm not in NORMS:
        raise ParameterError(f"--norm takes {' or '.join(NORMS)}, got {args.norm!r}")
    eps = parse_eps(args.eps)
    if not eps > 0:
        raise ParameterError(f"--eps {args.eps} is out of range: it must be above 0")
    if args.norm == "linf" and eps > 1:
        raise ParameterError(f"--eps {args.eps} is out of range for linf: at most 1 (pixels are in [0, 1]), "
                             "e.g. 8/255 or 0.3")
    seeds = _seeds(args.seeds)
    options = _options(args.option)
    if args.n is not None and args.n < 1:
        raise ParameterError(f"--n must be a positive number of test images, got {args.n}")
    if args.test_seed is not None and args.test_seed < 0:
        raise ParameterError(f"--test-seed must be a seed (0 or more), got {args.test_seed}")
    if args.budget is not None and not args.budget > 0:
        raise ParameterError(f"--budget must be a positive number of seconds, got {args.budget:g}")
    if (args.mean is None) != (args.std is None):
        raise ParameterError("--mean and --std go together: give both or neither")
    output = _output(args.output)
    state = load_state_dict(args.weights)
    dataset = data.load(args.dataset, args.data_root)
    dims = dataset.in_channels * dataset.image_size ** 2
    if args.norm == "l2" and eps > largest_eps("l2", dims):
        raise ParameterError(f"--eps {args.eps} is out of range for l2 on {dataset.display_name}: at most "
                             f"{largest_eps('l2', dims):.4g}, the diagonal of the [0, 1] pixel cube")
    total = len(dataset.y_test)
    if args.n is not None and args.n > total:
        raise ParameterError(f"--n {args.n} is more than the {total} test images of {dataset.display_name}")
    n = args.n or min(DEFAULT_N, total)
    mean = _floats(args.mean, "--mean", dataset.in_channels)
    std = _floats(args.std, "--std", dataset.in_channels)
    if std is not None and min(std) <= 0:
        raise ParameterError(f"--std must be positive, got {args.std}")
    model, described = _model(args, dataset, state, mean, std, options)
    arguments = {"arch": args.arch, "width": args.width, "options": options, "model": args.model,
                 "weights": str(args.weights), "dataset": args.dataset, "mean": mean, "std": std, "norm": args.norm,
                 "eps": args.eps, "n": n, "test_seed": args.test_seed, "seeds": list(seeds), "budget": args.budget}
    audit = of_model(model, described, dataset, norm=args.norm, eps_text=args.eps, n=n, test_seed=args.test_seed,
                     seeds=seeds, budget=args.budget, output=output, arguments=arguments)
    writable(output, "output folder")
    return audit


def of_model(model: nn.Module, described: dict, dataset: data.Dataset, *, norm: str, eps_text: str, n: int,
             test_seed: int | None = None, seeds=(0,), budget: float | None = None, output: Path | None = None,
             arguments: dict | None = None) -> Audit:
    """An audit of a model already built with its weights (the command line's `prepare` ends here; a
    page of the book starts here): on the first `n` test images, or, with `test_seed`, on the `n`
    that the book's records draw with that seed (`Dataset.subset`), so that a chapter's numbers can
    be reproduced on its own images. The model is checked as `prepare` checks it."""
    if test_seed is None:
        x, y, images = dataset.x_test[:n], dataset.y_test[:n], f"the first {n}"
    else:
        drawn = dataset.subset(n_test=n, seed=test_seed)
        x, y, images = drawn.x_test, drawn.y_test, f"{n} drawn with seed {test_seed}, as the book's records draw them"
    device = default_device()
    model.to(device)
    _check_model(model, dataset, x[:256], y[:256], device)
    return Audit(model, described, dataset, x, y, norm, parse_eps(eps_text), eps_text.strip(), tuple(seeds), budget,
                 output, device, arguments or {}, images)


# ----------------------------------------------------------------------------------------
# The attacks
# ----------------------------------------------------------------------------------------

AUTOATTACK = {name: p.default for name, p in inspect.signature(autoattack).parameters.items()
              if p.default is not inspect.Parameter.empty}


def suite(norm: str, eps: float, randomized: bool, dims: int) -> list[Attack]:
    """The audit's measurements in the order they run: the attacks at `eps`, then the eps sweep."""
    alpha = round(2.5 * eps / PGD_STEPS, 10)  # Madry et al.'s step: the ball's diameter and a quarter again
    strong = {"eps": eps, "alpha": alpha, "steps": PGD_STEPS, "restarts": PGD_RESTARTS, "norm": norm}
    if norm == "linf":
        one_step = ("FGSM", "fgsm", {"eps": eps})
    else:  # FGSM is L-inf's; its L2 counterpart is one normalized-gradient step of length eps
        one_step = ("FGM (L2, one step)", "pgd", {"eps": eps, "alpha": eps, "steps": 1, "norm": "l2",
                                                  "random_start": False})
    apgd = {"eps": eps, "steps": APGD_STEPS, "loss": "ce", "norm": NORMS[norm]}
    attacks = [Attack("clean", "clean", "clean", {}, randomized),
               Attack("fgsm", one_step[0], one_step[1], one_step[2], randomized),
               Attack("pgd", f"PGD-{PGD_STEPS}, {PGD_RESTARTS} restarts, best iterate", "pgd", strong, True),
               Attack("apgd-ce", f"APGD-CE-{APGD_STEPS}", "apgd", apgd, randomized)]
    if randomized:
        attacks += [Attack(f"{a.key}-eot", f"{a.label}, EOT {EOT}", a.attack, {**a.params, "eot": EOT}, True)
                    for a in attacks[1:]]
    aa = {"eps": eps, "norm": NORMS[norm], "version": "rand" if randomized else "standard"}
    attacks.append(Attack("autoattack", autoattack_label(**aa), "autoattack", aa, randomized))
    surrogate = f"{SURROGATE['arch']} (width {SURROGATE['width']}, {SURROGATE['epochs']} epochs on at most " \
                f"{SURROGATE['train_images']} training images)"
    attacks.append(Attack("transfer", f"transfer: PGD-{PGD_STEPS} on a surrogate {surrogate}", "transfer",
                          {"eps": eps, "alpha": alpha, "steps": PGD_STEPS, "norm": norm}, True))
    large = largest_eps(norm, dims)
    for e in sorted({round(f * eps, 10) for f in SWEEP_FACTORS if f * eps < large} | {large}):
        a = round(2.5 * e / PGD_STEPS, 10)
        attacks.append(Attack(f"eps_sweep:{e:g}", f"PGD-{PGD_STEPS} at eps {e:g}", "pgd",
                              {"eps": e, "alpha": a, "steps": PGD_STEPS, "norm": norm}, True, sweep_eps=e))
    return attacks


@dataclass(frozen=True)
class Speed:
    """What an input gradient costs here: seconds per call (Python, kernel launches), plus seconds per
    image in it. Small models on a CPU spend most of an attack in the first."""
    call: float
    image: float

    def seconds(self, calls: float, images: float) -> float:
        return calls * self.call + images * self.image


def measure_speed(model: nn.Module, x_u8: torch.Tensor, y: torch.Tensor, device: torch.device) -> Speed:
    """The `Speed` of input gradients of `model`, timed on 1 image and on up to 64 (each the second of
    two calls: the first warms up)."""
    def timed(k):
        x, yk = data.to_float(x_u8[:k].to(device)), y[:k].to(device)
        for _ in range(2):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            input_gradient(model, x, yk, LOSSES["ce"])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        return time.perf_counter() - started

    k = min(64, len(y))
    one, many = timed(1), timed(k)
    image = max(many - one, 0.0) / (k - 1) if k > 1 else 0.0
    return Speed(max(one - image, 0.0), image)


def estimate(a: Attack, n: int, robust: int, randomized: bool, speed: Speed, surrogate: Speed) -> float:
    """Seconds `a` should take once on `n` images of which `robust` are still robust so far: PGD's
    early exit and AutoAttack's later components work on those alone. In input gradients; a forward
    pass counts `FORWARD`, a FAB step two, a Square query two forward passes."""
    p = a.params
    eot = p.get("eot", 1)
    batches = math.ceil(n / BATCH)
    if a.attack == "clean":
        return FORWARD * speed.seconds(batches, n)
    if a.attack == "fgsm":
        return eot * speed.seconds(batches, n)
    if a.attack == "pgd":
        each = p["steps"] * p.get("restarts", 1) * eot
        if randomized:  # no early exit: a randomized model's images are attacked together
            return speed.seconds(batches * each, n * each)
        return speed.seconds(batches * (each if robust else eot), n * eot + robust * (each - eot))
    if a.attack == "apgd":
        return speed.seconds(batches * p["steps"] * eot, n * p["steps"] * eot)
    if a.attack == "autoattack":
        steps, targets = AUTOATTACK["apgd_steps"], AUTOATTACK["targets"]
        if p["version"] == "rand":
            return speed.seconds(2 * batches * steps * EOT, (n + robust) * steps * EOT)
        later = AUTOATTACK["apgdt_steps"] * targets + 2 * AUTOATTACK["fab_steps"] * targets \
            + 2 * FORWARD * AUTOATTACK["square_queries"]
        return speed.seconds(batches * steps, n * steps) + (speed.seconds(later, robust * later) if robust else 0.0)
    training = SURROGATE["epochs"] * SURROGATE["train_images"]
    return surrogate.seconds(training / SURROGATE["batch_size"] + batches * p["steps"], training + n * p["steps"]) \
        + FORWARD * speed.seconds(batches, n)


def _surrogate(dataset: data.Dataset, device: torch.device, train: bool = True) -> nn.Module:
    """The surrogate of `SURROGATE` (trained, unless `train` is False: for timing)."""
    from .train import TrainConfig, fit

    subset = dataset.subset(n_train=SURROGATE["train_images"], n_test=0, seed=SURROGATE["seed"])
    mean, std = subset.channel_stats()
    torch.manual_seed(SURROGATE["seed"])
    model = models.build(SURROGATE["arch"], dataset.num_classes, dataset.in_channels, mean=mean, std=std,
                         image_size=dataset.image_size, width=SURROGATE["width"]).to(device)
    if train:
        fit(model, subset, TrainConfig(epochs=SURROGATE["epochs"], batch_size=SURROGATE["batch_size"],
                                       lr=SURROGATE["lr"], schedule=SURROGATE["schedule"], seed=SURROGATE["seed"]),
            device=device, progress=False)
    return model.eval()


def _correct(model, x_u8, y, a: Attack, seed: int, device, deadline: float | None, source=None):
    """Per image, whether the model classifies it right after `a` under `seed` (the clean image for
    "clean"); None when the deadline passed before the last batch."""
    if a.attack == "clean":
        attack = None
    elif a.attack == "transfer":
        # attacks.transfer is PGD on a source model in L-inf; the same for either norm here
        def attack(_, xb, yb, **params):
            return pgd(source, xb, yb, **params)
    else:
        attack = ATTACKS[a.attack]
    torch.manual_seed(seed)
    out = []
    for start in range(0, len(y), BATCH):
        if deadline is not None and time.perf_counter() > deadline:
            return None
        x, yb = data.to_float(x_u8[start:start + BATCH].to(device)), y[start:start + BATCH].to(device)
        x_adv = x if attack is None else attack(model, x, yb, **a.params)
        with torch.no_grad():
            out.append((model(x_adv).argmax(1) == yb).cpu())
    return torch.cat(out)


def _gradients(model, x_u8, y, device) -> tuple[float, float]:
    """The fractions of images whose loss gradient with respect to the input is all zero, and non-finite."""
    zero = bad = 0
    for start in range(0, len(y), BATCH):
        x, yb = data.to_float(x_u8[start:start + BATCH].to(device)), y[start:start + BATCH].to(device)
        _, _, grad = input_gradient(model, x, yb, LOSSES["ce"])
        grad = grad.flatten(1)
        zero += (grad == 0).all(1).sum().item()
        bad += (~torch.isfinite(grad).all(1)).sum().item()
    return zero / len(y), bad / len(y)


def run(audit: Audit, started: float) -> dict:
    """Every measurement of the audit, within the budget counted from `started` (a perf_counter
    time), and the report's numbers (see `write_report`); progress on stdout, the estimates first."""
    model, device, x, y, n, seeds = audit.model, audit.device, audit.x, audit.y, len(audit.y), audit.seeds
    dims = audit.dataset.in_channels * audit.dataset.image_size ** 2
    deadline = started + audit.budget if audit.budget else None
    flush_denormals(device)
    with eval_mode(model), autocast(device, "fp32"):
        checks = sanity_checks(model, data.to_float(x[:N_IMAGES].to(device)), y[:N_IMAGES].to(device))
        randomized = checks["randomized"]
        attacks = suite(audit.norm, audit.eps, randomized, dims)
        speed = measure_speed(model, x, y, device)
        surrogate = measure_speed(_surrogate(audit.dataset, device, train=False), x, y, device)

        def expected(a, alive):
            return estimate(a, n, alive, randomized, speed, surrogate) * (len(seeds) if a.seeded else 1)

        plan = [(a, expected(a, n)) for a in attacks]
        say(f"advbook audit: {audit.described['model']} on {audit.dataset.display_name}, {audit.images} test images, "
            f"{audit.norm} eps {audit.eps_text}, seeds {','.join(map(str, seeds))}; device {device.type}, an input "
            f"gradient {1e3 * speed.call:.3g} ms a call + {1e3 * speed.image:.3g} ms an image here")
        if randomized:
            say(f"the model is randomized (two forward passes of the same input differ): EOT {EOT} versions added")
        say(f"estimated at most {sum(e for _, e in plan):.0f} s: "
            + ", ".join(f"{a.key} {e:.0f} s" for a, e in plan) + (f"; budget {audit.budget:g} s" if deadline else ""))
        gradients = _gradients(model, x, y, device)

        robust, took, estimated, skipped = {}, {}, {}, []
        worst = None  # per image: right under every attack so far, under every seed
        source = None
        for i, a in enumerate(attacks, 1):
            step = f"[{i}/{len(attacks)}] {a.label}"
            estimated[a.key] = guess = expected(a, n if worst is None else int(worst.sum()))
            left = None if deadline is None else deadline - time.perf_counter()
            if a.key != "clean" and left is not None and guess > left:  # clean always runs: it scores the rest
                skipped.append({"key": a.key, "name": a.label,
                                "reason": f"estimated {guess:.0f} s with {max(left, 0):.0f} s of the budget left"})
                say(f"{step}: skipped ({skipped[-1]['reason']})")
                continue
            started_attack = time.perf_counter()
            if a.attack == "transfer" and source is None:
                source = _surrogate(audit.dataset, device)
            per_seed = {}
            for seed in (seeds if a.seeded else seeds[:1]):
                per_seed[seed] = _correct(model, x, y, a, seed, device, None if a.key == "clean" else deadline, source)
                if per_seed[seed] is None:
                    break
            if any(v is None for v in per_seed.values()):
                skipped.append({"key": a.key, "name": a.label, "reason": "stopped when the budget ran out"})
                say(f"{step}: stopped, the budget ran out")
                continue
            per_seed = {s: per_seed[s if a.seeded else seeds[0]] for s in seeds}  # one run serves every seed
            clean = per_seed if a.key == "clean" else robust["clean"]
            robust[a.key] = {s: clean[s] & per_seed[s] for s in seeds}
            took[a.key] = time.perf_counter() - started_attack
            if a.sweep_eps is None:
                every_seed = torch.stack(list(robust[a.key].values())).all(0)
                worst = every_seed if worst is None else worst & every_seed
            say(f"{step}: {_pct(_mean(robust[a.key]))} ({took[a.key]:.1f} s, estimated {guess:.0f} s)")
    report = _report(audit, attacks, robust, worst, took, estimated, skipped, checks, gradients, dims)
    report["wall_seconds"] = time.perf_counter() - started
    return report


def say(line: str) -> None:
    print(line, flush=True)


def _fraction(correct: torch.Tensor) -> float:
    return int(correct.sum()) / len(correct)  # exact: a float32 mean would print 0.97 as 0.9700000286


def _bits(correct: torch.Tensor) -> str:
    """Per image, in the order audited: 1 classified right, 0 fooled (or wrong already)."""
    return "".join("1" if c else "0" for c in correct.tolist())


def _mean(per_seed: dict) -> float:
    return sum(map(_fraction, per_seed.values())) / len(per_seed)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


# ----------------------------------------------------------------------------------------
# The checklist and the report
# ----------------------------------------------------------------------------------------

ROLE_NAMES = {"clean": "clean", "fgsm": "FGSM", "pgd": "PGD", "apgd": "APGD-CE", "autoattack": "AutoAttack"}
# masking.checklist's checks the audit shows: what each checks, and the roles whose numbers it compares
MASKING_LINES = {
    "robust <= clean": ("no attack leaves more images classified right than the clean evaluation (by construction: "
                        "an image counts only if its clean version is right too)", ("clean", "fgsm", "pgd", "apgd",
                                                                                    "autoattack")),
    "eps sweep reaches ~0": (f"PGD's accuracy at the largest eps, where every image can become any other, is at most "
                             f"{masking.TOLERANCE['largest_eps']:g}%", ()),
    "AutoAttack <= PGD": ("AutoAttack is not above PGD on the same images", ("autoattack", "pgd")),
    f"PGD <= AutoAttack + {masking.TOLERANCE['pgd_over_autoattack']:g}": (
        f"PGD is not more than {masking.TOLERANCE['pgd_over_autoattack']:g} points above AutoAttack (a PGD far "
        "weaker than AutoAttack overstates robustness)", ("pgd", "autoattack")),
    "AutoAttack <= APGD-CE": ("AutoAttack, which starts with APGD-CE, is not above it", ("autoattack", "apgd")),
    "PGD <= FGSM": (f"multi-step PGD is not more than {masking.TOLERANCE['pgd_over_fgsm']:g} point above one-step "
                    "FGSM", ("pgd", "fgsm")),
}


def _checklist(audit, labels, accuracy, sweep, roles, checks, gradients, large) -> list[dict]:
    """Each check: its name, what it checked, what it saw and whether it passed (None: not made,
    an attack it needs was skipped)."""
    record = {"metrics": {**accuracy, "eps_sweep": {f"{e:g}": v for e, v in sweep.items()}},
              # every number was measured on the same images under the same seeds
              "evaluations": {key: {"spec": {"seed": audit.seeds}, "result": {"n": len(audit.y), "checks": checks}}
                              for key in [*accuracy, *(f"eps_sweep:{e:g}" for e in sweep)]},
              "config": {"variant": audit.described["model"], "train": {"seed": None}}}
    found = masking.checklist(record, {**roles, "eps_sweep": "eps_sweep"})

    def saw(role_names):
        return "; ".join(f"{ROLE_NAMES[r]}{' (EOT)' if roles[r].endswith('-eot') else ''} "
                         f"{_pct(accuracy.get(roles[r]))}" for r in role_names)

    def missing(role_names):
        absent = [labels[roles[r]] for r in role_names if roles[r] not in accuracy]
        return f"not checked: {', '.join(absent)} skipped" if absent else None

    lines = []
    for name, (checked, role_names) in MASKING_LINES.items():
        passed = found.get(name)
        if name == "eps sweep reaches ~0":
            passed = passed if large in sweep else None  # masking reads the largest point measured
            seen = f"{_pct(sweep.get(large))} at eps {large:g}" if large in sweep else \
                f"not checked: PGD at eps {large:g} skipped"
        elif name == "robust <= clean":
            seen = missing(("clean",)) or saw([r for r in role_names if roles[r] in accuracy])
        else:
            seen = missing(role_names) or saw(role_names)
        lines.append({"name": name, "checked": checked, "saw": seen,
                      "passed": passed if isinstance(passed, bool) else None})
    points = [(0.0, accuracy["clean"])] + sorted(sweep.items())
    rise = max((b - a for (_, a), (_, b) in zip(points, points[1:])), default=0.0)
    lines.insert(1, {"name": "accuracy falls as eps grows",
                     "checked": f"PGD's accuracy never rises by more than {TOLERANCE['sweep_rise']:g} point as eps "
                                "grows (eps 0: clean)",
                     "saw": ", ".join(f"eps {e:g}: {_pct(v)}" for e, v in points) if len(points) > 1 else
                     "not checked: every sweep point skipped",
                     "passed": bool(100 * rise <= TOLERANCE["sweep_rise"]) if len(points) > 1 else None})
    transfer, white = accuracy.get("transfer"), accuracy.get(roles["pgd"])
    lines.append({"name": "transfer weaker than white-box",
                  "checked": f"PGD crafted on a surrogate fools at most {TOLERANCE['transfer']:g} point more images "
                             "than PGD on the model itself",
                  "saw": missing(("pgd",)) or ("not checked: transfer skipped" if transfer is None else
                                              f"transfer {_pct(transfer)}; PGD {_pct(white)}"),
                  "passed": None if transfer is None or white is None else
                  bool(transfer >= white - TOLERANCE["transfer"] / 100)})
    zero, non_finite = gradients
    lines.append({"name": "gradients not zero or NaN",
                  "checked": "the loss's gradient with respect to the input is neither all zero nor non-finite on "
                             f"more than {TOLERANCE['bad_gradients']:.0%} of the images",
                  "saw": f"all zero on {zero:.0%} and non-finite on {non_finite:.0%} of the {len(audit.y)} images",
                  "passed": bool(zero + non_finite <= TOLERANCE["bad_gradients"])})
    return lines


def _versions() -> dict:
    import numpy
    import torchvision

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {"advbook": installed("advbook"), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "torchattacks": installed("torchattacks"), "numpy": numpy.__version__, "python": sys.version.split()[0]}


def _report(audit, attacks, robust, worst, seconds, estimated, skipped, checks, gradients, dims) -> dict:
    """report.json's content: every number of the run, the checklist, and where and how it ran."""
    from .store import environment

    labels = {a.key: a.label for a in attacks}
    seeds = audit.seeds
    accuracy = {a.key: _mean(robust[a.key]) for a in attacks if a.key in robust and a.sweep_eps is None}
    sweep = {a.sweep_eps: _mean(robust[a.key]) for a in attacks if a.key in robust and a.sweep_eps is not None}
    randomized = checks["randomized"]
    roles = {"clean": "clean", "fgsm": "fgsm", "pgd": "pgd", "apgd": "apgd-ce", "autoattack": "autoattack"}
    if randomized:  # the strongest versions of the gradient attacks play their roles
        roles.update(fgsm="fgsm-eot", pgd="pgd-eot", apgd="apgd-ce-eot")
    large = largest_eps(audit.norm, dims)
    notes = list(warnings(checks))
    if randomized:
        notes.append(f"randomized model: the gradient attacks also ran with EOT (each gradient the mean of {EOT} "
                     "draws), AutoAttack in its rand version, and every image was scored on one fresh draw per seed; "
                     "comparisons between attacks carry the noise of those draws")
    where = environment(audit.device)
    return {
        "arguments": audit.arguments,
        "model": {**audit.described, "randomized": randomized},
        "dataset": {"name": audit.dataset.name, "display_name": audit.dataset.display_name,
                    "sha256": audit.dataset.sha256, "split": "test", "images": audit.images},
        "threat_model": {"norm": audit.norm, "eps": audit.eps, "eps_text": audit.eps_text},
        "seeds": list(seeds),
        "attacks": [{"key": a.key, "name": a.label, "attack": a.attack, "params": a.params,
                     "accuracy": accuracy[a.key],
                     "per_seed": {str(s): _fraction(robust[a.key][s]) for s in seeds},
                     "per_image": {str(s): _bits(robust[a.key][s]) for s in seeds},
                     "seeded": a.seeded, "seconds": round(seconds[a.key], 2),
                     "estimated_seconds": round(estimated[a.key], 2)}
                    for a in attacks if a.key in accuracy],
        "worst_case": {"accuracy": _fraction(worst), "n": len(audit.y), "per_image": _bits(worst),
                       "over": [labels[k] for k in accuracy if k != "clean"],
                       "definition": "the fraction of images that every attack above, under every seed, left "
                                     "classified right (with their clean version)"},
        "eps_sweep": {"attack": f"PGD-{PGD_STEPS}, best iterate, 1 restart", "largest_eps": large,
                      "points": [{"eps": e, "accuracy": v} for e, v in sorted(sweep.items())]},
        "skipped": skipped,
        "checklist": _checklist(audit, labels, accuracy, sweep, roles, checks, gradients, large),
        "sanity_checks": checks,
        "notes": notes,
        "versions": _versions(),
        "device": where["device"],
        "commit": where["commit"],
    }


def _figure_png(report: dict) -> str:
    """The accuracy-against-eps plot as a PNG data URI."""
    import matplotlib.pyplot as plt

    from .reporting import curve_figure

    per_seed = {a["key"]: a["per_seed"] for a in report["attacks"]}
    points = [(0.0, [per_seed["clean"][str(s)] for s in report["seeds"]])]
    points += [(p["eps"], [p["accuracy"]]) for p in report["eps_sweep"]["points"]]
    curve = {i: values for i, (_, values) in enumerate(points)}
    fig = curve_figure({f"{report['eps_sweep']['attack']} (eps 0: clean)": curve},
                       f"eps ({report['threat_model']['norm']})", "accuracy (%)",
                       f"{report['model']['model']} on {report['dataset']['display_name']}",
                       xticklabels=[f"{e:.3g}" for e, _ in points])
    eps = report["threat_model"]["eps"]
    at = next((i for i, (e, _) in enumerate(points) if math.isclose(e, eps)), None)
    if at is not None:
        ax = fig.axes[0]
        ax.plot([at], [100 * report["worst_case"]["accuracy"]], marker="*", markersize=12, linestyle="none",
                color="black", label="worst case over the attacks")
        ax.legend(fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _table(header: list[str], rows: list[list[str]], numeric: tuple[int, ...] = ()) -> str:
    """An HTML table of cells already escaped; the `numeric` columns never wrap."""
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='num'>{c}</td>" if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: dict) -> str:
    """report.html: readable offline, nothing fetched (styles inline, the plot a data URI)."""
    e = html.escape
    verdict = {True: '<b class="pass">passed</b>', False: '<b class="fail">FAILED</b>', None: "not checked"}
    attacks = _table(["attack", "parameters", "accuracy", "per seed", "seconds"],
                     [[e(a["name"]), f"<code>{e(json.dumps(a['params']))}</code>", _pct(a["accuracy"]),
                       e(", ".join(f"{s}: {_pct(v)}" for s, v in a["per_seed"].items())), f"{a['seconds']:.1f}"]
                      for a in report["attacks"]], numeric=(2, 3, 4))
    checklist = _table(["check", "what it checked", "what it saw", "result"],
                       [[e(c["name"]), e(c["checked"]), e(c["saw"]), verdict[c["passed"]]]
                        for c in report["checklist"]])
    failed = [c["name"] for c in report["checklist"] if c["passed"] is False]
    summary = (f"<p class='fail'>Signs of gradient masking or of an attack that did not converge: "
               f"{e(', '.join(failed))}. Read the robust accuracy as an upper bound.</p>" if failed else
               "<p class='pass'>No check failed.</p>")
    skipped = "".join(f"<li>{e(s['name'])}: {e(s['reason'])}</li>" for s in report["skipped"])
    notes = "".join(f"<li>{e(n)}</li>" for n in report["notes"])
    m, d, t = report["model"], report["dataset"], report["threat_model"]
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>advbook audit: {e(m['model'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} th, td {{ border: 1px solid #bbb; padding: .3rem .5rem;
vertical-align: top; text-align: left; }} th {{ background: #eee; }} td.num {{ white-space: nowrap; }}
.pass {{ color: #1a7f37; }} .fail {{ color: #b42318; }} code {{ font-size: .85em; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>Robustness audit: {e(m['model'])}</h1>
<p>Weights <code>{e(m['weights'])}</code> (sha256 <code>{e(m['weights_sha256'][:16])}</code>), {m['parameters']:,}
parameters, normalization {e(m['normalization'])}; {e(d['display_name'])}, {e(d['images'])} test images;
threat model {e(t['norm'])}, eps {e(t['eps_text'])} ({t['eps']:.6g});
seeds {e(', '.join(map(str, report['seeds'])))}.</p>
<h2>Accuracy under attack</h2>
<p><b>Worst case over the attacks: {_pct(report['worst_case']['accuracy'])}</b>
({e(report['worst_case']['definition'])}).</p>
{attacks}
{f'<p>Skipped:</p><ul>{skipped}</ul>' if skipped else ''}
{f'<p>Notes:</p><ul>{notes}</ul>' if notes else ''}
<h2>Accuracy against eps</h2>
<img alt="accuracy against eps" src="{_figure_png(report)}">
<h2>Masking checklist</h2>
{summary}
{checklist}
<h2>Provenance</h2>
<p>Device {e(report['device'])}; {e(versions)}; library commit {e(report['commit'])}; wall time
{report['wall_seconds']:.1f} s. Every number is in <code>report.json</code>.</p>
</body></html>
"""


def summary(report: dict) -> str:
    """The command's closing line: the worst case, the checklist's outcome, what was skipped."""
    failed = [c["name"] for c in report["checklist"] if c["passed"] is False]
    unchecked = sum(c["passed"] is None for c in report["checklist"])
    return (f"worst case over {len(report['worst_case']['over'])} attacks: {_pct(report['worst_case']['accuracy'])}; "
            f"checklist: {sum(c['passed'] is True for c in report['checklist'])} passed"
            + (f", failed: {', '.join(failed)}" if failed else ", none failed")
            + (f", {unchecked} not checked (an attack they need was skipped)" if unchecked else "")
            + (f"; skipped: {', '.join(s['name'] for s in report['skipped'])}" if report["skipped"] else ""))


def write_report(report: dict, output: Path) -> list[Path]:
    """report.json and report.html into `output`, each written whole or not at all."""
    text = json.dumps(report, indent=1, default=str)
    page = render_html(report)
    return [write_atomic(output / "report.json", "w", lambda f: f.write(text)),
            write_atomic(output / "report.html", "w", lambda f: f.write(page))]
