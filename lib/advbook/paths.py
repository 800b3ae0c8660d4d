"""Project folders. Everything that needs a path asks here (nothing imports data.py for one).

- the data root: `--data-root`, else $ADVBOOK_DATA, else data/datasets/ (never committed)
- the results root: $ADVBOOK_RESULTS, else data/results/ (committed JSON records; the weights
  and in-progress checkpoints beside them are ignored by git)
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ParameterError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = PROJECT_ROOT / "notebooks"
BOOK = PROJECT_ROOT / "book"
PAPERS_DATA = PROJECT_ROOT / "data" / "papers"
BENCH = PROJECT_ROOT / "data" / "bench"
REFERENCE = PROJECT_ROOT / "data" / "reference"  # side-by-side runs of a reference implementation's loop and ours


def results_root() -> Path:
    """$ADVBOOK_RESULTS if set (tests use a temporary one), else data/results/ in the project."""
    env = os.environ.get("ADVBOOK_RESULTS")
    return Path(env) if env else PROJECT_ROOT / "data" / "results"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """`root` if given, else $ADVBOOK_DATA, else data/datasets/ in the project."""
    if root is not None:
        return Path(root)
    env = os.environ.get("ADVBOOK_DATA")
    return Path(env) if env else PROJECT_ROOT / "data" / "datasets"


def writable(folder: Path, what: str) -> None:
    """Refuse, before any work, a folder that cannot be written (a one-line ParameterError)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".advbook-write-test-"):
            pass
    except OSError as exc:
        raise ParameterError(f"the {what} {folder} is not writable ({exc.strerror}); point "
                             f"{'ADVBOOK_RESULTS' if what == 'results store' else '--output'} elsewhere") from None
