"""Claims as data, and the one rule that judges them, for the whole book.

A `Claim` names what a paper says, the paper's number, which two cells of our results are
compared (A and B, paired by training seed), and in which way: A above B ("greater"), below
("less"), or within a margin of it ("within"). `judge` applies the book's rule to the paired
per-seed differences d_i = A_i - B_i (percentage points for accuracies):

- fewer than 3 pairs: *inconclusive at this scale*;
- "greater" / "less": *confirmed* when the mean difference has the claimed sign and exceeds
  2 standard errors; *not confirmed* when it has the opposite sign beyond 2 SE, or when no effect
  is seen (|mean| <= 2 SE) although the 2 SE band is below half the paper's effect (an effect the
  size the paper reports would have shown); otherwise inconclusive;
- "within" a margin m of a center c (default 0): confirmed when |mean - c| + 2 SE <= m, not
  confirmed when |mean - c| - 2 SE > m.

- "at most" (non-superiority, "no X beats Y"): confirmed when mean + 2 SE <= margin (default 0
  points: A is not above B by more than the margin), not confirmed when A is above B beyond 2 SE.

With 3 seeds this is a screening rule, not a significance test; the chapters say so. A smoke
run never confirms or refutes anything. A claim with several parts (an "under every attacker"
claim, say) is confirmed when every part is, not confirmed when any part is not; a part fixed by
construction is a `fact`, shown and never judged.

A verdict is only as good as its weakest comparison, so five guards apply before the rule speaks
(each names itself in the verdict's reason):

1. **Same images.** The two sides of an accuracy comparison must have been measured on the same
   test images with the same attack seed: `paired_differences` refuses (`MismatchedImages`, one
   line naming both) to pair cells whose evaluation records say otherwise.
2. **Models that learned.** A comparison involving a model whose clean accuracy is below
   chance + `LEARNED_MARGIN` points (or below the chapter's stated floor) is inconclusive: "a
   compared model did not learn".
3. **Refute only where an effect could show.** A "not confirmed" from accuracies needs both sides
   away from 0 % and 100 % by more than half the paper's effect (`FLOOR_POINTS` where the paper
   gives no number); otherwise it is inconclusive at a floor or ceiling. A "within" confirmation
   that the floor or ceiling forces (no difference larger than the margin was possible) is
   inconclusive too.
4. **Identical in every seed** (a quantity fixed by construction, or both sides at a floor) is
   never evidence: inconclusive, and a chapter states such a quantity as a `fact`.
5. **A baseline that works.** Where B is a baseline the paper shows robust (`Claim.baseline`
   names it) and ours sits within `FLOOR_POINTS` of 0 % on every seed, any verdict against it is
   inconclusive: beating a baseline that never became robust says nothing about the paper's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from .errors import MismatchedImages  # noqa: F401  (raised here, part of this module's API)

CONFIRMED, NOT_CONFIRMED, INCONCLUSIVE = "confirmed", "not confirmed", "inconclusive at this scale"
VERDICTS = (CONFIRMED, NOT_CONFIRMED, INCONCLUSIVE)
FACT = "fact, fixed by construction"  # a part shown beside the judged ones, never judged
SHOWN = "shown, not judged"             # a measured part the claim does not rest on
KINDS = ("greater", "less", "within", "at most")
LEARNED_MARGIN = 10.0  # points above chance a compared model's clean accuracy must reach
FLOOR_POINTS = 2.0     # a side within this of 0 % or 100 % sits at a floor or ceiling
OTHERS_TOLERANCE = 0.1  # CPUs other processes may keep busy on average while a timed model trains




@dataclass(frozen=True)
class Claim:
    text: str                    # what the paper says, in a sentence
    paper: str                   # the paper's number(s), as the paper gives them
    kind: str = "greater"        # A above B, A below B, or A within `margin` of B
    paper_effect: float | None = None   # the paper's A - B, in the units compared (points)
    margin: float | None = None  # for "within": |A - B - center| <= margin
    center: float = 0.0
    definition: str = ""         # how we made the claim operational, in words
    unit: str = "points"
    baseline: str = ""           # B is this baseline, which the paper shows robust (guard 5); "" if B is not one

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"claim kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "within" and (self.margin is None or self.margin < 0):
            raise ValueError(f"a 'within' claim needs a non-negative margin: {self.text}")
        if self.kind == "at most" and self.margin is not None and self.margin < 0:
            raise ValueError(f"an 'at most' claim's margin must be non-negative: {self.text}")


@dataclass(frozen=True)
class Judgement:
    verdict: str
    mean: float = float("nan")   # mean paired difference A - B
    se: float = float("nan")     # its standard error
    n: int = 0                   # pairs (seeds)
    reason: str = ""
    parts: tuple = field(default_factory=tuple)

    def evidence(self, unit: str = "points") -> str:
        if self.parts:
            return "; ".join(f"{label}: {p.evidence(unit)}" for label, p in self.parts)
        if self.verdict == FACT:
            return f"fact: {self.reason}"
        if self.verdict == SHOWN and self.n == 0:
            return "no data"
        if self.verdict == SHOWN:
            return f"{self.mean:+.2f} ± {self.se:.2f} {unit} (n = {self.n}, shown, not judged)"
        if self.n == 0 or math.isnan(self.mean):
            return "no data"
        return f"{self.mean:+.2f} ± {self.se:.2f} {unit} (n = {self.n})"


def images_of(record: dict) -> dict[str, str]:
    """{metric name: the test images and attack seed it was measured on} for a chapter record
    (`experiments.combine`'s), one entry per evaluation; a sweep's point also answers to
    'NAME VALUE' and 'NAME {float(VALUE):g}', the forms chapters' rows use."""
    marks = {spec["name"]: spec.get("sweep") for spec in (record.get("config") or {}).get("evaluate", [])}
    out = {}
    for name, evaluation in record["evaluations"].items():
        test = evaluation.get("test") or {}
        selection = f"test subset {test['test']} (seed {test.get('seed', 0)})" if test.get("test") else "test split"
        spec = evaluation["spec"]
        out[name] = identity = f"{selection}, first {evaluation['result']['n']}, attack seed {spec.get('seed', 0)}"
        if marks.get(name):
            group, value = marks[name]["name"], marks[name]["value"]
            out[f"{group} {value}"] = identity
            if isinstance(value, (int, float)):
                out[f"{group} {float(value):g}"] = identity
    return out


def cell_fields(record: dict, floor: float | None = None, clean_metric: str = "clean") -> dict:
    """What a chapter's summary row needs for the guards: which images each metric was measured
    on, the model's clean accuracy, chance for its dataset, and the chapter's stated floor (a
    clean accuracy below which a model counts as not learned, as a fraction)."""
    clean = record["metrics"].get(clean_metric)
    return {"images": images_of(record), "model_clean": clean if isinstance(clean, float) else None,
            "chance": 1 / record["dataset"].get("num_classes", 10), "learned_floor": floor,
            "timing": {"device": record.get("train_device", record.get("device")), "load": record.get("load_average"),
                       "cpus": record.get("cpu_count"), "others": record.get("other_cpus")}}


def untimed(rows: list[dict]) -> str | None:
    """Why the wall times of `rows` cannot decide a claim, or None: every model must have been
    trained on one device, on a machine that ran nothing else meanwhile (other processes kept at
    most `OTHERS_TOLERANCE` CPUs busy on average, recorded with the model); otherwise a
    difference in seconds may be the neighbours' work. A record older than that measurement
    holds only the 1-minute load average at its start, which must then be below the CPU count
    (a conservative test: it also counts the process's own previous model)."""
    timings = [r.get("timing") or {} for r in rows]
    if not timings:
        return "no timed models"
    devices = {t.get("device") for t in timings}
    if len(devices) > 1:
        return f"timed on different devices ({', '.join(sorted(map(str, devices)))})"
    unknown = [t for t in timings if t.get("others") is None and (t.get("load") is None or not t.get("cpus"))]
    if unknown:
        return (f"{len(unknown)} of {len(timings)} models were timed without a record of the machine's load, so "
                "a shared machine cannot be ruled out")
    shared = [t for t in timings if t.get("others") is not None and t["others"] > OTHERS_TOLERANCE]
    if shared:
        return (f"{len(shared)} of {len(timings)} models were timed while other processes kept "
                f"{max(t['others'] for t in shared):.2f} CPUs busy on average (at most {OTHERS_TOLERANCE} allowed)")
    busy = [t for t in timings if t.get("others") is None and t["load"] >= t["cpus"]]
    if busy:
        return (f"{len(busy)} of {len(timings)} models were timed without a measure of other processes, and "
                f"the load when they started (up to {max(t['load'] for t in busy):.1f} on {busy[0]['cpus']} CPUs, "
                "this process's previous work included) cannot rule them out")
    return None


def learned_need(chance: float, floor: float | None = None) -> float:
    """The clean accuracy (percent) a model must reach to count as having learned: chance +
    `LEARNED_MARGIN` points, or the chapter's stated floor if higher."""
    return max(100 * chance + LEARNED_MARGIN, 100 * (floor or 0))


def training_failures(records: list[dict], clean_metric: str = "clean", floor: float | None = None) -> list[str]:
    """'LABEL: k of n seeds did not learn (clean C %, needs N %)' per trained variant with a
    model below the learned threshold: the line a chapter shows so that nobody reads a failed
    training as a finding."""
    groups: dict[str, list] = {}
    for r in records:
        cfg = r["config"]
        label = " ".join(str(v) for v in (cfg.get("arch"), cfg.get("variant") or cfg.get("configuration")
                                          or cfg["train"]["defense"]) if v)
        groups.setdefault(label, []).append(r)
    out = []
    for label, group in groups.items():
        need = learned_need(1 / group[0]["dataset"].get("num_classes", 10), floor)
        cleans = [100 * r["metrics"][clean_metric] for r in group if isinstance(r["metrics"].get(clean_metric), float)]
        failed = [c for c in cleans if c < need]
        if failed:
            out.append(f"{label}: {len(failed)} of {len(cleans)} seeds did not learn (clean "
                       f"{', '.join(f'{c:.1f}' for c in failed)} %, needs {need:.0f} %)")
    return out


THREAT_PREFIXES = ("naive ", "unaware ", "eot ")


def _images(row: dict, metric: str) -> str | None:
    """Which images `row`'s `metric` was measured on; None for a quantity that is not an
    evaluation (seconds, epochs, gradient counts). A threat-model column of a deterministic model
    ('eot pgd-linf') is its plain attack's."""
    images = row.get("images") or {}
    if metric in images:
        return images[metric]
    for prefix in THREAT_PREFIXES:
        if metric.startswith(prefix) and metric[len(prefix):] in images:
            return images[metric[len(prefix):]]
    return None


class Side(dict):
    """One cell of a comparison, {seed: value}, with what the guards need per seed: the images
    each value was measured on, the model's clean accuracy, chance and the chapter's floor."""

    def __init__(self, label: str, rows: list[dict], metric: str):
        super().__init__({r["seed"]: r[metric] for r in rows})
        self.label = label
        self.images = {r["seed"]: _images(r, metric) for r in rows}
        self.clean = {r["seed"]: r.get("model_clean", r.get("clean")) for r in rows}
        self.chance = {r["seed"]: r.get("chance", 0.1) for r in rows}
        self.floor = {r["seed"]: r.get("learned_floor") for r in rows}

    @property
    def is_accuracy(self) -> bool:
        return bool(self) and all(v is not None for v in self.images.values())

    def not_learned(self, seeds=None) -> list[str]:
        """'LABEL seed S at C % clean' for every seed (of `seeds`, default all) whose model did
        not learn."""
        out = []
        for seed, clean in sorted(self.clean.items()):
            if seeds is not None and seed not in seeds or not isinstance(clean, (int, float)):
                continue
            need = learned_need(self.chance[seed], self.floor[seed])
            if 100 * clean < need:
                out.append(f"{self.label} seed {seed} at {100 * clean:.1f} % clean (needs {need:.0f} %)")
        return out


def by_seed(rows: list[dict], metric: str, **match) -> Side:
    """The cell {seed: value} of `metric` over the rows whose fields equal `match`
    (e.g. `by_seed(rows, "pgd", variant="PGD-AT")`); rows without the metric are left out."""
    selected = [r for r in rows if all(r.get(k) == v for k, v in match.items()) and r.get(metric) is not None]
    label = " ".join(str(v) for v in match.values())
    return Side(f"{label} {metric}".strip(), selected, metric)


def mean(values) -> float | None:
    """The mean of a cell's values (None for an empty cell)."""
    values = list(values.values()) if isinstance(values, dict) else list(values)
    return sum(values) / len(values) if values else None


class Paired(list):
    """Paired per-seed differences A_i - B_i, carrying the two cells they came from."""

    def __init__(self, diffs, a=None, b=None, scale: float = 100.0):
        super().__init__(diffs)
        self.a, self.b, self.scale = a, b, scale

    def levels(self) -> tuple[float, float] | None:
        """The two sides' mean levels in percent, where both are accuracies."""
        if isinstance(self.a, Side) and isinstance(self.b, Side) and self.a.is_accuracy and self.b.is_accuracy \
                and self.scale == 100.0:
            seeds = sorted(set(self.a) & set(self.b))
            if seeds:
                return (100 * sum(self.a[s] for s in seeds) / len(seeds),
                        100 * sum(self.b[s] for s in seeds) / len(seeds))
        return None

    def not_learned(self) -> list[str]:
        seeds = set(self.a or {}) & set(self.b or {})
        out = [m for side in (self.a, self.b) if isinstance(side, Side) for m in side.not_learned(seeds)]
        return list(dict.fromkeys(out))  # a model compared with itself is named once


class Declined(Paired):
    """A comparison the guards refused (two cells measured on different images), carried to the
    verdict so that the claim part says why it was not judged."""

    def __init__(self, reason: str):
        super().__init__([])
        self.reason = reason


def paired_differences(a: dict, b: dict, scale: float = 100.0) -> Paired:
    """A_i - B_i for the seeds present in both ({seed: value} each), times `scale`
    (accuracies in [0, 1] become percentage points). Two cells measured on different images or
    attack seeds are refused (`MismatchedImages`)."""
    seeds = sorted(set(a) & set(b))
    if isinstance(a, Side) and isinstance(b, Side):
        for s in seeds:
            ia, ib = a.images.get(s), b.images.get(s)
            if (ia is None) != (ib is None) or ia != ib:
                raise MismatchedImages(f"'{a.label}' (seed {s}) was measured on {ia or 'no test images'} and "
                                       f"'{b.label}' on {ib or 'no test images'}: a comparison needs the same "
                                       "images and attack seed on both sides")
    return Paired([scale * (a[s] - b[s]) for s in seeds], a, b, scale)


def fact(text: str) -> Judgement:
    """A part fixed by construction (equal gradient counts of two algorithms that spend the same
    number by design, say): shown beside the judged parts, never judged."""
    return Judgement(FACT, reason=text)


def shown(diffs: list[float], why: str) -> Judgement:
    """A measured part shown beside a claim's judged parts (an overhead the claim does not rest
    on, say): its mean and SE, never a verdict."""
    n = len(diffs)
    mean_ = sum(diffs) / n if n else float("nan")
    se = math.sqrt(sum((d - mean_) ** 2 for d in diffs) / (n - 1) / n) if n > 1 else float("nan")
    return Judgement(SHOWN, mean_, se, n, why)


def judge(claim: Claim, diffs: list[float], profile: str = "cpu") -> Judgement:
    """The book's verdict for `claim` from the paired per-seed differences A_i - B_i, after the
    guards (see the module's docstring)."""
    if isinstance(diffs, Declined):
        return Judgement(INCONCLUSIVE, reason=f"not compared: {diffs.reason}")
    judgement = _rule(claim, diffs, profile)
    if judgement.verdict == INCONCLUSIVE or not isinstance(diffs, Paired):
        return judgement
    failed = diffs.not_learned()
    if failed:
        return replace(judgement, verdict=INCONCLUSIVE,
                       reason="a compared model did not learn: " + "; ".join(failed))
    if judgement.se == 0 and judgement.mean == 0:
        return replace(judgement, verdict=INCONCLUSIVE,
                       reason="identical in every seed: fixed by construction or both sides at a floor")
    if claim.baseline and isinstance(diffs.b, Side) and diffs.scale == 100.0 \
            and 100 * max(diffs.b[s] for s in set(diffs.a) & set(diffs.b)) <= FLOOR_POINTS:
        return replace(judgement, verdict=INCONCLUSIVE,
                       reason=f"{claim.baseline} did not become robust at this scale (at most {FLOOR_POINTS:g} % "
                              "on every seed): a comparison with it says nothing about the paper's baseline")
    levels = diffs.levels()
    if levels is None:
        return judgement
    low, high = min(levels), max(levels)
    a, b = f"{diffs.a.label} {levels[0]:.1f} %", f"{diffs.b.label} {levels[1]:.1f} %"
    if claim.kind == "within" and judgement.verdict == CONFIRMED:
        largest_possible = min(high, 100 - low)  # |A - B| can exceed neither the higher level nor 100 - the lower
        if largest_possible <= claim.margin + abs(claim.center):
            return replace(judgement, verdict=INCONCLUSIVE,
                           reason=f"forced by a floor or ceiling ({a}, {b}): no difference beyond "
                                  f"{claim.margin:g} points was possible")
    if claim.kind in ("greater", "less", "at most") and judgement.verdict == NOT_CONFIRMED:
        width = abs(claim.paper_effect) / 2 if claim.paper_effect is not None else FLOOR_POINTS
        if low <= width or high >= 100 - width:
            where = "half the paper's effect" if claim.paper_effect is not None else "the book's floor"
            return replace(judgement, verdict=INCONCLUSIVE,
                           reason=f"at a floor or ceiling ({a}, {b}): a side within {where} ({width:.2f}) of "
                                  "0 % or 100 %, so the paper's effect could not have shown")
    return judgement


def _rule(claim: Claim, diffs: list[float], profile: str) -> Judgement:
    """The rule alone: paired differences, n >= 3, 2 standard errors."""
    n = len(diffs)
    if n == 0:
        return Judgement(INCONCLUSIVE, n=0, reason="no paired results")
    mean = sum(diffs) / n
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n) if n > 1 else float("nan")
    if profile == "smoke":
        return Judgement(INCONCLUSIVE, mean, se, n, "a smoke run decides nothing")
    if n < 3:
        return Judgement(INCONCLUSIVE, mean, se, n, f"{n} paired seeds; the rule needs at least 3")
    band = 2 * se
    if claim.kind == "within":
        off = abs(mean - claim.center)
        where = f"{claim.margin:g} of {claim.center:g}" if claim.center else f"{claim.margin:g}"
        if off + band <= claim.margin:
            return Judgement(CONFIRMED, mean, se, n, f"mean ± 2 SE within {where}")
        if off - band > claim.margin:
            return Judgement(NOT_CONFIRMED, mean, se, n, f"mean ± 2 SE beyond {where}")
        return Judgement(INCONCLUSIVE, mean, se, n, f"the 2 SE band straddles the bound ({where})")
    if claim.kind == "at most":
        margin = claim.margin or 0.0
        if mean + band <= margin:
            return Judgement(CONFIRMED, mean, se, n, f"mean + 2 SE at most {margin:g}: A is not above B")
        if mean - band > 0:
            return Judgement(NOT_CONFIRMED, mean, se, n, "A above B beyond 2 SE")
        return Judgement(INCONCLUSIVE, mean, se, n, f"mean + 2 SE above {margin:g}, but A is not above B "
                                                    "beyond 2 SE")
    sign = 1 if claim.kind == "greater" else -1
    if sign * mean > band:
        return Judgement(CONFIRMED, mean, se, n, "the claimed sign, beyond 2 SE")
    if -sign * mean > band:
        return Judgement(NOT_CONFIRMED, mean, se, n, "the opposite sign, beyond 2 SE")
    half_effect = abs(claim.paper_effect) / 2 if claim.paper_effect is not None else None
    if se == 0 and mean == 0:
        return Judgement(NOT_CONFIRMED, mean, se, n, "no difference at all, in every seed")
    if half_effect is not None and band < half_effect:
        return Judgement(NOT_CONFIRMED, mean, se, n,
                         f"no effect seen, and 2 SE ({band:.2f}) is below half the paper's effect ({half_effect:.2f})")
    return Judgement(INCONCLUSIVE, mean, se, n, "within 2 SE of no effect, and too noisy to rule the paper's "
                                                "effect out")


