"""The audit behind `advbook verdicts`: every executed chapter's claims re-judged from its stored
records with this checkout's claims code and guards, so that the What holds page is never written
from a rendered verdict that its records no longer give."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from . import chapters, data, experiments, profiles
from .errors import MismatchedImages
from .paths import BOOK
from .verdicts import chapter_claims


def audit(book: Path = BOOK) -> list[str]:
    """Re-judge every executed chapter's claims from its records in the store, with the claims code
    and guards of this checkout (same images, models that learned, no refutation at a floor, no
    quantity fixed by construction), and name every claim whose rendered verdict differs, or a
    chapter whose comparisons the guards refuse. Smoke runs decide nothing and are skipped; so is a
    chapter whose records are not all in the store (it cannot be re-judged here, and says so). A
    chapter whose experiments need a dataset that is not here (a clone without the offline copies)
    is left unaudited with a warning on stderr: the machines that hold the data audit it."""
    problems = []
    for notebook in sorted(book.glob("*.ipynb")):
        payload = chapter_claims(notebook)
        if payload is None or not profiles.get(payload["scale"]["profile"]).decides \
                or notebook.stem not in chapters.CHAPTER_MODULES:
            continue
        parameters = json.loads(notebook.read_text())["metadata"].get("papermill", {}).get("parameters", {})
        chapter = chapters.get(notebook.stem)
        settings = chapter.settings(parameters.get("profile", payload["scale"]["profile"]),
                                    **(parameters.get("overrides") or {}))
        try:
            records = [experiments.get_or_compute(config, compute=False) for config in chapter.experiments(settings)]
        except data.DataUnavailable as exc:
            print(f"advbook verdicts: warning: {notebook.stem} not re-judged here: {exc}", file=sys.stderr)
            continue
        except experiments.NotComputed as exc:
            problems.append(f"{notebook.stem}: cannot be re-judged, its records are not all stored ({exc})")
            continue
        try:
            now = chapter.judge(settings, chapter.summary(settings, records))
        except MismatchedImages as exc:
            problems.append(f"{notebook.stem}: {exc}")
            continue
        rendered = {row["claim"]: row for row in payload["rows"]}
        given = {row["claim"]: row for row in now}
        for claim in rendered.keys() - given.keys():
            problems.append(f"{notebook.stem}: '{claim[:70]}' is rendered but its records no longer give that claim; "
                            "re-render the chapter")
        for claim, row in given.items():
            shown = rendered.get(claim)
            if shown is None or shown["verdict"] != row["verdict"]:
                problems.append(f"{notebook.stem}: '{claim[:70]}' is rendered "
                                f"'{shown['verdict'] if shown else 'absent'}' but its records now give '{row['verdict']}' "
                                f"({row['why'][:120]}); re-render the chapter")
            elif (shown.get("why"), shown.get("parts")) != (row["why"], json.loads(json.dumps(row["parts"]))):
                problems.append(f"{notebook.stem}: '{claim[:70]}' keeps its verdict, but its reason or its parts' "
                                "numbers differ from what its records now give; re-render the chapter")
    return problems
