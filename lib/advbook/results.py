"""The results store: one JSON record per experiment, keyed by a hash of its configuration.

A record holds the configuration, the per-epoch history, the final metrics and the
provenance every number in the book must carry: profile, dataset (name, display name,
hash), device, versions, library commit and wall time. Records are written atomically
(a temporary file, then a rename), so an interrupted run never leaves half a record.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import torch

from .data import PROJECT_ROOT


def results_dir() -> Path:
    """$ADVBOOK_RESULTS if set (tests use a temporary one), else data/results/ in the project."""
    env = os.environ.get("ADVBOOK_RESULTS")
    return Path(env) if env else PROJECT_ROOT / "data" / "results"


def config_key(config: dict) -> str:
    """A stable hash of a configuration: the same experiment always gets the same key."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def record_path(config: dict) -> Path:
    return results_dir() / config.get("chapter", "misc") / f"{config_key(config)}.json"


def load(config: dict) -> dict | None:
    """The stored record for `config`, or None."""
    path = record_path(config)
    if not path.exists():
        return None
    with open(path) as f:
        return json.load(f)


def save(record: dict) -> Path:
    """Write `record` (which carries its `config`) atomically; returns its path."""
    path = record_path(record["config"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a record is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)  # no half-written file left behind
        raise
    return path


def library_commit() -> str:
    """The project's git commit, with '+dirty' if the library has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "lib"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment(device: torch.device) -> dict:
    """Where a record was computed."""
    import torchvision

    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {"device": device_name, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "commit": library_commit()}
