"""Claims as data, and the one rule that judges them, for the whole book (rule v3).

A `Claim` names what a paper says, the paper's number, which two cells of our results are
compared (A and B, paired by training seed), and in which way: A above B ("greater"), below
("less"), within a margin of it ("within"), or not above it by more than a margin ("at most").
`judge` applies the rule to the paired per-seed differences d_i = A_i - B_i (percentage points for
accuracies), with one-sided Student-t bounds on their mean, L = mean - t(LEVEL, n - 1) * SE and
U = mean + t(LEVEL, n - 1) * SE. Each bound is meant to err at most 5 % of the time. At 3 to 10
seeds a t bound at 0.95 errs more than that when the differences are skewed (simulated: up to 11 %
at skewness 1, the skew one seed that trains unlike the others gives), so `LEVEL` is 0.985, the level at which
it errs at most 5 % for normal and skewed differences up to skewness 1 at every n from 3 to 10 (and
about 1.5 % for normal ones); `tests/test_rule.py` measures it. Every such bound is also a 95 %
bound: a confirmed "greater" part has mean - t(0.95, n - 1) * SE > 0 too.

- fewer than `MIN_PAIRS` pairs: *inconclusive at this scale*;
- "greater": *confirmed* when L > 0; *not confirmed* when U < 0 (the opposite sign) or U lies below
  the smallest effect the claim needs (`Claim.min_effect`, by default half the paper's effect: a
  minimum-effect test); otherwise inconclusive. "less" is its mirror image;
- "within" a margin m of a center c: two one-sided tests, confirmed when c - m < L and U < c + m,
  not confirmed when L > c + m or U < c - m;
- "at most" a margin m (non-superiority, "no X beats Y", m = 0 by default): confirmed when U < m,
  not confirmed when L > m (the margin honoured in both branches).

The standard error includes the sampling of test images: where every seed was measured on the same
images, SE^2 = s^2 / n + V / N, N the images and V the per-image variance of the seed-mean
difference, measured from the per-image outcomes both sides recorded (`advbook.per_image`), or
for records made before those, the largest that the two accuracies allow (the worst agreement
between A and B); a design that draws its own test images per seed has the images' sampling in
its seed-to-seed spread already. Every part also states the smallest effect it could have
detected with 80 % power (`min_detectable`).

A robust accuracy that a claim reads is the per-image worst case over the chapter's suite of
attacks at that threat model (`advbook.per_image`, AutoAttack's principle): an image counts only
if it survives every attack of the suite, the same suite on the same images on both sides (the
suite is part of the images' identity, so guard 1 pairs nothing else). Each attack's own number
stays in the tables and in the masking checklist, which compares attacks one by one. For a model
randomized at test time each attack's share of an image's noise draws is an estimate, and the
lowest of several estimates is biased low: its robust accuracy is bracketed by that worst case
and one attack's own accuracy, fixed in advance (`per_image.one_attack`: EOT's, not biased low),
and a part comparing it is decided only where both ends give the same verdict.

A claim of several parts is confirmed when every part is (an intersection-union test: no
correction needed) and not confirmed when a part is refuted after Holm's correction over the
judged parts, at the bounds' own level (so that the claim-level false-refutation rate stays at 5 %); a part refuted alone but
not after the correction reads inconclusive and says so. A part fixed by construction is a `fact`,
and a measured part the claim does not rest on is `shown`: neither is judged. A claim that no
experiment can decide in the paper's form is *untestable as stated* (`untestable`), with why.
`tests/test_rule.py` measures the rule's error rates by simulation.

A verdict is only as good as its weakest comparison, so six guards apply after the rule (each
names itself in the verdict's reason):

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
6. **Robust accuracies that are believed.** Where the book's masking checklist (`advbook.masking`)
   flags a compared model with a sign of masking, its robust accuracies read as upper bounds, not
   measurements, and any verdict on them is inconclusive: "a compared robust accuracy is not
   believed". A chapter marks them per metric in its rows (`not_believed`: {metric: why}).

A smoke run decides nothing: `Chapter.judge` applies that once for every page (`decided_at`).
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, replace

from . import per_image
from .errors import MismatchedImages

CONFIRMED, NOT_CONFIRMED, INCONCLUSIVE = "confirmed", "not confirmed", "inconclusive at this scale"
UNTESTABLE = "untestable as stated"
VERDICTS = (CONFIRMED, NOT_CONFIRMED, INCONCLUSIVE, UNTESTABLE)
FACT = "fact, fixed by construction"  # a part shown beside the judged ones, never judged
SHOWN = "shown, not judged"             # a measured part the claim does not rest on
KINDS = ("greater", "less", "within", "at most")
LEVEL = 0.985          # the one-sided t level of each bound: at most 5 % error up to skewness 1 (see the docstring)
ALPHA = 1 - LEVEL      # a part's test level, at which Holm's correction refutes a claim of several parts
POWER = 0.80           # the power at which a part states the smallest effect it could have detected
MIN_PAIRS = 3          # fewer paired seeds decide nothing (new designs use at least 5)
LEARNED_MARGIN = 10.0  # points above chance a compared model's clean accuracy must reach
FLOOR_POINTS = 2.0     # a side within this of 0 % or 100 % sits at a floor or ceiling
OTHERS_TOLERANCE = 0.1  # CPUs other processes may keep busy on average while a timed model trains
OURS = "ours (A - B: mean [lower, upper bound])"  # the claims table's column of our evidence


@functools.lru_cache(maxsize=None)
def t_quantile(p: float, df: int) -> float:
    """Student's t quantile."""
    from scipy.stats import t
    return float(t.ppf(p, df))


