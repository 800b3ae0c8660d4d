"""What the book stands on, and what no page reads any more.

A record of the store is read when some chapter, at one of its profiles or at a rendering its page
promises (a chapter module's `RENDERINGS`: {profile: [overrides]}), or through the extra runs its
module declares (`reads()`: configs, e.g. BIPARO's learning diagnostic), lists its config; an
evaluation is read only if it scored the stored model's current weights (`experiments.stored`
ignores one made of earlier weights). Everything else in the store written (yours, data/local/, or
the book's with `--store book`: `paths.results_root`) is unused: records of
designs since revised, evaluations of weights trained again, models no config names.

`advbook prune` lists the unused records by kind with their size; `--delete` removes them (git
keeps them in history). Nothing is judged unused where a chapter's configs cannot be built (its
dataset is not here): the command refuses, naming it, and deletes nothing.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from . import chapters, store
from .errors import DataUnavailable, ParameterError
from .paths import results_root


def read_configs() -> list[dict]:
    """Every experiment config some page reads: each chapter at each of its profiles, at the
    renderings its page promises, and its module's extra runs. A ParameterError names the chapter
    and profile whose configs cannot be built here."""
    out = []
    for name in chapters.CHAPTER_MODULES:
        chapter, module = chapters.get(name), importlib.import_module(f"advbook.chapters.{name}")
        renderings = getattr(module, "RENDERINGS", {})
        for profile in chapter.profiles:
            for overrides in [{}, *renderings.get(profile, [])]:
                try:
                    out += chapter.experiments(chapter.settings(profile, **overrides))
                except DataUnavailable as exc:
                    raise ParameterError(f"cannot tell what {name} reads at {profile} here ({exc}): nothing "
                                         "pruned; run it where the datasets are (ADVBOOK_DATA)") from None
        if hasattr(module, "reads"):
            out += module.reads()
    return out


@dataclass
class Unused:
    models: list[Path] = field(default_factory=list)   # model records no config names, with their weights
    evals: list[Path] = field(default_factory=list)    # evaluations no config reads, or of earlier weights

    @property
    def paths(self) -> list[Path]:
        return [*self.models, *self.evals]

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.paths if p.exists())


def unused(configs: list[dict] | None = None) -> Unused:
    """The store's files that no config of `configs` (default: `read_configs()`) reads."""
    configs = read_configs() if configs is None else configs
    models, evals = set(), set()
    for config in configs:
        mkey, test = store.model_key(config), store.test_selection(config)
        models.add(mkey)
        record = store.load_model(mkey)
        for spec in config["evaluate"]:
            if spec.get("attack") == "transfer":
                models.add(spec["params"]["source"])
            path = store.eval_path(mkey, spec, test)
            found = store.read(path) if record is not None and path.exists() else None
            if found is not None and found.get("model_created", record["created"]) == record["created"]:
                evals.add(path)
    root = results_root()
    out = Unused()
    for path in sorted((root / "models").glob("*")):
        if path.name.split(".")[0] not in models:
            out.models.append(path)
    for path in sorted((root / "evals").glob("*/*.json")):
        if path not in evals:
            out.evals.append(path)
    return out


def delete(found: Unused) -> int:
    """Remove every file of `found` (and folders left empty); the count removed."""
    for path in found.paths:
        path.unlink(missing_ok=True)
    for folder in {p.parent for p in found.evals}:
        if folder.exists() and not any(folder.iterdir()):
            folder.rmdir()
    return len(found.paths)
