"""What would decide an undecided claim, and what it would cost.

What holds names, for every claim the rule leaves inconclusive, the design that would decide it:

- where its undecided parts have bounds, the paired seeds `claims.seeds_to_decide` gives for each
  (the most of them: every part must be decided), extrapolated from the spread the current design
  shows; the models those seeds add (the claim's models per seed); and their cost, planned by
  `advbook.planning` from the bench records on this machine's CPU and on the newest GPU's;
- where a guard holds a part (a model did not learn, a side sits at a floor), no number of seeds:
  the guard's own reason says what the design must change;
- where the claim was not computed at its scale, or only on a model standing in for the paper's
  (`Judgement.stand_in`), the next larger profile of its chapter and the planned cost of that
  profile's claim-deciding models.

Every cost is a plan, not a measurement; the page says so and names the bench records it rests on.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from . import chapters, claims, planning, profiles, store
from .chapters import CLAIMS
from .errors import DataUnavailable
from .paths import BENCH


@dataclass(frozen=True)
class Decision:
    """What would decide a claim: a sentence, and the numbers behind it (None where not sized)."""
    text: str
    seeds: int | None = None           # paired seeds the undecided parts need
    models: int | None = None          # models those seeds add
    cpu_minutes: float | None = None   # their planned cost on this machine's CPU
    gpu_minutes: float | None = None   # and on the newest bench record's GPU
    profile: str | None = None         # the next profile, where the claim is not computed at its scale

    def as_data(self) -> dict:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@functools.lru_cache(maxsize=None)
def rates() -> dict[str, planning.Rates]:
    """The planner's rates: the committed CPU bench record (the machine the book's cpu profiles are
    computed on) and the newest GPU bench record, never this machine's, so that every machine
    writes the same page."""
    cpu = torch.device("cpu")
    return {"CPU": planning.device_rates(cpu, BENCH / "bench-cpu.json", threads=2),
            "GPU": planning.device_rates(cpu, for_gpu=True)}


@functools.lru_cache(maxsize=None)
def claim_configs(chapter: str, profile: str) -> dict[str, dict]:
    """{model key: the config with only its claim-deciding specs} of a chapter at a profile."""
    ch = chapters.get(chapter)
    out = {}
    for config in ch.experiments(ch.settings(profile)):
        specs = [s for s in config["evaluate"] if (ch.priority(config, s) if ch.priority else CLAIMS) == CLAIMS]
        out.setdefault(store.model_key(config), {**config, "evaluate": specs})
    return out


# why costs went unplanned in this process (a dataset's message), for `advbook verdicts` to say so
UNPLANNED: set[str] = set()


def _minutes(configs: list[dict]) -> dict[str, float] | None:
    """Planned minutes of training and evaluating `configs` on each device of `rates()`; None where
    a dataset is not here to size them."""
    try:
        return {kind: sum(planning.config_seconds(c, r) for c in configs) / 60 for kind, r in rates().items()}
    except DataUnavailable as exc:
        UNPLANNED.add(str(exc).splitlines()[0])
        return None


def _cost(minutes: dict[str, float] | None) -> str:
    if minutes is None:
        return "cost not planned here (a dataset is missing, or the records' settings are not the profile's)"
    return f"about {minutes['CPU']:.0f} CPU-minutes (2 cores) or {minutes['GPU']:.0f} GPU-minutes (planned)"


def next_profile(chapter: str, profile: str) -> str | None:
    """The smallest profile of `chapter` above `profile` that may decide claims."""
    ch = chapters.get(chapter)
    rank = profiles.get(profile).rank
    above = [p for p in profiles.by_rank(ch.profiles) if profiles.get(p).rank > rank and profiles.get(p).decides]
    return above[0] if above else None


@functools.lru_cache(maxsize=None)
def _profile_minutes(chapter: str, profile: str) -> dict[str, float] | None:
    try:
        return _minutes(list(claim_configs(chapter, profile).values()))
    except DataUnavailable as exc:
        UNPLANNED.add(str(exc).splitlines()[0])
        return None


def _labelled(part: dict, text: str) -> str:
    return f"{part['label']}: {text}" if part.get("label") else text


def what_decides(entry: dict) -> Decision | None:
    """What would decide `entry` (a claim of `verdicts.data`); None for a claim that is decided,
    untestable, or judged at a scale that decides nothing."""
    scale = entry["scale"]["profile"]
    if entry["verdict"] != claims.INCONCLUSIVE or not profiles.get(scale).decides:
        return None
    undecided = [p for p in entry["parts"] if p["verdict"] == claims.INCONCLUSIVE]
    bounded = [p for p in undecided if p.get("lower") is not None]
    if not bounded or entry.get("stand_in"):
        higher = next_profile(entry["chapter"], scale)
        if higher is None:
            return Decision("no larger scale of this chapter computes it")
        minutes = _profile_minutes(entry["chapter"], higher)
        return Decision(f"the {higher} profile computes it: {_cost(minutes)} for the chapter's claims", profile=higher,
                        cpu_minutes=minutes and minutes["CPU"], gpu_minutes=minutes and minutes["GPU"])
    held = [p for p in bounded if not p["reason"].startswith("bounds")]
    if held:
        return Decision(f"a design that passes the guard holding it ({_labelled(held[0], held[0]['reason'].split(';')[0])}); "
                        "more seeds of this one do not")
    sized = [(p, *claims.seeds_to_decide(p)) for p in bounded]
    unsized = [(p, why) for p, n, why in sized if n is None]
    if unsized:
        part, why = unsized[0]
        return Decision(f"no number of seeds can be planned for this design ({_labelled(part, why)})")
    seeds = max(n for _, n, _ in sized)
    n = min(p["n"] for p in bounded)
    keys = {k for p in bounded for k in p.get("records") or []}
    per_seed = math.ceil(len(keys) / n) if n else 0
    models = (seeds - n) * per_seed
    if models == 0:
        return Decision(f"this design already has 80 % power for the effect the claim needs at its {n} seeds (at the "
                        "spread seen) and still did not decide: the effect may be smaller than the claim needs; more "
                        "seeds narrow the bounds either way", seeds, 0)
    try:
        configs = claim_configs(entry["chapter"], scale)
    except DataUnavailable as exc:  # a chapter that sizes its models from the data (BIPARO's pixel spread)
        UNPLANNED.add(str(exc).splitlines()[0])
        configs = {}
    known = [configs[k] for k in keys if k in configs]
    minutes = _minutes(known) if known else None
    if minutes is not None:
        minutes = {kind: m / len(known) * models for kind, m in minutes.items()}
    return Decision(f"about {seeds} paired seeds at the spread seen ({models} more models: {_cost(minutes)})",
                    seeds, models, minutes and minutes["CPU"], minutes and minutes["GPU"])


def show(chapter: str, rows: list[dict], settings: dict) -> None:
    """Display, under a chapter's claims, what would decide each claim left inconclusive there."""
    from IPython.display import Markdown, display

    lines = []
    for r in rows:
        decision = what_decides({"chapter": chapter, "verdict": r["verdict"], "parts": r.get("parts", []),
                                 "stand_in": r.get("stand_in", ""), "scale": {"profile": settings["profile"]}})
        if decision:
            lines.append(f"- **{r['claim']}**: {decision.text}.")
    if lines:
        source = " and ".join(f"{r.source}" for r in rates().values())
        display(Markdown("**What would decide the undecided claims.** Seeds are extrapolated from the spread this "
                         "design shows (80 % power at the rule's level); minutes are planned by `advbook.planning` "
                         f"from {source}, not measured.\n\n" + "\n".join(lines)))
