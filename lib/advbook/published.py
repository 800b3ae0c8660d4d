"""Published numbers: each paper's tables, transcribed as data, and a paper-vs-ours table.

`data/published/<paper>.csv` has the columns paper, table, row, column, value (in the
paper's own units, here percent). These numbers are shown beside ours; they are never used
to produce, tune or check our results.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .paths import PUBLISHED

COLUMNS = ["paper", "table", "row", "column", "value"]


def published_dir() -> Path:
    return PUBLISHED


def load(paper: str) -> pd.DataFrame:
    path = published_dir() / f"{paper}.csv"
    if not path.exists():
        known = ", ".join(p.stem for p in published_dir().glob("*.csv"))
        raise FileNotFoundError(f"no published numbers for '{paper}' (known: {known})")
    frame = pd.read_csv(path, dtype={"paper": str, "table": str, "row": str, "column": str})
    if list(frame.columns) != COLUMNS:
        raise ValueError(f"{path} must have the columns {COLUMNS}, has {list(frame.columns)}")
    return frame


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