def t_cdf(x: float, df: int) -> float:
    from scipy.stats import t
    return float(t.cdf(x, df))


@dataclass(frozen=True)
class Claim:
    text: str                    # what the paper says, in a sentence
    paper: str                   # the paper's number(s), as the paper gives them
    kind: str = "greater"        # A above B, A below B, or A within `margin` of B
    paper_effect: float | None = None   # the paper's A - B, in the units compared (points)
    margin: float | None = None  # for "within": |A - B - center| <= margin; for "at most": A - B <= margin
    center: float = 0.0
    definition: str = ""         # how we made the claim operational, in words
    unit: str = "points"
    baseline: str = ""           # B is this baseline, which the paper shows robust (guard 5); "" if B is not one
    min_effect: float | None = None  # "greater"/"less": the smallest |A - B| the claim needs (default: half the paper's)
    min_effect_why: str = ""     # why that is the smallest effect the claim needs, from the paper

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"claim kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "within" and (self.margin is None or self.margin < 0):
            raise ValueError(f"a 'within' claim needs a non-negative margin: {self.text}")
        if self.kind == "at most" and self.margin is not None and self.margin < 0:
            raise ValueError(f"an 'at most' claim's margin must be non-negative: {self.text}")
        if self.min_effect is not None and (self.min_effect < 0 or not self.min_effect_why):
            raise ValueError(f"a claim's minimum effect is non-negative and says why: {self.text}")

    def needed_effect(self) -> tuple[float, str]:
        """(the smallest |A - B| the claim needs, why): the claim's own, else half the paper's
        effect, else 0 (only the opposite sign refutes)."""
        if self.min_effect is not None:
            return self.min_effect, self.min_effect_why
        if self.paper_effect is not None:
            return abs(self.paper_effect) / 2, "half the paper's effect"
        return 0.0, "the paper gives no effect size"


@dataclass(frozen=True)
class Judgement:
    verdict: str
    mean: float = float("nan")   # mean paired difference A - B
    se: float = float("nan")     # its standard error, the sampling of test images included
    n: int = 0                   # pairs (seeds)
    reason: str = ""
    parts: tuple = field(default_factory=tuple)
    lower: float = float("nan")  # the rule's one-sided lower bound on the mean difference (t at LEVEL)
    upper: float = float("nan")  # its one-sided upper bound
    min_detectable: float = float("nan")  # the smallest effect this design detects with 80 % power
    p_refute: float = 1.0        # one-sided p-value of the refutation test (Holm's input)
    diffs: tuple = ()            # the per-seed differences
    claim: Claim | None = None   # the claim (or part) this judged
    images: int | None = None    # test images each side was measured on (per seed)
    records: tuple = ()          # the model keys behind both sides
    image_variance: float = 0.0  # the part of se^2 that the sampling of shared test images adds
    stand_in: str = ""           # the paper's model this design's stands in for: no verdict here is one on
                                 # the claim, and no number of seeds of this design decides it

    def inconclusive(self, reason: str) -> "Judgement":
        """The same numbers, undecided, with why (a chapter's caveat that the rule cannot see)."""
        return replace(self, verdict=INCONCLUSIVE, reason=reason)

    def evidence(self, unit: str = "points") -> str:
        if self.parts:
            return "; ".join(f"{label}: {p.evidence(unit)}" for label, p in self.parts)
        if self.verdict == FACT:
            return f"fact: {self.reason}"
        if self.n == 0 or math.isnan(self.mean):
            return "no data"
        if self.verdict == SHOWN or math.isnan(self.lower):
            return f"{self.mean:+.2f} {unit} (n = {self.n}" + (", shown, not judged)" if self.verdict == SHOWN else ")")
        return f"{self.mean:+.2f} [{self.lower:+.2f}, {self.upper:+.2f}] {unit} (n = {self.n})"


