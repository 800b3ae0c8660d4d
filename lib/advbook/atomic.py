"""The one atomic writer: a file is written whole or not at all (a temporary file unique to the
process beside the target, then a rename), for records, weights, checkpoints and archives alike."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, mode: str, fill) -> Path:
    """`fill(file)` into a temporary file beside `path`, then a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            fill(f)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a record is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)  # no half-written file left behind
        raise
    return path


def save_torch(obj, path: Path) -> Path:
    """torch.save, atomically (weights and training checkpoints)."""
    import torch

    return write_atomic(path, "wb", lambda f: torch.save(obj, f))


def create_new(content: bytes, path: Path) -> Path:
    """Write `content` atomically to `path`, which must not exist: FileExistsError rather than
    replace a file (an import never overwrites a record). The hard link is the atomic step
    that fails if `path` appeared meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(tmp, 0o644)
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path
