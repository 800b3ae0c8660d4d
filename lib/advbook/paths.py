"""Project folders. Everything that needs a path asks here (nothing imports data.py for one).

- the data root: `--data-root`, else $ADVBOOK_DATA, else data/datasets/ (never committed)
- the results stores (`results_root`, `results_roots`): the book's, data/results/ (committed JSON
  records; the weights and in-progress checkpoints beside them are ignored by git), and yours,
  data/local/ (ignored by git), layered over it. What you compute is written into yours and read
  before the book's, so a rerun never changes the committed store and `advbook export` ships only
  your records; a maintainer computing for the book names its store (`--store book`, which sets
  $ADVBOOK_STORE for the notebook kernel too). $ADVBOOK_RESULTS names one store alone, read and
  written, with nothing beneath it (tests and GPU windows use a folder of their own).
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


BOOK_RESULTS = PROJECT_ROOT / "data" / "results"  # the committed store the book is rendered from
LOCAL_RESULTS = PROJECT_ROOT / "data" / "local"  # your records, on this machine only
STORES = {"local": LOCAL_RESULTS, "book": BOOK_RESULTS}  # what --store and $ADVBOOK_STORE name


def store_name() -> str:
    """Which store is written: $ADVBOOK_STORE ("local", the default, or "book")."""
    name = os.environ.get("ADVBOOK_STORE") or "local"
    if name not in STORES:
        raise ParameterError(f"ADVBOOK_STORE={name!r} names no store: give one of {', '.join(STORES)}")
    return name


def results_root() -> Path:
    """Where records are written: $ADVBOOK_RESULTS if set, else the store $ADVBOOK_STORE names
    (yours, data/local/, unless it says "book")."""
    env = os.environ.get("ADVBOOK_RESULTS")
    return Path(env) if env else STORES[store_name()]


def results_roots() -> list[Path]:
    """Where records are read, first found first: the store written, then the book's beneath it
    (unless the store written is the book's, or $ADVBOOK_RESULTS names a store alone)."""
    root = results_root()
    if os.environ.get("ADVBOOK_RESULTS") or root == BOOK_RESULTS:
        return [root]
    return [root, BOOK_RESULTS]


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