def _by_metric(record: dict) -> dict[str, dict]:
    """{metric name: its evaluation record} for a chapter record (`experiments.combine`'s); a
    sweep's point also answers to 'NAME VALUE' and 'NAME {float(VALUE):g}', the forms chapters'
    rows use."""
    marks = {spec["name"]: spec.get("sweep") for spec in (record.get("config") or {}).get("evaluate", [])}
    out = {}
    for name, evaluation in record["evaluations"].items():
        out[name] = evaluation
        if marks.get(name):
            group, value = marks[name]["name"], marks[name]["value"]
            out[f"{group} {value}"] = evaluation
            if isinstance(value, (int, float)):
                out[f"{group} {float(value):g}"] = evaluation
    return out


def images_of(record: dict, evaluations: dict[str, dict] | None = None) -> dict[str, str]:
    """{metric name: the test images and attack seed it was measured on} for a chapter record,
    one entry per evaluation (`_by_metric`'s names, or `evaluations` where the caller has them)."""
    evaluations = _by_metric(record) if evaluations is None else evaluations
    return {name: f"{per_image.selection(e)}, attack seed {e['spec'].get('seed', 0)}"
            for name, e in evaluations.items()}


def cell_fields(record: dict, floor: float | None = None, clean_metric: str = "clean",
                worst: dict[str, per_image.Suite] | None = None) -> dict:
    """What a chapter's summary row needs for the guards: which images each metric was measured
    on and the per-image outcomes there (`per_image.outcomes`, None before they were recorded),
    the model's clean accuracy, chance for its dataset, and the chapter's stated floor (a clean
    accuracy below which a model counts as not learned, as a fraction). `worst`: {row metric:
    suite}, each the per-image worst case over a suite of attacks (`per_image.worst_case`), the
    robust accuracy a claim reads; a record made before per-image outcomes has none."""
    clean = record["metrics"].get(clean_metric)
    evaluations = _by_metric(record)
    # a sweep's point answers to several names: decode each evaluation once
    decoded = {id(e): per_image.outcomes(e) for e in record["evaluations"].values()}
    fields = {"images": images_of(record, evaluations), "model_clean": clean if isinstance(clean, float) else None,
              "outcomes": {name: decoded[id(e)] for name, e in evaluations.items()},
              "model_key": record.get("key"),
              "chance": 1 / record["dataset"].get("num_classes", 10), "learned_floor": floor,
              "timing": {"device": record.get("train_device", record.get("device")), "load": record.get("load_average"),
                         "cpus": record.get("cpu_count"), "others": record.get("other_cpus")}}
    for metric, suite in (worst or {}).items():
        found = per_image.worst_case(record, suite)
        if found is not None:
            fields[metric], fields["images"][metric], fields["outcomes"][metric] = found
    return fields


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


def _of_metric(row: dict, field: str, metric: str):
    """`row[field]`'s entry for `metric` (the images it was measured on, its per-image outcomes);
    None for a quantity that is not an evaluation (seconds, epochs, gradient counts). A
    threat-model column of a deterministic model ('eot pgd-linf') is its plain attack's."""
    found = row.get(field) or {}
    if metric in found:
        return found[metric]
    for prefix in THREAT_PREFIXES:
        if metric.startswith(prefix) and metric[len(prefix):] in found:
            return found[metric[len(prefix):]]
    return None


