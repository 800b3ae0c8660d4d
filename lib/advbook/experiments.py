"""Experiments: a plain configuration in, a stored result record out.

    config = {"chapter": "primer", "profile": "smoke", "dataset": "digits",
              "subset": {"train": None, "test": 300},
              "model": {"name": "small-cnn", "width": 16},
              "train": {...TrainConfig fields...},
              "evaluate": {...evaluate.evaluate spec...}}
    record = get_or_compute(config)

Notebooks call `get_or_compute`; `advbook compute` calls it for all of a chapter's
experiments without a notebook (on a GPU machine), and the notebook then finds them stored.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import torch

from . import data, models, results
from .data import PROJECT_ROOT
from .evaluate import evaluate
from .train import TrainConfig, default_device, fit


class NotComputed(LookupError):
    """A record is missing and computing it was not allowed."""


def prepare_data(config: dict) -> data.Dataset:
    dataset = data.load(config["dataset"], config.get("data_root"))
    subset = config.get("subset") or {}
    if config.get("validation"):  # held out from training first, as the paper's splits are
        dataset = dataset.split_validation(config["validation"], seed=0)
    if subset.get("train") or subset.get("test"):
        dataset = dataset.subset(subset.get("train"), subset.get("test"), seed=subset.get("seed", 0))
    return dataset


def build_model(config: dict, dataset: data.Dataset) -> torch.nn.Module:
    mean, std = dataset.channel_stats()
    spec = dict(config["model"])
    name = spec.pop("name")
    return models.build(name, dataset.num_classes, dataset.in_channels, mean=mean, std=std,
                        image_size=dataset.image_size, **spec)


def run(config: dict, *, device: torch.device | None = None, progress: bool | None = None) -> dict:
    """Train and evaluate one configuration; returns its record (not yet stored)."""
    device = device or default_device()
    started = time.perf_counter()
    dataset = prepare_data(config)
    train_cfg = TrainConfig(**config["train"])
    torch.manual_seed(train_cfg.seed)  # the initial weights depend on the seed alone
    model = build_model(config, dataset)
    checkpoint = PROJECT_ROOT / "data" / "checkpoints" / f"{results.config_key(config)}.pt"
    history = fit(model, dataset, train_cfg, checkpoint=checkpoint, device=device, progress=progress)
    train_seconds = sum(h["seconds"] for h in history)
    metrics = evaluate(model, dataset, config["evaluate"], device=device, precision=train_cfg.precision)
    checkpoint.unlink(missing_ok=True)  # weights are not kept: the record is the result
    return {
        "key": results.config_key(config),
        "config": config,
        "profile": config.get("profile"),
        "dataset": {"name": dataset.name, "display_name": dataset.display_name,
                    "sha256": dataset.sha256, "source": dataset.source,
                    "n_train": len(dataset.y_train), "n_test": len(dataset.y_test)},
        "history": history,
        "metrics": metrics,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - started,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **results.environment(device),
    }


def get_or_compute(config: dict, *, compute: bool = True, device=None, progress=None) -> dict:
    """The stored record for `config`, computing and storing it first if it is missing."""
    record = results.load(config)
    if record is not None:
        return record
    if not compute:
        raise NotComputed(f"no stored result for {config.get('chapter')}/{results.config_key(config)}; "
                          f"run `advbook compute {config.get('chapter')} --profile {config.get('profile')}`")
    record = run(config, device=device, progress=progress)
    results.save(record)
    return record
