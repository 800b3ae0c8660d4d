"""A paper's identity as data: one file per chapter, `data/papers/<chapter>.json`, named as the
chapter, holding the paper's citation (authors, title, venue, year, arXiv id where verified),
where its text is, and its tables as transcribed ({table: {row: {column: value}}}, in the paper's
own units). The claims read the paper's effects from these tables (`cell`, `gap`); the What holds
page reads the citations; the chapters show the tables beside ours. These numbers are never used
to produce, tune or check our results.

Adding a paper: a file here and a chapter (see the README's guide).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd

from .paths import PAPERS_DATA

COLUMNS = ["paper", "table", "row", "column", "value"]


def published_dir() -> Path:
    return PAPERS_DATA


@functools.lru_cache(maxsize=None)
def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def paper(chapter: str) -> dict:
    """The paper file of `chapter` ({"citation", "text", "tables", ...})."""
    path = published_dir() / f"{chapter}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in published_dir().glob("*.json")))
        raise FileNotFoundError(f"no paper file for '{chapter}' (known: {known})")
    return _read(path)


def chapters() -> list[str]:
    """The chapters that have a paper file."""
    return sorted(p.stem for p in published_dir().glob("*.json"))


def citation(chapter: str) -> dict:
    return paper(chapter)["citation"]


def load(chapter: str) -> pd.DataFrame:
    """The paper's tables as rows of `COLUMNS`, in the paper's order."""
    rows = [(chapter, table, row, column, value) for table, body in paper(chapter)["tables"].items()
            for row, cells in body.items() for column, value in cells.items()]
    return pd.DataFrame(rows, columns=COLUMNS)


def cell(chapter: str, table: str, row: str, column: str) -> float:
    """One number of the paper's table (a KeyError names what is missing)."""
    try:
        return float(paper(chapter)["tables"][table][row][column])
    except KeyError:
        raise KeyError(f"'{chapter}' Table {table} has no cell ({row!r}, {column!r})") from None


def gap(chapter: str, table: str, a: tuple[str, str], b: tuple[str, str]) -> float:
    """The paper's A - B between two cells (row, column) of one table: the effect a claim compares."""
    return round(cell(chapter, table, *a) - cell(chapter, table, *b), 6)


def compare(paper: str, table: str, ours: pd.DataFrame) -> pd.DataFrame:
    """Paper vs reproduced for one table.

    `ours` has columns row, column, mean, std, n (percent). The result has, per row and
    column of the paper's table: paper, ours (mean ± std), difference (ours - paper).
    Rows or columns we did not run show as missing, never as zero.
    """
    theirs = load(paper)
    theirs = theirs[theirs["table"] == table]
    if theirs.empty:
        raise ValueError(f"'{paper}' has no table '{table}'")
    merged = theirs.merge(ours, on=["row", "column"], how="left")
    rows = list(dict.fromkeys(merged["row"]))
    columns = list(dict.fromkeys(merged["column"]))  # the paper's own order
    table = {}
    for _, r in merged.iterrows():
        ran = not pd.isna(r["mean"])
        spread = f" ± {r['std']:.2f}" if ran and r.get("n", 1) > 1 else ""
        table.setdefault(r["row"], {})[(r["column"], "paper")] = r["value"]
        table[r["row"]][(r["column"], "ours")] = f"{r['mean']:.2f}{spread}" if ran else "not run"
        table[r["row"]][(r["column"], "difference")] = round(r["mean"] - r["value"], 2) if ran else None
    frame = pd.DataFrame.from_dict(table, orient="index").reindex(rows)
    order = [(c, k) for c in columns for k in ("paper", "ours", "difference")]
    frame = frame[order]
    frame.columns = pd.MultiIndex.from_tuples(order)
    return frame


def side_by_side(table: pd.DataFrame) -> pd.DataFrame:
    """`compare`'s table folded to one column per metric, 'ours (paper; difference)', so that
    it fits a book page."""
    metrics = list(dict.fromkeys(table.columns.get_level_values(0)))
    out = pd.DataFrame(index=table.index)
    for metric in metrics:
        cells = []
        for _, r in table[metric].iterrows():
            diff = "" if pd.isna(r["difference"]) else f"; {r['difference']:+.2f}"
            cells.append(f"{r['ours']} ({r['paper']:.2f}{diff})")
        out[metric] = cells
    return out