class Side(dict):
    """One cell of a comparison, {seed: value}, with what the guards need per seed: the images
    each value was measured on, the model's clean accuracy, chance and the chapter's floor."""

    def __init__(self, label: str, rows: list[dict], metric: str):
        super().__init__({r["seed"]: r[metric] for r in rows})
        self.label = label
        self.images = {r["seed"]: _of_metric(r, "images", metric) for r in rows}
        self.outcomes = {r["seed"]: _of_metric(r, "outcomes", metric) for r in rows}
        self.clean = {r["seed"]: r.get("model_clean", r.get("clean")) for r in rows}
        self.chance = {r["seed"]: r.get("chance", 0.1) for r in rows}
        self.floor = {r["seed"]: r.get("learned_floor") for r in rows}
        self.keys = {r["seed"]: r.get("model_key") for r in rows}
        self.doubted = {r["seed"]: (r.get("not_believed") or {}).get(metric) for r in rows}

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

    def __init__(self, diffs, a=None, b=None, scale: float = 100.0, constant: float | None = None):
        super().__init__(diffs)
        self.a, self.b, self.scale, self.constant = a, b, scale, constant  # constant: B is a fixed number

    def seeds(self) -> list:
        if self.constant is not None:
            return sorted(self.a or {})
        return sorted(set(self.a or {}) & set(self.b or {}))

    def accuracies(self) -> bool:
        return isinstance(self.a, Side) and self.a.is_accuracy and self.scale == 100.0 and (
            self.constant is not None or isinstance(self.b, Side) and self.b.is_accuracy)

    def levels(self) -> tuple[float, float] | None:
        """The two sides' mean levels in percent, where both are accuracies."""
        seeds = self.seeds()
        if self.accuracies() and seeds and self.constant is None:
            return (100 * sum(self.a[s] for s in seeds) / len(seeds),
                    100 * sum(self.b[s] for s in seeds) / len(seeds))
        return None

    def images(self) -> int | None:
        """Test images each side was measured on per seed (the fewest), where both are accuracies."""
        if not self.accuracies():
            return None
        counts = [image_count(self.a.images[s]) for s in self.seeds()]
        return min((c for c in counts if c), default=None)

    def image_variance(self) -> float:
        """The variance (points^2) that the sampling of test images adds to the mean difference, where
        every seed was measured on the same images (0 where each seed drew its own, or for a
        quantity that is not an accuracy): measured from the per-image outcomes where both sides
        recorded them, each seed's giving its value (`per_image.image_variance`), else V / N, N the images and V the largest
        per-image variance of the difference the accuracies allow: the share of images on which A
        and B disagree is at most min(A + B, 2 - A - B) in each seed, and the per-image variance of
        the seed-mean difference is at most that share's mean less the squared mean difference
        (Jensen)."""
        seeds, n_images = self.seeds(), self.images()
        if not seeds or not n_images or len({self.a.images[s] for s in seeds}) > 1:
            return 0.0
        a = [self.a[s] for s in seeds]
        if self.constant is not None:
            # one side against a number: the per-image variance of the seed-mean accuracy is at most
            # p (1 - p), p taken as (successes + 1) / (N + 2) so that 0 of N images does not read as certain
            p = (sum(a) / len(a) * n_images + 1) / (n_images + 2)
            return p * (1 - p) / n_images * self.scale ** 2
        per_a, per_b = [self.a.outcomes.get(s) for s in seeds], [self.b.outcomes.get(s) for s in seeds]
        if all(per_image.gives(o, side[s]) for side, per in ((self.a, per_a), (self.b, per_b))
               for s, o in zip(seeds, per)):
            return per_image.image_variance(per_a, per_b) * self.scale ** 2
        b = [self.b[s] for s in seeds]
        disagree = sum(min(x + y, 2 - x - y) for x, y in zip(a, b)) / len(seeds)
        d = sum(x - y for x, y in zip(a, b)) / len(seeds)
        return max(0.0, disagree - d * d) / n_images * self.scale ** 2

    def records(self) -> tuple:
        return tuple(k for side in (self.a, self.b) if isinstance(side, Side)
                     for s, k in sorted(side.keys.items()) if k and s in set(self.seeds()))

    def not_learned(self) -> list[str]:
        seeds = set(self.seeds())
        out = [m for side in (self.a, self.b) if isinstance(side, Side) for m in side.not_learned(seeds)]
        return list(dict.fromkeys(out))  # a model compared with itself is named once

    def not_believed(self) -> list[str]:
        """'LABEL seed S: why' for every paired seed whose value the masking checklist doubts."""
        seeds = set(self.seeds())
        out = [f"{side.label} seed {seed}: {why}" for side in (self.a, self.b) if isinstance(side, Side)
               for seed, why in sorted(side.doubted.items()) if why and seed in seeds]
        return list(dict.fromkeys(out))


def image_count(identity: str | None) -> int | None:
    """The N of 'first N' in an identity `images_of` wrote."""
    found = re.search(r"first (\d+)", identity or "")
    return int(found.group(1)) if found else None


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


def against(a: Side, value: float, scale: float = 100.0) -> Paired:
    """A_i * scale - value for every seed of the cell `a`: one side compared with a fixed number (an
    accuracy with 0 %, say), the sampling of its test images carried to the rule."""
    return Paired([scale * v - value for _, v in sorted(a.items())], a, None, scale, constant=value)


