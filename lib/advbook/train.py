"""One training loop for every defense.

`fit(model, dataset, config)` trains with SGD or Adam under a learning-rate schedule, a defense
function from `advbook.defenses` turning each batch into a loss, and an optional hook that runs
before every epoch (Kamath et al.'s Algorithm 1 is one). The data stay uint8 tensors on the
training device and are batched by indexing (no DataLoader): on a GPU the whole training set
lives there. Each epoch reseeds the random streams from (seed, epoch), so a run resumed from its
per-epoch checkpoint ends with the same weights as an uninterrupted one.

The GPU fast path is four explicit flags, the defaults of the `fast` and `paper` profiles:
`precision="bf16"` (autocast; fp32 master weights), `channels_last` (NHWC activations for the
tensor cores), `cudnn_benchmark` (the fastest convolution per shape, found once) and
`drop_last` (full batches only, so the shapes never change). Evaluation is always fp32.
"""
from __future__ import annotations

import math
import os
import time
import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from .atomic import save_torch
from . import data as data_mod
from . import defenses
from .attacks import GRADIENTS
from .attacks.gradient import add_queued_gradients
from .device import autocast, default_device, enable_cudnn_autotuning, flush_denormals
from .evaluate import check_spec, evaluate_spec

SCHEDULES = ("constant", "piecewise", "cosine", "cyclic")
OPTIMIZERS = ("sgd", "adam")


@dataclass
class TrainConfig:
    defense: str = "standard"
    defense_params: dict = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"         # "sgd" (momentum, weight decay) or "adam" (betas 0.9, 0.999)
    lr: float = 0.1
    momentum: float = 0.9          # SGD only
    weight_decay: float = 5e-4
    schedule: str = "piecewise"
    augment: bool = False          # random crop (pad 4) and horizontal flip
    seed: int = 0
    precision: str = "fp32"        # "fp32" or "bf16" (autocast; weights stay fp32)
    channels_last: bool = False    # NHWC activations: tensor-core friendly convolutions on a GPU
    cudnn_benchmark: bool = False  # cuDNN autotuning (GPU)
    drop_last: bool = False        # full batches only: fixed shapes for autotuning and compile
    compile: bool = False          # torch.compile the model (measured by `advbook bench`)
    compile_step: bool = False     # torch.compile the step's attack, loss and backward (see compile_step)
    # samples replaced by perturbed copies at the start of every epoch (Kamath et al. 2019):
    # keyword arguments of advbook.defenses.epoch_perturbation.perturb_epoch, or None
    epoch_perturbation: dict | None = None
    replay: int = 1                # each minibatch trained on this many times in a row (Free-AT's m)
    random_erasing: float = 0.0    # probability of random erasing (Zhong et al. 2020), after crop/flip
    # an attack spec (as in advbook.evaluate) scored after every epoch on the validation split
    # (the experiment's `validation` images, held out of training), and whether to end with the
    # weights of the epoch that scored best: early stopping that never looks at the test set
    validation_spec: dict | None = None
    select_best: bool = False

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        for name in ("epochs", "batch_size", "replay"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ValueError(f"random_erasing is a probability, got {self.random_erasing}")
        if self.select_best and not self.validation_spec:
            raise ValueError("select_best needs a validation_spec to select by")
        if self.validation_spec:
            check_spec(self.validation_spec)
        defenses.get(self.defense)


def fast_path(precision: str, channels_last: bool = False) -> dict:
    """The training flags of the GPU fast path (see `advbook.train`), all on with bf16 training;
    in fp32 only `channels_last` where asked (NHWC activations: the same arithmetic up to
    rounding, faster convolutions on a CPU too), so fp32 configurations without it keep their keys."""
    if precision == "bf16":
        return {"precision": "bf16", "channels_last": True, "cudnn_benchmark": True, "drop_last": True}
    return {"channels_last": True} if channels_last else {}


def learning_rate(cfg: TrainConfig, progress: float) -> float:
    """The learning rate at `progress` = (iterations done) / (total iterations), in [0, 1]."""
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "piecewise":  # x0.1 at half and at three quarters of training
        return cfg.lr * (0.1 ** ((progress >= 0.5) + (progress >= 0.75)))
    if cfg.schedule == "cosine":
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * progress))
    # cyclic (Wong et al. 2020, their MNIST code): linear from 0 up to lr at 2/5 of training, back
    # to 0 at the end. Their CIFAR-10 code's CyclicLR peaks at 1/2 and cycles the momentum 0.9-0.8-0.9;
    # side by side on a narrow model either changes the result by about a point (advbook.reference_cifar)
    return cfg.lr * (progress / 0.4 if progress < 0.4 else (1 - progress) / 0.6)