def all_of(parts: list[tuple[str, Judgement]]) -> Judgement:
    """A claim made of several comparisons: confirmed if all are, not confirmed if any is not."""
    facts = [(label, j) for label, j in parts if j.verdict not in VERDICTS]
    judged = [(label, j) for label, j in parts if j.verdict in VERDICTS]
    verdicts = [j.verdict for _, j in judged]
    if judged and all(v == CONFIRMED for v in verdicts):
        verdict, reason = CONFIRMED, "every part confirmed"
    elif NOT_CONFIRMED in verdicts:
        verdict = NOT_CONFIRMED
        reason = "not confirmed for " + ", ".join(label for label, j in judged if j.verdict == NOT_CONFIRMED)
        # a part left undecided says so, or its number would read as decided beside the refuted ones
        reason += "".join(f"; undecided, {label}: {j.reason}" for label, j in judged if j.verdict == INCONCLUSIVE)
    else:
        undecided = [(label, j) for label, j in judged if j.verdict == INCONCLUSIVE]
        verdict = INCONCLUSIVE
        reason = (f"{len(undecided)} of {len(judged)} parts inconclusive, e.g. {undecided[0][0]}: "
                  f"{undecided[0][1].reason}") if undecided else "nothing to judge: " + (
                      "; ".join(j.reason for _, j in facts) if facts else "no data")
    if facts and judged:
        reason += " (" + "; ".join(f"{label}: {j.reason}" for label, j in facts) + ")"
    return Judgement(verdict, reason=reason, parts=tuple(parts), n=min((j.n for _, j in judged), default=0))


def row(claim: Claim, judgement: Judgement, **extra) -> dict:
    """One row of a chapter's claims table."""
    return {"claim": claim.text, "paper": claim.paper, "ours (A - B, mean ± SE)": judgement.evidence(claim.unit),
            "verdict": judgement.verdict, "why": judgement.reason, "how we read it": claim.definition, **extra}


def diffs(rows: list[dict], a, b, metric: str, metric_b: str | None = None, *, key: str = "variant",
          scale: float = 100.0, decline: bool = False, **common) -> Paired:
    """Paired differences of `metric` between the rows whose `key` is `a` and those whose `key`
    is `b` (B under `metric_b` if given), both also matching `common`: the guards apply. Cells on
    different images raise `MismatchedImages`; with `decline` (for records computed before a
    chapter measured both sides alike) the comparison is returned `Declined`, and its verdict is
    inconclusive with the reason."""
    try:
        return paired_differences(by_seed(rows, metric, **common, **{key: a}),
                                  by_seed(rows, metric_b or metric, **common, **{key: b}), scale)
    except MismatchedImages as exc:
        if not decline:
            raise
        return Declined(str(exc))
