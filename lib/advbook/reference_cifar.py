"""FGSM-RS on CIFAR-10, the reference's training loop beside ours (Wong et al. 2020, "Fast is
better than free"), difference by difference, on a CPU: a narrow PreAct ResNet-18 on a subset of
the training images. The recipe of their code (locuslab/fast_adversarial, CIFAR10/):

- `train_fgsm.py`'s defaults: SGD (momentum 0.9, weight decay 5e-4), batch 128, 15 epochs,
  `CyclicLR(base_lr=0, max_lr=0.2, step_size_up=step_size_down=total/2)` stepped after every
  batch: the rate of batch k is 0.2 * k / (total / 2) up to half of training, then back to 0,
  and, CyclicLR's default `cycle_momentum`, the momentum of batch k goes the other way, 0.9 at
  the ends and 0.8 at the peak; FGSM-RS with eps 8/255 and alpha 10/255, the start
  delta ~ U(-eps, eps) clipped so that x + delta is an image before the gradient, the attack's
  forward in train mode (batch norm on the batch's statistics, running statistics updated by
  the attack's pass too); the last, smaller batch kept (DataLoader without drop_last);
  apex amp O2 (fp16 weights, no master weights, static loss scale 1.0);
- `utils.py`: RandomCrop(32, padding 4), RandomHorizontalFlip, normalization by the CIFAR-10
  mean and std (here inside the model, so that attacks work on [0, 1] pixels; a sign step and
  an eps-box in pixels are theirs in normalized units), PGD-50 with 10 restarts of 2/255 in
  eval mode for the final score;
- `preact_resnet.py`: PreAct ResNet-18 whose projection shortcut takes the block's input x, where
  advbook's (Kuang Liu's) takes the pre-activated input relu(bn1(x)).

Arms, per seed from the same initial weights (advbook's `preact-resnet18`, `width` channels in the
first stage), on the same data order and augmentation draws (those of `fit`: shuffling and crops
from its per-epoch generator, the random starts from the reseeded global stream):
`reference`, the reference's loop written out plainly (`reference_loop`, our code following their
algorithm, not calling advbook's attacks or training loop), in fp32; `ours`, `advbook.train.fit`
with defense `fgsm-rs` (clip_start) and the same settings, whose schedule peaks at 2/5 and whose
momentum stays 0.9. Each further arm switches one difference of the reference loop (ARMS):
the schedule's peak at 2/5, a fixed momentum, the batch size 512 of the primer's `fast`
profile, drop_last, their shortcut; `ours-fast` is fit with the `fast` profile's batch 512 and
drop_last (fp32: bf16 autocast and their fp16 are not tried on this CPU).
Both are scored by `reference_runs.eval_specs`: clean accuracy on the whole test set, FGSM and
PGD-50-10 on the first `n_eval` test images.

    OMP_NUM_THREADS=1 python -m advbook.reference_cifar --output data/reference/reference-fgsm-rs-cifar10.json

The record is written after every run, atomically; `--resume` completes an interrupted one.
"""
from __future__ import annotations

import dataclasses
import math
import types

import torch
import torch.nn.functional as F
from torch import nn

from . import data as data_mod
from . import models, paths, reference_runs
from .device import flush_denormals
from .models.resnets import PreActBlock
from .train import TrainConfig, _seed_epoch, fit

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # utils.py's constants
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
SETTINGS = {"epochs": 10, "batch_size": 128, "lr_max": 0.2, "momentum": 0.9, "weight_decay": 5e-4,
            "eps": 8 / 255, "alpha": 10 / 255, "width": 8, "n_train": 5000, "n_eval": 500,
            "eval_steps": 50, "eval_alpha": 2 / 255, "eval_restarts": 10}
# the reference loop's switches; each ablation arm turns exactly one toward ours
REFERENCE = {"peak": 0.5, "cycle_momentum": True, "batch_size": None, "drop_last": False, "their_shortcut": False}
ARMS = {"reference": {}, "ours": None, "ours-fast": None,
        "reference-peak-2/5": {"peak": 0.4},
        "reference-fixed-momentum": {"cycle_momentum": False},
        "reference-batch-512": {"batch_size": 512},
        "reference-drop-last": {"drop_last": True},
        "reference-their-shortcut": {"their_shortcut": True}}