def make_optimizer(cfg: TrainConfig, params, device: torch.device) -> torch.optim.Optimizer:
    # one fused kernel for the whole update on a GPU; one multi-tensor call per step on a CPU
    fused = {"fused": True} if device.type == "cuda" else {"foreach": True}
    # parameters marked `no_weight_decay` (e.g. learned noise scales, which decay would pull to 0)
    # get a group of their own without it
    params = list(params)
    exempt = [p for p in params if getattr(p, "no_weight_decay", False)]
    if exempt:
        params = [{"params": [p for p in params if not getattr(p, "no_weight_decay", False)]},
                  {"params": exempt, "weight_decay": 0.0}]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **fused)


def _seed_epoch(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """Reseed the global streams (dropout, attack random starts) and return this epoch's
    generator for shuffling and augmentation, on the training device: the epoch's randomness
    depends on (seed, epoch) alone, which is what makes resuming exact."""
    torch.manual_seed(seed * 100_003 + epoch)
    return torch.Generator(device=device).manual_seed(seed * 100_003 + epoch)


BeforeEpoch = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Generator], object]


def fit(model: torch.nn.Module, dataset: data_mod.Dataset, cfg: TrainConfig, *,
        checkpoint: str | os.PathLike | None = None, device: torch.device | None = None,
        progress: bool | None = None, stop_after: int | None = None,
        before_epoch: BeforeEpoch | None = None) -> list[dict]:
    """Train `model` in place; returns the per-epoch history (loss, accuracy, lr, seconds, and
    the input-gradient images computed, for cost claims).

    `before_epoch(model, x_train_u8, y_train, generator)`: runs at the start of every epoch and
    may return an object with `apply(idx, x)` and `count` that replaces training samples for the
    epoch; by default, Algorithm 1 of Kamath et al. when `cfg.epoch_perturbation` is set.
    The defense protocol has three options: a defense with `wants_index = True` is also given
    `index=`, the dataset indices of the batch (for per-example state such as a sign memory); a
    DEFENSES entry with `stateful = True` is a factory, called once per run as
    `entry(n_train=..., device=...)`, whose result is the defense for the run (its state is not
    checkpointed: a resumed run starts it afresh); a defense with an `end_epoch()` method is
    called at the end of every epoch and the statistics it returns ({name: number}) enter that
    epoch's history (the loop knows where an epoch ends, drop_last or not).
    `checkpoint`: a file written after every epoch and resumed from if present.
    `stop_after`: stop after this many epochs of this call (to test resumption).
    `progress`: a tqdm bar per epoch; None shows it only on a terminal.
    The model is left in eval mode, ready for evaluation.
    """
    device = device or default_device()
    defense = defenses.get(cfg.defense)
    if getattr(defense, "stateful", False):
        defense = defense(n_train=len(dataset.y_train), device=device)
    wants_index = getattr(defense, "wants_index", False)
    if cfg.validation_spec and dataset.x_val is None:
        raise ValueError("validation_spec needs a validation split: set the experiment's `validation`")
    if before_epoch is None and cfg.epoch_perturbation:
        before_epoch = defenses.epoch_hook(**cfg.epoch_perturbation)
    flush_denormals(device)
    if cfg.cudnn_benchmark:
        enable_cudnn_autotuning(device)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    optimizer = make_optimizer(cfg, model.parameters(), device)
    forward_model = torch.compile(model) if cfg.compile else model  # shares the weights

    def batch_loss(x, y, extra):  # the attack and the training loss
        with autocast(device, cfg.precision):
            return defense(forward_model, x, y, **cfg.defense_params, **extra)

    if cfg.compile_step:
        batch_loss = compile_step(batch_loss, device)
    history: list[dict] = []
    start_epoch = 0
    best = None  # (validation accuracy, epoch, weights) of the best epoch so far, for select_best
    ckpt_path = Path(checkpoint) if checkpoint else None
    if ckpt_path and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        if state["config"] != asdict(cfg):
            raise ValueError(f"checkpoint {ckpt_path} belongs to another configuration")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, start_epoch = state["history"], state["epoch"]
        best = state.get("best")

    x_train = dataset.x_train.to(device)   # uint8 on the device: 4x less memory than float
    y_train = dataset.y_train.to(device)
    n = len(y_train)
    steps_per_epoch = n // cfg.batch_size if cfg.drop_last and n >= cfg.batch_size else math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch * cfg.replay
    epochs_run = 0
    for epoch in range(start_epoch, cfg.epochs):
        if stop_after is not None and epochs_run >= stop_after:
            break
        generator = _seed_epoch(cfg.seed, epoch, device)
        order = torch.randperm(n, generator=generator, device=device)
        started, gradients_before = time.perf_counter(), GRADIENTS.images
        replaced = before_epoch(model, x_train, y_train, generator) if before_epoch else None
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        bar = tqdm(range(steps_per_epoch), desc=f"{cfg.defense} epoch {epoch + 1}/{cfg.epochs}",
                   disable=None if progress is None else not progress, leave=False)
        for step in bar:
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x = data_mod.to_float(x_train[idx])
            if replaced is not None:
                x = replaced.apply(idx, x)
            if cfg.augment:
                x = data_mod.augment_crop_flip(x, generator=generator)
            x = x.contiguous(memory_format=memory_format)
            if cfg.random_erasing:
                x = data_mod.random_erasing(x, cfg.random_erasing, generator=generator)
            y = y_train[idx]
            extra = {"index": idx} if wants_index else {}
            for replay in range(cfg.replay):
                lr = learning_rate(cfg, ((epoch * steps_per_epoch + step) * cfg.replay + replay) / total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss, logits = batch_loss(x, y, extra)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                # accumulate on the device; read once per epoch (no host sync per step)
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
                seen += len(y)
        train_loss, train_acc = loss_sum.item() / seen, correct.item() / seen  # the epoch's one host sync
        record = {"epoch": epoch + 1, "lr_end": lr, "train_loss": train_loss, "train_acc": train_acc,
                  "seconds": time.perf_counter() - started,
                  # input gradients (attacks, sampling) plus the weight update's pass over the images
                  "gradient_images": GRADIENTS.images - gradients_before + seen}
        if replaced is not None:
            record["perturbed"] = replaced.count
        if hasattr(defense, "end_epoch"):
            record.update(defense.end_epoch())
        if cfg.validation_spec:
            record["val_accuracy"] = validation_accuracy(model, dataset, cfg.validation_spec, device)
            if cfg.select_best and (best is None or record["val_accuracy"] > best[0]):
                best = (record["val_accuracy"], epoch + 1, {k: v.detach().clone() for k, v in model.state_dict().items()})
        history.append(record)
        epochs_run += 1
        if ckpt_path:
            save_torch({"config": asdict(cfg), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "history": history, "epoch": epoch + 1, **({"best": best} if best else {})}, ckpt_path)
    if best is not None and len(history) == cfg.epochs:
        model.load_state_dict(best[2])
        for record in history:
            record["selected"] = record["epoch"] == best[1]
    model.eval()
    return history


def compile_step(batch_loss, device: torch.device):
    """`batch_loss` (the attack's forward and input-gradient passes, then the training loss)
    captured by torch.compile, with the backward of the loss compiled alongside; on a GPU, mode
    "reduce-overhead" replays the graphs as CUDA graphs. The optimizer's update stays the fused
    (GPU) or multi-tensor (CPU) kernel it is: compiled, it is specialized on the learning rate,
    and a schedule's new rate every step recompiles it until torch gives up.

    Dynamo traces the attack's torch.autograd.grad only with `trace_autograd_ops`, set for
    `batch_loss` alone: set while tracing `loss.backward()`, it left the weights unchanged
    (torch 2.14). `fallback_random`: the random starts come from torch's generator, as in eager
    mode (inductor's own would draw other numbers), so the captured step trains the eager
    weights, seed for seed. Input-gradient counts made inside the graphs are added after each call."""
    compiled = torch.compile(batch_loss, mode="reduce-overhead" if device.type == "cuda" else None)

    def captured(*args):
        add_queued_gradients()
        with torch._dynamo.config.patch(trace_autograd_ops=True), torch._inductor.config.patch(fallback_random=True):
            out = compiled(*args)
        add_queued_gradients()
        return out
    return captured


def validation_accuracy(model, dataset: data_mod.Dataset, spec: dict, device: torch.device) -> float:
    """`spec`'s accuracy on the validation split (scored like a test split, in eval mode and fp32)."""
    held_out = dataclasses.replace(dataset, x_test=dataset.x_val, y_test=dataset.y_val)
    return evaluate_spec(model, held_out, spec, device=device)["accuracy"]