def _curve_difference(rows: list[dict], curve: str, n_images: int, a_of, b_of, match: dict,
                      names=("A", "B")) -> Paired:
    """a_of(values) - b_of(values), the sides named `names`, of each matching row's per-epoch `curve`
    (a validation accuracy, measured on the same `n_images` held-out training images at every epoch
    and in every seed), paired on those images so that their sampling reaches the rule; a row whose
    curve lacks an epoch either side reads is left out."""
    identity = f"validation split, first {n_images}, attack seed 0"
    cells = []
    for r in rows:
        values = r.get(curve) or []
        a, b = a_of(values), b_of(values)
        if a is not None and b is not None:
            cells.append({**r, names[0]: a, names[1]: b, "images": {names[0]: identity, names[1]: identity}})
    return paired_differences(by_seed(cells, names[0], **match), by_seed(cells, names[1], **match))


def best_minus_last(rows: list[dict], curve: str, n_images: int, **match) -> Paired:
    """Each matching row's best epoch of `curve` minus its last (`_curve_difference`). The best of
    several epochs is biased up, which makes a drop look larger: sound only where the claim is that
    there is no drop (a "within" part), never as evidence that there is one (`epochs_minus_epochs`)."""
    def best(values):
        measured = [v for v in values if v is not None]
        return max(measured) if measured and values[-1] is not None else None
    return _curve_difference(rows, curve, n_images, best, lambda values: values[-1] if values else None, match,
                             ("best", "last"))


def epochs_minus_epochs(rows: list[dict], curve: str, n_images: int, early: range, late: range, **match) -> Paired:
    """Each matching row's mean of `curve` over the epochs `early` minus over the epochs `late`
    (1-based, fixed by the claim before any curve is read, so no selection biases the difference
    as the best epoch does); `_curve_difference` pairs them."""
    def window(epochs):
        def of(values):
            picked = [values[e - 1] for e in epochs if 1 <= e <= len(values)]
            return sum(picked) / len(picked) if picked and len(picked) == len(epochs) and None not in picked else None
        return of
    names = tuple(f"epochs {w.start}-{w.stop - 1}" if len(w) > 1 else f"epoch {w.start}" for w in (early, late))
    return _curve_difference(rows, curve, n_images, window(early), window(late), match, names)


def fact(text: str) -> Judgement:
    """A part fixed by construction (equal gradient counts of two algorithms that spend the same
    number by design, say): shown beside the judged parts, never judged."""
    return Judgement(FACT, reason=text)


def untestable(text: str) -> Judgement:
    """A claim no experiment can decide in the form the paper states it (a derivation, a ratio of
    two budgets the authors chose), with why: unlike "inconclusive at this scale", no larger run
    would decide it."""
    return Judgement(UNTESTABLE, reason=text)


def _spread(diffs: list[float]) -> tuple[float, float]:
    n = len(diffs)
    mean_ = sum(diffs) / n if n else float("nan")
    sd = math.sqrt(sum((d - mean_) ** 2 for d in diffs) / (n - 1)) if n > 1 else float("nan")
    return mean_, sd


def shown(diffs: list[float], why: str) -> Judgement:
    """A measured part shown beside a claim's judged parts (an overhead the claim does not rest
    on, say): its mean, never a verdict."""
    mean_, sd = _spread(diffs)
    return Judgement(SHOWN, mean_, sd / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan"), len(diffs), why,
                     diffs=tuple(diffs))


def judge(claim: Claim, diffs: list[float]) -> Judgement:
    """The book's verdict for `claim` from the paired per-seed differences A_i - B_i: the rule,
    then the guards (see the module's docstring)."""
    if isinstance(diffs, Declined):
        return Judgement(INCONCLUSIVE, reason=f"not compared: {diffs.reason}", claim=claim)
    judgement = _rule(claim, diffs)
    if isinstance(diffs, Paired):
        judgement = replace(judgement, images=diffs.images(), records=diffs.records())
    if judgement.verdict == INCONCLUSIVE or not isinstance(diffs, Paired):
        return judgement
    failed = diffs.not_learned()
    if failed:
        return judgement.inconclusive("a compared model did not learn: " + "; ".join(failed))
    doubted = diffs.not_believed()
    if doubted:
        return judgement.inconclusive("a compared robust accuracy is not believed (the masking checklist flags its "
                                      "model): " + "; ".join(doubted))
    if judgement.n and all(d == 0 for d in judgement.diffs) and diffs.constant is None:
        return judgement.inconclusive("identical in every seed: fixed by construction or both sides at a floor")
    if claim.baseline and isinstance(diffs.b, Side) and diffs.scale == 100.0 \
            and 100 * max(diffs.b[s] for s in diffs.seeds()) <= FLOOR_POINTS:
        return judgement.inconclusive(f"{claim.baseline} did not become robust at this scale (at most "
                                      f"{FLOOR_POINTS:g} % on every seed): a comparison with it says nothing about "
                                      "the paper's baseline")
    levels = diffs.levels()
    if levels is None:
        return judgement
    low, high = min(levels), max(levels)
    a, b = f"{diffs.a.label} {levels[0]:.1f} %", f"{diffs.b.label} {levels[1]:.1f} %"
    if claim.kind == "within" and judgement.verdict == CONFIRMED:
        largest_possible = min(high, 100 - low)  # |A - B| can exceed neither the higher level nor 100 - the lower
        if largest_possible <= claim.margin + abs(claim.center):
            return judgement.inconclusive(f"forced by a floor or ceiling ({a}, {b}): no difference beyond "
                                          f"{claim.margin:g} points was possible")
    if claim.kind in ("greater", "less", "at most") and judgement.verdict == NOT_CONFIRMED:
        width = abs(claim.paper_effect) / 2 if claim.paper_effect is not None else FLOOR_POINTS
        if low <= width or high >= 100 - width:
            where = "half the paper's effect" if claim.paper_effect is not None else "the book's floor"
            return judgement.inconclusive(f"at a floor or ceiling ({a}, {b}): a side within {where} ({width:.2f}) "
                                          "of 0 % or 100 %, so the paper's effect could not have shown")
    return judgement


