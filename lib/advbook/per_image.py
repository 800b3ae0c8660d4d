"""Per-image outcomes of a chapter record's evaluations, read in one place.

Every evaluation record stores, per test image, in how many noise draws the model was right
(`evaluate.per_image_text`). From them:

- a claim's robust accuracy is the **per-image worst case** over a chapter's `Suite` of attacks
  (AutoAttack's principle): an image counts only if it survives every attack of the suite, and a
  randomized model's image counts for the lowest share of draws any attack left it. Both sides of a
  comparison take the worst case over the same suite on the same images (the suite's label is part
  of the images' identity, so guard 1 refuses anything else), and each attack's own number stays in
  the tables and in the masking checklist, which compares attacks one by one;
- the images' share of a paired difference's variance is measured (`image_variance`) instead of
  bounded, where both sides recorded their outcomes.

Records made before per-image outcomes were stored have none: their worst case is absent (a claim
reading it has no pairs there) and the variance keeps its bound (`claims.Paired.image_variance`).
"""
from __future__ import annotations

from dataclasses import dataclass

# a record's per-image outcome, one digit an image: the draws it was right in, in base 36 (the
# format `evaluate.per_image_text` writes; read here, below the library's evaluation code, so that
# the claims' floor can read it)
DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def counts(text: str) -> list[int]:
    """Per image, the draws it was right in, from a record's per-image text."""
    return [int(c, 36) for c in text]


@dataclass(frozen=True)
class Suite:
    """The attacks a claim's robust accuracy is the per-image worst case of: `names`, the
    evaluations (spec names; a sweep's point is 'NAME:VALUE'), all measured on the same test
    images; `label`, how the page names the result. Each name must be an evaluation of every
    model the suite is taken on (a chapter's suite names what every compared model runs)."""
    label: str
    names: tuple[str, ...]

    def __post_init__(self):
        if not self.names or len(set(self.names)) != len(self.names):
            raise ValueError(f"a suite names its attacks once each, at least one: {self.label}")


def outcomes(evaluation: dict) -> tuple[float, ...] | None:
    """Per image, the share of its noise draws the evaluation got right (1 or 0 for a model that
    is deterministic at test time); None for a record made before they were stored."""
    text = evaluation["result"].get("per_image")
    if text is None:
        return None
    draws = evaluation["spec"].get("draws", 1)
    return tuple(c / draws for c in counts(text))


def selection(evaluation: dict) -> str:
    """The test images an evaluation was measured on, without its attack seed (`claims.images_of`
    adds it for a single attack)."""
    return f"{_drawn_from(evaluation)}, first {evaluation['result']['n']}"


def _drawn_from(evaluation: dict) -> str:
    test = evaluation.get("test") or {}
    if not test.get("test"):
        return "test split"
    after = evaluation.get("drawn_after")  # `store.test_drawn_after`, which `experiments.combine` adds
    return f"test subset {test['test']} (seed {test.get('seed', 0)}" + (
        f", drawn after a training subset, {after['validation']} held out)" if after else ")")


def worst_case(record: dict, suite: Suite, first: int | None = None) -> tuple[float, str, tuple[float, ...]] | None:
    """(accuracy, images, per-image values) of the per-image worst case of `record` (a chapter
    record, `experiments.combine`'s) over `suite`, on the images every attack of the suite ran on
    (an evaluation of the first n images of a selection holds the first m < n too), or on the
    `first` of them (the images another attack ran on, to compare with it); None where an
    evaluation of the suite is not stored (a partial store) or predates per-image outcomes. A suite
    whose attacks were drawn from different test images is the chapter's error, said in one line
    (that every chapter's suites name attacks its models run is a test's).

    For a model randomized at test time each attack's share of an image's draws is an estimate,
    and the lowest of several estimates is biased low: the worst case then is the low end of the
    model's robust accuracy, one attack fixed in advance (`one_attack`) the high end."""
    found = _on_shared_images(record, suite, first)
    if found is None:
        return None
    images, per_attack = found
    worst = tuple(min(values) for values in zip(*per_attack))
    return sum(worst) / max(len(worst), 1), images, worst


