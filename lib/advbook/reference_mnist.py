"""FGSM-RS on MNIST, the reference's training loop beside ours (Wong et al. 2020, "Fast is better
than free"), with the recipe of their code (locuslab/fast_adversarial, MNIST/):

- the network of `mnist_net.py`: conv 1->16 4x4 stride 2 pad 1, ReLU, conv 16->32 4x4 stride 2
  pad 1, ReLU, flatten, fc 32*7*7->100, ReLU, fc 100->10 (no input normalization);
- `train_mnist.py`'s defaults: Adam (no weight decay), batch 100, 10 epochs, a cyclic learning
  rate from 0 up to 5e-3 at 2/5 of training and back to 0, set before every batch at
  (epoch + (i + 1) / batches); FGSM-RS with eps 0.3, alpha 0.375, the gradient at the unclipped
  start x + delta, delta ~ U(-eps, eps), the step's result clipped into the eps-ball and [0, 1];
- `evaluate_mnist.py`'s attack: PGD with 50 steps of 0.01 and 10 restarts at eps 0.3.

Two arms, per seed from the same initial weights: `reference`, the reference's loop written out
plainly (`reference_loop`, our code following their algorithm, not calling advbook's attacks or
training loop), and `ours`, `advbook.train.fit` with the defense `fgsm-rs` and the same settings.
Two more only when asked with --arms: `ours-clip-start` clips the random start into [0, 1]
before the gradient, as the paper's CIFAR-10 code does (the control for that one difference);
`reference-fit-streams` is the reference loop drawing its random numbers as `fit` does (which
tells a difference of algorithm from one of random draws), and `reference-fit-exact` that loop
with `fit`'s arithmetic for the learning rate and Adam too, which computes what `fit` does to
the bit (a test checks it): the two differ only in the rounding of the learning rate.
Both are scored by the same code: clean accuracy on the whole test set, FGSM and PGD-50-10 on
the first `n_eval` test images (our PGD keeps each image's first misclassified iterate over all
restarts: at least as strong as the reference's, which keeps the restart of highest loss).

    OMP_NUM_THREADS=1 python -m advbook.reference_mnist --output data/reference/reference-fgsm-rs-mnist.json

The record (JSON, written after every run, atomically) names the settings, dataset file and
sha256, device, torch version, commit and each run's wall time. `--epochs 1 --seeds 0 --n-eval
100` sizes a run; `--resume` completes an interrupted record (each run names its commit).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import data as data_mod
from . import paths, reference_runs
from .device import flush_denormals
from .train import TrainConfig, _seed_epoch, fit, learning_rate

SETTINGS = {"epochs": 10, "batch_size": 100, "lr_max": 5e-3, "eps": 0.3, "alpha": 0.375, "n_eval": 1000,
            "eval_steps": 50, "eval_alpha": 0.01, "eval_restarts": 10}
ARMS = ("reference", "ours", "ours-clip-start", "reference-fit-streams", "reference-fit-exact")
DEFAULT_ARMS = ("reference", "ours")


def reference_cnn(image_size: int = 28) -> nn.Sequential:
    """The reference's MNIST network (MNIST/mnist_net.py); it takes [0, 1] pixels as they are.
    (`image_size` other than 28 only for tests on smaller digits.)"""
    side = image_size // 4
    return nn.Sequential(
        nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * side * side, 100), nn.ReLU(), nn.Linear(100, 10))


def reference_loop(model: nn.Module, dataset: data_mod.Dataset, *, epochs: int, batch_size: int, lr_max: float,
                   eps: float, alpha: float, seed: int, fit_streams: bool = False,
                   fit_arithmetic: bool = False) -> list[dict]:
    """FGSM-RS training as MNIST/train_mnist.py does it, on the CPU; returns per-epoch loss and accuracy.

    `fit_streams`: the random streams and timing of `advbook.train.fit` instead (reseeded every
    epoch from (seed, epoch), the learning rate of a step taken at its start, denormals flushed),
    the rest unchanged: a diagnostic that tells the algorithm apart from the luck of the draws.
    `fit_arithmetic` (with `fit_streams`): also the arithmetic of `fit`, equal to the reference's
    but for rounding: the learning rate of `train.learning_rate`, Adam's multi-tensor update and
    the attack's gradient taken of the summed rather than the mean loss, so that the loop is
    `fit`'s computation to the bit."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if fit_streams:
        flush_denormals(torch.device("cpu"))
    x_all = data_mod.to_float(dataset.x_train)
    y_all = dataset.y_train
    batches = math.ceil(len(y_all) / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr_max, **({"foreach": True} if fit_arithmetic else {}))
    schedule = TrainConfig(lr=lr_max, schedule="cyclic")
    history = []
    model.train()
    for epoch in range(epochs):
        if fit_streams:
            generator = _seed_epoch(seed, epoch, torch.device("cpu"))
        order = torch.randperm(len(y_all), generator=generator)
        loss_sum = correct = 0.0
        for i in range(batches):
            idx = order[i * batch_size:(i + 1) * batch_size]
            x, y = x_all[idx], y_all[idx]
            if fit_arithmetic:
                lr = learning_rate(schedule, (epoch * batches + i) / (epochs * batches))
            else:
                t = epoch + (i if fit_streams else i + 1) / batches
                lr = float(np.interp(t, [0, epochs * 2 // 5, epochs], [0, lr_max, 0]))
            optimizer.param_groups[0]["lr"] = lr
            # the start is not clipped into [0, 1] before the gradient
            delta = torch.empty_like(x).uniform_(-eps, eps).requires_grad_(True)
            if fit_arithmetic:  # advbook's attacks differentiate the summed loss: the same signs up to rounding
                loss = F.cross_entropy(model(x + delta).float(), y, reduction="none").sum()
            else:
                loss = F.cross_entropy(model(x + delta), y)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
            delta = torch.max(torch.min(1 - x, delta), -x)
            batch_loss, batch_correct = reference_runs.train_step(model, optimizer, (x + delta).clamp(0, 1), y)
            loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
        history.append({"epoch": epoch + 1, "lr_end": lr, "train_loss": loss_sum / len(y_all),
                        "train_acc": correct / len(y_all)})
    model.eval()
    return history


def train_ours(model: nn.Module, dataset: data_mod.Dataset, *, epochs: int, batch_size: int, lr_max: float,
               eps: float, alpha: float, seed: int, clip_start: bool = False) -> tuple[list[dict], dict]:
    params = {"eps": eps, "alpha": alpha, **({"clip_start": True} if clip_start else {})}
    cfg = TrainConfig(defense="fgsm-rs", defense_params=params, epochs=epochs,
                      batch_size=batch_size, optimizer="adam", lr=lr_max, weight_decay=0.0, schedule="cyclic",
                      seed=seed)
    history = fit(model, dataset, cfg, device=torch.device("cpu"), progress=False)
    return history, dataclasses.asdict(cfg)


def run_one(arm: str, seed: int, dataset: data_mod.Dataset, s: dict) -> dict:
    torch.manual_seed(seed)
    model = reference_cnn()
    kwargs = {k: s[k] for k in ("epochs", "batch_size", "lr_max", "eps", "alpha")}
    if arm.startswith("reference"):
        history, train_config, seconds = reference_runs.timed(lambda: (reference_loop(
            model, dataset, seed=seed, fit_streams=arm.startswith("reference-fit"),
            fit_arithmetic=arm == "reference-fit-exact", **kwargs), None))
    else:
        history, train_config, seconds = reference_runs.timed(lambda: train_ours(
            model, dataset, seed=seed, clip_start=arm == "ours-clip-start", **kwargs))
    return reference_runs.scored_run(arm, seed, model, dataset, s, history, seconds, train_config)


def main(argv=None) -> None:
    reference_runs.main(
        argv, prog="python -m advbook.reference_mnist", doc=__doc__,
        default_output=paths.REFERENCE / "reference-fgsm-rs-mnist.json", settings=SETTINGS, arms=ARMS,
        default_arms=DEFAULT_ARMS, options=("epochs", "n_eval"), load=lambda s, root: data_mod.load("mnist", root),
        run_one=run_one,
        about={"what": "FGSM-RS on MNIST: the reference's training loop vs advbook.fit",
               "reference": "locuslab/fast_adversarial MNIST/train_mnist.py, mnist_net.py, evaluate_mnist.py"})


if __name__ == "__main__":
    main()