def _rule(claim: Claim, diffs: list[float]) -> Judgement:
    """The rule alone: one-sided Student-t bounds on the mean paired difference (see the module's
    docstring), the sampling of test images included in the standard error."""
    n = len(diffs)
    base = Judgement(INCONCLUSIVE, n=n, diffs=tuple(diffs), claim=claim)
    if n == 0:
        return replace(base, reason="no paired results")
    mean_, sd = _spread(diffs)
    if n < MIN_PAIRS:
        return replace(base, mean=mean_, reason=f"{n} paired seeds; the rule needs at least {MIN_PAIRS}")
    extra = diffs.image_variance() if isinstance(diffs, Paired) else 0.0
    se = math.sqrt(sd * sd / n + extra)
    q = t_quantile(LEVEL, n - 1)
    lower, upper = mean_ - q * se, mean_ + q * se
    detectable = (q + t_quantile(POWER, n - 1)) * se
    images = " (test-image sampling included)" if extra else ""
    base = replace(base, mean=mean_, se=se, lower=lower, upper=upper, min_detectable=detectable, image_variance=extra)

    def p_below(x):  # one-sided p that the mean is below x (small when U < x)
        return t_cdf((mean_ - x) / se, n - 1) if se > 0 else float(mean_ >= x)

    def p_above(x):  # one-sided p that the mean is above x (small when L > x)
        return 1 - t_cdf((mean_ - x) / se, n - 1) if se > 0 else float(mean_ <= x)

    bounds = f"bounds [{lower:+.2f}, {upper:+.2f}]{images}"
    if claim.kind == "within":
        lo, hi = claim.center - claim.margin, claim.center + claim.margin
        where = f"[{lo:+g}, {hi:+g}]"
        p = min(p_above(hi), p_below(lo))
        if lo < lower and upper < hi:
            return replace(base, verdict=CONFIRMED, p_refute=p, reason=f"{bounds} inside {where} (two one-sided tests)")
        if lower > hi or upper < lo:
            return replace(base, verdict=NOT_CONFIRMED, p_refute=p, reason=f"{bounds} wholly outside {where}")
        return replace(base, p_refute=p, reason=f"{bounds} reach beyond {where}; undecided at n = {n}")
    if claim.kind == "at most":
        margin = claim.margin or 0.0
        p = p_above(margin)
        if upper < margin:
            return replace(base, verdict=CONFIRMED, p_refute=p, reason=f"upper bound {upper:+.2f} below the margin "
                                                                       f"{margin:g}: A is not above B by more")
        if lower > margin:
            return replace(base, verdict=NOT_CONFIRMED, p_refute=p, reason=f"lower bound {lower:+.2f} above the margin "
                                                                           f"{margin:g}: A is above B by more")
        return replace(base, p_refute=p, reason=f"{bounds} straddle the margin {margin:g}; undecided at n = {n}")
    sign = 1 if claim.kind == "greater" else -1
    needed, why = claim.needed_effect()
    # in the claim's own direction: the claimed side's bound, and the bound that could refute it
    near, far = (lower, upper) if sign == 1 else (-upper, -lower)
    p = p_below(needed) if sign == 1 else p_above(-needed)
    detect = f"smallest effect this design detects: {detectable:.2f}"
    if near > 0:
        return replace(base, verdict=CONFIRMED, p_refute=p, reason=f"the claimed sign: {bounds} exclude 0")
    if far < 0:
        return replace(base, verdict=NOT_CONFIRMED, p_refute=p, reason=f"the opposite sign: {bounds} exclude 0")
    if needed > 0 and far < needed:
        return replace(base, verdict=NOT_CONFIRMED, p_refute=p,
                       reason=f"{bounds} exclude the smallest effect the claim needs ({sign * needed:+.2f}: {why})")
    wanted = f", the claim needs {sign * needed:+.2f} ({why})" if needed > 0 else f" ({why})"
    return replace(base, p_refute=p, reason=f"{bounds} include 0 and the claimed effect; {detect}{wanted}")