DEFAULT_ARMS = ("reference", "ours")
ARM_LABELS = {"reference": "Wong et al.'s loop, fp32", "ours": "advbook.train.fit, batch 128",
              "ours-fast": "fit, the fast profile's batch 512 and drop_last (fp32)",
              "reference-peak-2/5": "their loop, rate peaking at 2/5 (fit's)",
              "reference-fixed-momentum": "their loop, momentum fixed at 0.9 (fit's)",
              "reference-batch-512": "their loop, batch 512 (the fast profile's)",
              "reference-drop-last": "their loop, last partial batch dropped",
              "reference-their-shortcut": "their loop, preact_resnet.py's shortcut from the block's input"}
MOMENTUM_RANGE = (0.8, 0.9)  # CyclicLR's base_momentum and max_momentum


def cyclic(k: int, total: float, lr_max: float, peak: float = 0.5, cycle_momentum: bool = True,
           momentum: float = 0.9) -> tuple[float, float]:
    """The learning rate and momentum of batch k (from 0) of `total`, as torch's CyclicLR
    (triangular, base_lr 0, step_size_up = peak * total) gives them after k scheduler steps."""
    x = k / total
    scale = x / peak if x <= peak else (x - 1) / (peak - 1)
    low, high = MOMENTUM_RANGE
    return lr_max * scale, (high - (high - low) * scale) if cycle_momentum else momentum


def their_shortcut(model: nn.Module) -> nn.Module:
    """`model`'s PreAct blocks wired as preact_resnet.py's PreActBlock: the projection shortcut
    takes the block's input rather than relu(bn1(input)); the weights stay as they are."""
    def forward(block, x):
        out = block.conv1(block.relu1(block.bn1(x)))
        return block.conv2(block.relu2(block.bn2(out))) + block.shortcut(x)
    for block in model.modules():
        if isinstance(block, PreActBlock) and block.shortcut is not None:
            block.forward = types.MethodType(forward, block)
    return model


def reference_start(x: torch.Tensor, eps: float) -> torch.Tensor:
    """delta ~ U(-eps, eps), clamped so that x + delta lies in [0, 1] (train_fgsm.py's start)."""
    delta = torch.empty_like(x).uniform_(-eps, eps)
    return torch.max(torch.min(delta, 1 - x), -x)


def reference_loop(model: nn.Module, dataset: data_mod.Dataset, *, epochs: int, batch_size: int, lr_max: float,
                   momentum: float, weight_decay: float, eps: float, alpha: float, seed: int,
                   peak: float = 0.5, cycle_momentum: bool = True, drop_last: bool = False) -> list[dict]:
    """FGSM-RS training as CIFAR10/train_fgsm.py does it (fp32), on `fit`'s data order and
    augmentation draws; returns per-epoch loss and accuracy. `peak`, `cycle_momentum`,
    `drop_last`: the switches of the ablation arms."""
    flush_denormals(torch.device("cpu"))
    n = len(dataset.y_train)
    batches = n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)
    total = epochs * batches
    optimizer = torch.optim.SGD(model.parameters(), lr=lr_max, momentum=momentum, weight_decay=weight_decay)
    history = []
    model.train()  # the attack's forward too
    for epoch in range(epochs):
        generator = _seed_epoch(seed, epoch, torch.device("cpu"))
        order = torch.randperm(n, generator=generator)
        loss_sum = correct = seen = 0.0
        for i in range(batches):
            lr, beta = cyclic(epoch * batches + i, total, lr_max, peak, cycle_momentum, momentum)
            optimizer.param_groups[0].update(lr=lr, momentum=beta)
            idx = order[i * batch_size:(i + 1) * batch_size]
            x = data_mod.augment_crop_flip(data_mod.to_float(dataset.x_train[idx]), generator=generator)
            y = dataset.y_train[idx]
            delta = reference_start(x, eps).requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(x + delta), y), delta)
            delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
            delta = torch.max(torch.min(delta, 1 - x), -x)
            batch_loss, batch_correct = reference_runs.train_step(model, optimizer, x + delta, y)
            loss_sum, correct, seen = loss_sum + batch_loss, correct + batch_correct, seen + len(y)
        history.append({"epoch": epoch + 1, "lr_end": lr, "momentum_end": beta, "train_loss": loss_sum / seen,
                        "train_acc": correct / seen})
    model.eval()
    return history