def one_attack(record: dict, name: str, suite: Suite) -> tuple[float, str, tuple[float, ...]] | None:
    """`worst_case`'s tuple for the one evaluation `name` (of the suite or not) on the images the
    suite's worst case is taken on, with the same identity, so that the two pair: a drop from
    clean accuracy to the worst case, or the high end of a randomized model's robust accuracy
    (one attack fixed in advance: the true per-image worst case cannot exceed its accuracy, and
    unlike the lowest of several, its estimate is not biased low). None where the worst case has
    none or `name` was measured on other images."""
    evaluations = record["evaluations"]
    if any(n not in evaluations for n in (name, *suite.names)) \
            or _drawn_from(evaluations[name]) != _drawn_from(evaluations[suite.names[0]]):
        return None
    if evaluations[name]["result"]["n"] < min(evaluations[n]["result"]["n"] for n in suite.names):
        return None  # fewer images than the suite's worst case is taken on: no pair
    names = suite.names if name in suite.names else (name, *suite.names)
    found = _on_shared_images(record, Suite(suite.label, names), None)
    if found is None:
        return None
    values = found[1][names.index(name)]
    return sum(values) / max(len(values), 1), found[0], values


def _on_shared_images(record: dict, suite: Suite, first: int | None) -> tuple[str, list[tuple[float, ...]]] | None:
    """(the images' identity, each attack's per-image values there) of `suite` on `record`: see
    `worst_case`."""
    evaluations = record["evaluations"]
    if any(name not in evaluations for name in suite.names):
        return None
    drawn = {name: _drawn_from(evaluations[name]) for name in suite.names}
    if len(set(drawn.values())) > 1:
        raise ValueError(f"{suite.label}: its attacks were measured on different images ("
                         + "; ".join(f"{k}: {v}" for k, v in drawn.items()) + ")")
    per_attack = [outcomes(evaluations[name]) for name in suite.names]
    if any(o is None for o in per_attack):
        return None
    shared = min([len(o) for o in per_attack] + ([first] if first is not None else []))
    images = f"{drawn[suite.names[0]]}, first {shared}, worst case of {suite.label}"
    return images, [o[:shared] for o in per_attack]


def on_shared_images(a: dict, b: dict) -> tuple[float, float] | None:
    """Two evaluations' accuracies on the images both ran on: an evaluation of the first n images
    of a selection holds the first m < n, image by image. None where they were
    drawn from different selections, either lacks per-image outcomes, or either is randomized at
    test time (its draws are not the other's: on shared images the two could differ by chance,
    and a check built on them would flag noise)."""
    if _drawn_from(a) != _drawn_from(b) or max(a["spec"].get("draws", 1), b["spec"].get("draws", 1)) > 1:
        return None
    oa, ob = outcomes(a), outcomes(b)
    if oa is None or ob is None:
        return None
    shared = min(len(oa), len(ob))
    if shared == 0:
        return None
    return sum(oa[:shared]) / shared, sum(ob[:shared]) / shared


def gives(per_image: tuple[float, ...] | None, value) -> bool:
    """Whether per-image outcomes are those of `value` (their mean is it): a value computed
    otherwise (the lower of two accuracies, say) cannot borrow another evaluation's outcomes."""
    return per_image is not None and isinstance(value, (int, float)) and bool(per_image) \
        and abs(sum(per_image) / len(per_image) - value) <= 1e-9


def image_variance(a: list[tuple[float, ...]], b: list[tuple[float, ...]]) -> float:
    """The variance (in squared accuracy units) that sampling N test images adds to the mean over
    seeds of A - B, where every seed measured both sides on the same N images, from the per-image
    outcomes (`a`, `b`: one tuple per seed, in the same image order): the sample variance over
    images of each image's seed-mean difference, over N."""
    n_images = len(a[0])
    if n_images < 2 or any(len(x) != n_images for x in (*a, *b)):
        raise ValueError("per-image outcomes of unequal lengths, or of fewer than 2 images, cannot be paired")
    per_image = [sum(x[j] - y[j] for x, y in zip(a, b)) / len(a) for j in range(n_images)]
    centre = sum(per_image) / n_images
    return sum((d - centre) ** 2 for d in per_image) / (n_images - 1) / n_images