def holm(parts: list[tuple[str, Judgement]]) -> tuple[set[int], int]:
    """Holm's step-down over the judged parts' refutation tests: (the indices of the parts that stay
    refuted, how many parts the family holds). Only a part the rule refuted is a candidate: every
    other judged part counts in the family with a p-value of 1 (which can only make the procedure
    refute less, so the claim's false-refutation rate stays at ALPHA)."""
    k = sum(j.verdict in (CONFIRMED, NOT_CONFIRMED, INCONCLUSIVE) for _, j in parts)
    candidates = sorted((i for i, (_, j) in enumerate(parts) if j.verdict == NOT_CONFIRMED),
                        key=lambda i: parts[i][1].p_refute)
    refuted = set()
    for rank, i in enumerate(candidates):
        if parts[i][1].p_refute >= ALPHA / (k - rank):
            break
        refuted.add(i)
    return refuted, k


def after_short_run(j: Judgement, ours: int, theirs: int, unsound: tuple[str, ...], bias: str) -> Judgement:
    """`j` on models trained `ours` epochs against the paper's `theirs`: a verdict that the short
    run's `bias` could have made (`unsound`: a confirmation where a short run favours the claim, a
    refutation where it works against it) is held inconclusive, saying why; the other stands."""
    if ours < theirs and j.verdict in unsound:
        return j.inconclusive(f"trained {ours} epochs against the paper's {theirs}: {bias}")
    return j


def all_of(parts: list[tuple[str, Judgement]]) -> Judgement:
    """A claim made of several comparisons: confirmed if all are, not confirmed if a part stays
    refuted after Holm's correction over the judged parts (a part refuted alone but not after
    it reads inconclusive, saying so)."""
    refuted, k = holm(parts)
    parts = [(label, j.inconclusive(f"{j.reason}, but not after Holm's correction over {k} parts")
              if j.verdict == NOT_CONFIRMED and i not in refuted else j) for i, (label, j) in enumerate(parts)]
    facts = [(label, j) for label, j in parts if j.verdict not in VERDICTS]
    judged = [(label, j) for label, j in parts if j.verdict in VERDICTS]
    verdicts = [j.verdict for _, j in judged]
    if judged and all(v == UNTESTABLE for v in verdicts):
        verdict, reason = UNTESTABLE, "; ".join(j.reason for _, j in judged)
    elif judged and all(v == CONFIRMED for v in verdicts):
        verdict, reason = CONFIRMED, "every part confirmed"
    elif NOT_CONFIRMED in verdicts:
        verdict = NOT_CONFIRMED
        reason = "not confirmed for " + ", ".join(label for label, j in judged if j.verdict == NOT_CONFIRMED) + \
            (f" (Holm's correction over {k} parts)" if k > 1 else "")
        # a part left undecided says so, or its number would read as decided beside the refuted ones
        reason += "".join(f"; undecided, {label}: {j.reason}" for label, j in judged if j.verdict == INCONCLUSIVE)
    else:
        undecided = [(label, j) for label, j in judged if j.verdict in (INCONCLUSIVE, UNTESTABLE)]
        verdict = INCONCLUSIVE
        reason = (f"{len(undecided)} of {len(judged)} parts inconclusive, e.g. {undecided[0][0]}: "
                  f"{undecided[0][1].reason}") if undecided else "nothing to judge: " + (
                      "; ".join(j.reason for _, j in facts) if facts else "no data")
    if facts and judged:
        reason += " (" + "; ".join(f"{label}: {j.reason}" for label, j in facts) + ")"
    # nested in another claim, this one counts as one test, its p-value Holm-adjusted
    p = min([1.0, *(k * j.p_refute for _, j in judged if j.verdict in (NOT_CONFIRMED, INCONCLUSIVE, CONFIRMED))])
    return Judgement(verdict, reason=reason, parts=tuple(parts), n=min((j.n for _, j in judged), default=0),
                     p_refute=p)


