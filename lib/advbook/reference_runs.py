"""What every side-by-side of a reference implementation's training loop and ours shares
(`reference_mnist`, `reference_cifar`): the attacks that score both arms, the paired summary
over seeds, and the command line that runs arms x seeds into one JSON record, written
atomically after every run and resumable (`--resume` keeps the runs of the same settings and
data; each run names its commit)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from . import data as data_mod
from . import paths, store
from .evaluate import evaluate_spec

RESUME_KEYS = ("started", "commit", "device", "threads", "load_average_at_start")  # kept per resumption
BASELINE = "reference"


def eval_specs(s: dict) -> list[dict]:
    """Clean accuracy on the whole test set, FGSM and PGD (`eval_steps` steps of `eval_alpha`,
    `eval_restarts` restarts) at `eps` on the first `n_eval` test images."""
    n = s["n_eval"]
    return [{"name": "clean", "attack": "clean"},
            {"name": "fgsm", "attack": "fgsm", "params": {"eps": s["eps"]}, "n": n},
            {"name": "pgd", "attack": "pgd", "params": {"eps": s["eps"], "alpha": s["eval_alpha"],
             "steps": s["eval_steps"], "restarts": s["eval_restarts"]}, "n": n}]


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor) -> tuple[float, int]:
    """One optimizer step on the cross-entropy of (x, y), as both references write it; returns the
    batch's summed loss and its count of correct predictions."""
    output = model(x)
    loss = F.cross_entropy(output, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item() * len(y), (output.argmax(1) == y).sum().item()


def scored_run(arm: str, seed: int, model: torch.nn.Module, dataset: data_mod.Dataset, s: dict,
               history: list[dict], train_seconds: float, train_config: dict | None = None) -> dict:
    """One trained arm, scored by `eval_specs` (the same code for every arm)."""
    results = {spec["name"]: evaluate_spec(model, dataset, spec, device=torch.device("cpu"))
               for spec in eval_specs(s)}
    run = {"arm": arm, "seed": seed, "train_seconds": train_seconds,
           "eval_seconds": sum(r["seconds"] for r in results.values()),
           **{name: r["accuracy"] for name, r in results.items()},
           "checks": results["pgd"]["checks"], "history": history}
    if train_config:
        run["train_config"] = train_config
    return run


def timed(train: Callable[[], tuple[list[dict], dict | None]]) -> tuple[list[dict], dict | None, float]:
    started = time.perf_counter()
    history, train_config = train()
    return history, train_config, time.perf_counter() - started


def _spread(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "values": values,
            "std": statistics.stdev(values) if len(values) > 1 else None}


def summary(runs: list[dict], arms) -> dict:
    """Per arm and metric the mean over seeds; per arm the paired difference to the reference
    arm of the same seed ("<arm> - reference <metric>")."""
    out = {}
    for arm in arms:
        mine = [r for r in runs if r["arm"] == arm]
        for metric in ("clean", "fgsm", "pgd"):
            if mine:
                out[f"{arm} {metric}"] = _spread([r[metric] for r in mine])
    paired = {r["seed"]: r for r in runs if r["arm"] == BASELINE}
    for arm in arms:
        for metric in ("pgd", "clean"):
            diffs = [r[metric] - paired[r["seed"]][metric] for r in runs
                     if r["arm"] == arm != BASELINE and r["seed"] in paired]
            if diffs:
                out[f"{arm} - {BASELINE} {metric}"] = _spread(diffs)
    return out


def read_records(pattern: str) -> tuple[list[dict], list[str]]:
    """The runs of every record in data/reference whose name matches `pattern`, and per record a
    line naming its file, commit, device and torch version."""
    runs, provenance = [], []
    for path in sorted(paths.REFERENCE.glob(pattern)):
        record = json.loads(path.read_text())
        runs += record["runs"]
        provenance.append(f"{path.name}: commit {record['commit']}, {record['device']}, torch {record['torch']}")
    return runs, provenance


def main(argv, *, prog: str, doc: str, default_output: Path, settings: dict, arms, default_arms,
         options: tuple[str, ...], load: Callable[[dict, str | None], data_mod.Dataset],
         run_one: Callable[[str, int, data_mod.Dataset, dict], dict], about: dict) -> None:
    """The command line of a side-by-side: `--seeds`, `--arms`, `--resume`, `--output`,
    `--data-root` and one option per integer setting named in `options` (e.g. `--epochs`).
    `load(settings, data_root)` gives the dataset, `run_one(arm, seed, dataset, settings)` one
    scored run; `about` ("what", "reference") heads the record."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    parser.add_argument("--output", default=str(default_output))
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", choices=list(arms), default=list(default_arms))
    for key in options:
        parser.add_argument("--" + key.replace("_", "-"), type=int, default=settings[key])
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in --output (same settings) and compute only the others")
    args = parser.parse_args(argv)
    s = {**settings, **{key: getattr(args, key) for key in options}}
    if any(s[key] < 1 for key in options):
        parser.error(f"{', '.join('--' + k.replace('_', '-') for k in options)} must be at least 1")
    dataset = load(s, args.data_root)
    record = {"kind": "reference-comparison", **about,
              "settings": s, "eval_specs": eval_specs(s), "dataset": dataset.display_name,
              "dataset_file": os.path.basename(dataset.source), "dataset_sha256": dataset.sha256,
              "threads": torch.get_num_threads(),
              "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              **store.environment(torch.device("cpu")), "runs": []}
    if args.resume and Path(args.output).exists():
        earlier = store.read(Path(args.output))
        if earlier["settings"] != s or earlier["dataset_sha256"] != dataset.sha256:
            parser.error(f"{args.output} holds runs of other settings or data; give another --output")
        record = {**earlier, "resumed": [*earlier.get("resumed", []), {k: record[k] for k in RESUME_KEYS}]}
    done = {(r["arm"], r["seed"]) for r in record["runs"]}
    for seed in args.seeds:
        for arm in args.arms:
            if (arm, seed) in done:
                continue
            run = {**run_one(arm, seed, dataset, s), "commit": store.library_commit()}
            record["runs"].append(run)
            record["summary"] = summary(record["runs"], arms)
            store.write(record, Path(args.output))
            print(f"{arm} seed {seed}: clean {run['clean']:.4f} fgsm {run['fgsm']:.4f} pgd {run['pgd']:.4f} "
                  f"(train {run['train_seconds']:.0f} s, eval {run['eval_seconds']:.0f} s)", flush=True)
    for name, value in record.get("summary", {}).items():
        print(f"{name}: {100 * value['mean']:.1f} %", flush=True)
