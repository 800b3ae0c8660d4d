"""The paper's numbers a claim quotes are the paper's: every decimal number in a claim's "paper"
column is, to the decimals it is written with, a number of that paper's transcribed tables
(data/papers/NAME.json), the difference or ratio of two of them, or a number of the paper's text
(../shared/papers), so a typo or a number from another table cannot sit beside our verdict."""
import json
import re
from pathlib import Path

import pytest

from advbook import chapters, published

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ROOT.parent / "shared" / "papers"


def _table_numbers(chapter: str) -> tuple[set[float], set[float]]:
    """(every number of the paper's tables, every difference and ratio of two numbers of one table
    that share a row or a column: the derived numbers a claim may quote)."""
    tables = json.loads((ROOT / "data" / "papers" / f"{chapter}.json").read_text())["tables"]
    values, derived = set(), set()
    for table in tables.values():
        cells = [(row, column, float(v)) for row, columns in table.items() if isinstance(columns, dict)
                 for column, v in columns.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        values |= {v for _, _, v in cells}
        for r1, c1, a in cells:
            for r2, c2, b in cells:
                if (r1 == r2) != (c1 == c2):  # one row, two columns, or one column, two rows
                    derived.add(abs(a - b))
                    if b and c1 == c2:
                        derived.add(a / b)
    return values, derived


def _text_numbers(chapter: str) -> set[float]:
    path = json.loads((ROOT / "data" / "papers" / f"{chapter}.json").read_text()).get("text", "")
    source = PAPERS / Path(path).name
    if not source.exists():
        return set()
    return {float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*\.\d+", source.read_text())}


@pytest.mark.parametrize("chapter", published.chapters())
def test_every_decimal_a_claim_quotes_is_the_papers(chapter):
    ch = chapters.get(chapter)
    rows = ch.judge(ch.settings("cpu"), [])
    values, derived = _table_numbers(chapter)
    known = [*values, *derived, *_text_numbers(chapter)]
    quoted = {(r["claim"][:40], x) for r in rows for x in re.findall(r"(?<![\d.])\d+\.\d+(?![\d.])", r["paper"])}

    def found(text):
        x, tolerance = float(text), 0.5 * 10 ** -len(text.split(".")[1]) + 1e-9
        return any(abs(v - x) <= tolerance for v in known)
    missing = sorted(f"{claim}...: {x}" for claim, x in quoted if not found(x))
    if missing and not PAPERS.is_dir():
        pytest.skip(f"{len(missing)} quoted numbers are not in the tables and the papers' texts ({PAPERS}) are "
                    "not here to look them up")
    assert missing == []