def decided_at(profile_decides: bool, rows: list[dict]) -> list[dict]:
    """A page's claims rows as its profile may state them: a profile that decides nothing (the smoke
    profile's toy data) reads every judged verdict as inconclusive, saying why, and keeps the numbers."""
    if profile_decides:
        return rows
    return [{**r, "verdict": INCONCLUSIVE, "why": "a smoke run decides nothing"}
            if r["verdict"] in (CONFIRMED, NOT_CONFIRMED) else r for r in rows]


def _number(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, 6)


def part_data(label: str, j: Judgement) -> dict:
    """One judged part as data (`book/verdicts.json`): the differences, the bounds the rule used and why."""
    c = j.claim
    return {"label": label, "kind": c.kind if c else None, "unit": c.unit if c else None,
            "diffs": [round(d, 6) for d in j.diffs], "n": j.n,
            "mean": _number(j.mean), "lower": _number(j.lower), "upper": _number(j.upper),
            "paper_effect": c.paper_effect if c else None, "margin": c.margin if c else None,
            "center": c.center if c else 0.0, "min_effect": (c.needed_effect()[0] if c and c.kind in ("greater", "less")
                                                             else None),
            "min_detectable": _number(j.min_detectable), "verdict": j.verdict, "reason": j.reason,
            "images": j.images, "records": list(j.records), "se": _number(j.se),
            "image_variance": _number(j.image_variance)}


def label(index: int, text: str) -> str:
    """A claim's id within its chapter: the one its text opens with ('(C1)', 'C6a (Table 4)', '(2)'),
    else its position (1-based)."""
    found = re.match(r"\(?((?:C\d+[a-z]?)|\d+)\)?", text)
    return found.group(1) if found else str(index + 1)


MAX_SEEDS = 200  # a design that needs more seeds than this is called out of reach


def seeds_to_decide(part: dict) -> tuple[int | None, str]:
    """(the paired seeds a part needs, why): the smallest n at which the smallest effect the design
    detects with 80 % power, (t(LEVEL, n - 1) + t(POWER, n - 1)) * sqrt(s^2 / n + V / N), falls to
    the effect the claim needs, s the spread of this part's per-seed differences and V / N the
    shared images' term (which more seeds do not shrink). For "within", the effect needed is the
    room between the measured difference and the margin. None, with why, where no number of seeds
    would do or there is nothing to size by. An extrapolation from the spread seen, not a promise."""
    diffs, n = part.get("diffs") or [], part.get("n") or 0
    kind = part.get("kind")
    if n < MIN_PAIRS or part.get("lower") is None or kind not in ("greater", "less", "within"):
        return None, "no bounds to size a design by"
    if kind == "within":
        need = part["margin"] - abs(part["mean"] - (part.get("center") or 0.0))
        if need <= 0:
            return None, "the measured difference lies outside the margin itself"
    else:
        need = part.get("min_effect") or 0.0
        if need <= 0:
            return None, "the paper gives no effect size to size a design by"
    sd = _spread(diffs)[1]
    images = part.get("image_variance") or 0.0
    if (t_quantile(LEVEL, 10**6) + t_quantile(POWER, 10**6)) * math.sqrt(images) >= need:
        return None, (f"the shared test images alone keep the bounds wider than {need:.2g}: each seed "
                      "needs its own test images, or more of them")
    for m in range(max(n, MIN_PAIRS), MAX_SEEDS + 1):
        if (t_quantile(LEVEL, m - 1) + t_quantile(POWER, m - 1)) * math.sqrt(sd * sd / m + images) <= need:
            return m, f"to detect {need:.2g} {part.get('unit') or ''} at the spread seen".replace("  ", " ")
    return None, f"more than {MAX_SEEDS} seeds at the spread seen"


def parts_data(judgement: Judgement, label: str = "") -> list[dict]:
    """Every leaf part of a judgement, labels joined from the outside in."""
    if not judgement.parts:
        return [part_data(label, judgement)]
    return [p for sub, j in judgement.parts for p in parts_data(j, f"{label}, {sub}" if label else sub)]


def row(claim: Claim, judgement: Judgement, **extra) -> dict:
    """One row of a chapter's claims table, with its parts as data."""
    return {"claim": claim.text, "paper": claim.paper, OURS: judgement.evidence(claim.unit),
            "verdict": judgement.verdict, "why": judgement.reason, "how we read it": claim.definition,
            "parts": parts_data(judgement), **({"stand_in": judgement.stand_in} if judgement.stand_in else {}), **extra}


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
