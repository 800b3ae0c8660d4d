"""Chapters: each declares its parameters, its profiles and the experiments it needs.

A chapter module defines `CHAPTER = Chapter(...)`. The notebook calls
`CHAPTER.settings(profile, **overrides)` (which validates), then `CHAPTER.experiments(settings)`,
and fetches each record from the results store; `advbook compute` walks the same list.
"""
from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import profiles
from ..errors import ParameterError
from ..train import fast_path  # noqa: F401  (the chapters' profiles name it)

# the precision the cpu profiles train in (advbook.profiles says why)
CPU_PRECISION = profiles.get("cpu").precision
# the priorities a chapter's `priority(config, spec)` gives: what decides a claim is computed
# before the extras when time is short (advbook.planning)
from ..experiments import CLAIMS, EXTRA  # noqa: E402,F401  (what a chapter's priority returns)



# what a chapter's `baselines(settings)` says of a hyperparameter its paper leaves open
NOT_GIVEN = "not given"
# why a profile's value differs from the paper's when it is the profile's own choice
BUDGET = "this profile's compute budget (the paper profile has the paper's)"


def budget(v: float) -> str:
    """An L-inf budget or step as the papers write it: 8/255 for a whole number of 255ths below 1/10."""
    k = v * 255
    return f"{round(k)}/255" if 0 < v < 0.1 and abs(k - round(k)) < 1e-6 else f"{v:.4g}"


def baseline_row(baseline: str, items: list[tuple[str, str, str, str]]) -> tuple[str, str, str, str]:
    """One row of a chapter's `baselines(settings)`, (baseline, this run, the paper, why they differ),
    from the hyperparameters that reach its training step, each (name, this run, the paper, why
    they differ): a column lists "name value"s, the reason gathers those of the items that differ
    (empty when every item agrees). An item that differs must say why."""
    for name, mine, theirs, why in items:
        if mine != theirs and not why:
            raise ValueError(f"baseline {baseline!r}: {name} differs from the paper's ({mine} against {theirs}) "
                             "and says no reason")
    return (baseline, "; ".join(f"{name} {mine}" for name, mine, _, _ in items),
            "; ".join(f"{name} {theirs}" for name, _, theirs, _ in items),
            "; ".join(f"{name}: {why}" for name, mine, theirs, why in items if mine != theirs))


@dataclass(frozen=True)
class Parameter:
    name: str
    type: type                      # int, float, str, bool, or list (of `item_type`)
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    item_type: type | None = None   # for list parameters

    def parse(self, text: str) -> Any:
        """A value from the command line (`-p NAME VALUE`), validated."""
        try:
            if self.type is bool:
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                value = lowered in ("true", "1", "yes")
            elif self.type is list:
                value = [self.item_type(v) for v in text.split(",") if v.strip()]
            else:
                value = self.type(text)
        except ValueError:
            kind = f"list of {self.item_type.__name__}" if self.type is list else self.type.__name__
            raise ParameterError(f"parameter '{self.name}': cannot read {text!r} as {kind}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """`value` if it fits this parameter, else a ParameterError naming the parameter."""
        kind = self.type
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is list:
            if not isinstance(value, (list, tuple)) or not value:
                raise ParameterError(f"parameter '{self.name}' must be a non-empty list, got {value!r}")
            values = [self._check_scalar(self.item_type(v) if isinstance(v, (int, float)) else v) for v in value]
            repeated = sorted({v for v in values if values.count(v) > 1}, key=str)
            if repeated:  # seeds 0,0 would count one model twice: n = 2 and a fake standard error
                raise ParameterError(f"parameter '{self.name}' repeats {', '.join(map(str, repeated))}: "
                                     "each value may appear once")
            return values
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ParameterError(f"parameter '{self.name}' must be {kind.__name__}, got {value!r}")
        return self._check_scalar(value)

    def _check_scalar(self, value):
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError(f"parameter '{self.name}' must be a finite number, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f"parameter '{self.name}' must be one of {list(self.choices)}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ParameterError(f"parameter '{self.name}' must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise ParameterError(f"parameter '{self.name}' must be <= {self.maximum}, got {value!r}")
        return value


# every training chapter's memory-format switch for fp32 (bf16's fast path has it on anyway):
# channels_last trained 1.2 to 1.5 times faster on two CPU cores (the Performance page)
CHANNELS_LAST = Parameter("channels_last", bool, "NHWC activations in fp32 training too (bf16 has them): the same "
                          "arithmetic up to rounding, faster convolutions on a CPU")


@dataclass
class Chapter:
    name: str
    title: str
    parameters: list[Parameter]
    profiles: dict[str, dict]                       # profile -> {parameter: default}
    experiments: Callable[[dict], list[dict]]       # settings -> experiment configs
    summary: Callable[[dict, list[dict]], Any] = field(default=None)  # for sweeps: records -> rows
    group_by: str = "variant"                       # the summary column that names a training variant
    plot_metrics: tuple = ("clean", "pgd")          # summary columns a sweep plots
    # the queue rank of one evaluation (spec) of one experiment (config) when a budget is short
    # (advbook.planning): 0 for what decides a claim, 1 for an extra (sweeps, more seeds, AutoAttack
    # on more images); None ranks everything 0. A chapter module declares it as its function
    # `priority(config, spec)`, beside its profiles, and passes it here: the notebooks import `CHAPTER`
    # from the module, not through `get`, and `experiments.collect` reads it there.
    priority: Callable[[dict, dict], int] | None = None

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise ParameterError(f"chapter '{self.name}' has no parameter '{name}'; "
                             f"known: {', '.join(p.name for p in self.parameters)}")

    def settings(self, profile: str = profiles.DEFAULT, **overrides) -> dict:
        """The profile's defaults with `overrides` applied, every value validated.
        None means "the profile's value" (the notebooks' parameters cell uses it)."""
        if profile not in self.profiles:
            raise ParameterError(f"chapter '{self.name}' has no profile '{profile}'; known: {list(self.profiles)}")
        settings = {"profile": profile, **self.profiles[profile]}
        for name, value in overrides.items():
            if value is None:
                continue
            settings[name] = self.parameter(name).check(value)
        return settings

    @property
    def has_claims(self) -> bool:
        """Whether the chapter's module states claims (its function `claims(settings, rows)`; a
        module imported under that name is not one)."""
        return inspect.isfunction(getattr(importlib.import_module(f"advbook.chapters.{self.name}"), "claims", None))

    def judge(self, settings: dict, rows: list[dict]) -> list[dict]:
        """The chapter's claims rows (its module's `claims(settings, rows)`), as its profile may state
        them: a smoke run decides nothing (`claims.decided_at`)."""
        from ..claims import decided_at

        judged = importlib.import_module(f"advbook.chapters.{self.name}").claims(settings, rows)
        return decided_at(profiles.get(settings["profile"]).decides, judged)

    def parse_overrides(self, pairs: list[tuple[str, str]]) -> dict:
        """Command-line `-p NAME VALUE` pairs, parsed and validated."""
        return {name: self.parameter(name).parse(text) for name, text in pairs}


CHAPTER_MODULES = ("primer", "auditing", "adaptive", "mixture", "performance", "random_sign", "efgsm", "biparo")


def get(name: str) -> Chapter:
    if name not in CHAPTER_MODULES:
        raise ParameterError(f"unknown chapter '{name}'; known: {', '.join(CHAPTER_MODULES)}")
    return importlib.import_module(f"advbook.chapters.{name}").CHAPTER


def all_chapters() -> list[Chapter]:
    return [get(name) for name in CHAPTER_MODULES]