def train_ours(model: nn.Module, dataset: data_mod.Dataset, *, epochs: int, batch_size: int, lr_max: float,
               momentum: float, weight_decay: float, eps: float, alpha: float, seed: int,
               drop_last: bool = False) -> tuple[list[dict], dict]:
    cfg = TrainConfig(defense="fgsm-rs", defense_params={"eps": eps, "alpha": alpha, "clip_start": True},
                      epochs=epochs, batch_size=batch_size, optimizer="sgd", lr=lr_max, momentum=momentum,
                      weight_decay=weight_decay, schedule="cyclic", augment=True, seed=seed, drop_last=drop_last)
    history = fit(model, dataset, cfg, device=torch.device("cpu"), progress=False)
    return history, dataclasses.asdict(cfg)


def narrow_preact_resnet18(width: int) -> nn.Module:
    return models.build("preact-resnet18", 10, 3, mean=CIFAR10_MEAN, std=CIFAR10_STD, width=width)


def run_one(arm: str, seed: int, dataset: data_mod.Dataset, s: dict) -> dict:
    torch.manual_seed(seed)
    model = narrow_preact_resnet18(s["width"])
    kwargs = {k: s[k] for k in ("epochs", "batch_size", "lr_max", "momentum", "weight_decay", "eps", "alpha")}
    switches = ARMS[arm]
    if switches is None:
        fast = {"batch_size": 512, "drop_last": True} if arm == "ours-fast" else {}
        history, train_config, seconds = reference_runs.timed(
            lambda: train_ours(model, dataset, seed=seed, **{**kwargs, **fast}))
    else:
        switches = {**REFERENCE, **switches}
        if switches.pop("their_shortcut"):
            their_shortcut(model)
        kwargs["batch_size"] = switches.pop("batch_size") or kwargs["batch_size"]
        history, train_config, seconds = reference_runs.timed(
            lambda: (reference_loop(model, dataset, seed=seed, **kwargs, **switches), None))
    return reference_runs.scored_run(arm, seed, model, dataset, s, history, seconds, train_config)


def load(s: dict, root: str | None) -> data_mod.Dataset:
    """The JPEG copy of CIFAR-10, its first `n_train` training images (the file is stored
    shuffled: a random sample of every class) and the whole test set."""
    dataset = data_mod.load("cifar10-jpeg", root)
    return dataclasses.replace(dataset, x_train=dataset.x_train[:s["n_train"]], y_train=dataset.y_train[:s["n_train"]])


def main(argv=None) -> None:
    reference_runs.main(
        argv, prog="python -m advbook.reference_cifar", doc=__doc__,
        default_output=paths.REFERENCE / "reference-fgsm-rs-cifar10.json", settings=SETTINGS, arms=ARMS,
        default_arms=DEFAULT_ARMS, options=("epochs", "n_eval", "width", "n_train"), load=load, run_one=run_one,
        about={"what": "FGSM-RS on CIFAR-10 (a narrow PreAct ResNet-18 on a subset): the reference's "
                       "training loop vs advbook.fit, and arms that each switch one difference",
               "reference": "locuslab/fast_adversarial CIFAR10/train_fgsm.py, utils.py, preact_resnet.py",
               "untested": "fp16 (their apex amp O2, no master weights, loss scale 1.0) and bf16 autocast "
                           "(our fast profile): every arm here trains in fp32"})


if __name__ == "__main__":
    main()
