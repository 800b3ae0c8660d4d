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

With 3 seeds this is a screening rule, not a significance test; the chapters say so. A smoke
run never confirms or refutes anything. A claim with several parts (an "under every attacker"
claim, say) is confirmed when every part is, not confirmed when any part is not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

CONFIRMED, NOT_CONFIRMED, INCONCLUSIVE = "confirmed", "not confirmed", "inconclusive at this scale"
VERDICTS = (CONFIRMED, NOT_CONFIRMED, INCONCLUSIVE)
KINDS = ("greater", "less", "within")


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

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"claim kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "within" and (self.margin is None or self.margin < 0):
            raise ValueError(f"a 'within' claim needs a non-negative margin: {self.text}")


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
        if self.n == 0 or math.isnan(self.mean):
            return "no data"
        return f"{self.mean:+.2f} ± {self.se:.2f} {unit} (n = {self.n})"


def paired_differences(a: dict, b: dict, scale: float = 100.0) -> list[float]:
    """A_i - B_i for the seeds present in both ({seed: value} each), times `scale`
    (accuracies in [0, 1] become percentage points)."""
    return [scale * (a[s] - b[s]) for s in sorted(set(a) & set(b))]


def judge(claim: Claim, diffs: list[float], profile: str = "cpu") -> Judgement:
    """The book's verdict for `claim` from the paired per-seed differences A_i - B_i."""
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
    verdicts = [j.verdict for _, j in parts]
    if parts and all(v == CONFIRMED for v in verdicts):
        verdict, reason = CONFIRMED, "every part confirmed"
    elif NOT_CONFIRMED in verdicts:
        verdict = NOT_CONFIRMED
        reason = "not confirmed for " + ", ".join(label for label, j in parts if j.verdict == NOT_CONFIRMED)
    else:
        undecided = [(label, j) for label, j in parts if j.verdict == INCONCLUSIVE]
        verdict = INCONCLUSIVE
        reason = (f"{len(undecided)} of {len(parts)} parts inconclusive, e.g. {undecided[0][0]}: "
                  f"{undecided[0][1].reason}") if undecided else "no data"
    return Judgement(verdict, reason=reason, parts=tuple(parts), n=min((j.n for _, j in parts), default=0))


def row(claim: Claim, judgement: Judgement, **extra) -> dict:
    """One row of a chapter's claims table."""
    return {"claim": claim.text, "paper": claim.paper, "ours (A - B, mean ± SE)": judgement.evidence(claim.unit),
            "verdict": judgement.verdict, "why": judgement.reason, "how we read it": claim.definition, **extra}
