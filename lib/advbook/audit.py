"""The audit behind `advbook verdicts`: every executed chapter's claims re-judged from its stored
records with this checkout's claims code and guards, so that the What holds page is never written
from a rendered verdict that its records no longer give."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from . import chapters, data, experiments
from .claims import MismatchedImages
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
        if payload is None or payload["scale"]["profile"] == "smoke" or notebook.stem not in chapters.CHAPTER_MODULES:
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
        module = importlib.import_module(f"advbook.chapters.{notebook.stem}")
        try:
            now = module.claims(settings, chapter.summary(settings, records))
        except MismatchedImages as exc:
            problems.append(f"{notebook.stem}: {exc}")
            continue
        rendered = {row["claim"]: row["verdict"] for row in payload["rows"]}
        for row in now:
            if rendered.get(row["claim"]) != row["verdict"]:
                problems.append(f"{notebook.stem}: '{row['claim'][:70]}' is rendered "
                                f"'{rendered.get(row['claim'], 'absent')}' but its records now give '{row['verdict']}' "
                                f"({row['why'][:120]}); re-render the chapter")
    return problems
