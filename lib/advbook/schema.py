"""What each kind of record must hold: its required fields and their types.

Four kinds, derived from the records the book has written:

- "model": `models/<key>.json`, written by `experiments.train_model`
- "eval": `evals/<model key>/<eval key>.json`, written by `experiments._compute`
- "bench": a `data/bench/` record of `advbook bench`, whose own `kind` field says which of
  "bench" (throughput) and "time-to-robustness" it is

`problems(record, kind)` lists what is wrong, each naming the field ("field 'result.accuracy'
is 1.5, not a fraction in [0, 1]"); `store.read` and `advbook import` turn them into one line
naming the file. A field `a.b` is `b` inside the dict `a`; `rows[].model` is `model` in each
item of the list `rows`. Fields not listed here are free (a record may carry more).

Records converted from the first store format (`migrated_from`) predate per-file code hashes:
they have no `code_files`, and `store.is_stale` treats them as computed by other code.
"""
from __future__ import annotations

import re

from . import per_image

HEX16 = re.compile(r"^[0-9a-f]{16}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# name: (test, what it must be, in words)
TYPES = {
    "str": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "str|None": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "count": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number >= 0"),
    "number": (lambda v: _number(v) and v == v, "a number"),
    "number|None": (lambda v: v is None or (_number(v) and v == v), "a number or null"),
    "seconds": (lambda v: _number(v) and 0 <= v < float("inf"), "a number of seconds >= 0"),
    "fraction": (lambda v: _number(v) and 0 <= v <= 1, "a fraction in [0, 1]"),
    "dict": (lambda v: isinstance(v, dict), "an object"),
    "dict|None": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "rows": (lambda v: isinstance(v, list) and len(v) > 0, "a non-empty list"),
    "key": (lambda v: isinstance(v, str) and bool(HEX16.match(v)), "a 16-digit hex record key"),
    "sha256|None": (lambda v: v is None or (isinstance(v, str) and bool(HEX64.match(v))), "a SHA-256 (64 hex digits) or null"),
    "manifest": (lambda v: isinstance(v, dict) and all(isinstance(f, str) and isinstance(h, str) for f, h in v.items()),
                 "an object of file: hash strings"),
}

PROVENANCE = {"created": "str", "device": "str", "torch": "str", "torchvision": "str", "python": "str", "commit": "str"}
CODE = {"code": "str|None", "code_files": "manifest"}  # code_files: optional for migrated records (above)

SCHEMAS = {
    "model": {
        "key": "key", "config": "dict", "config.dataset": "str", "config.model": "dict", "config.model.name": "str",
        "config.train": "dict", "first_computed_for": "dict",
        "dataset": "dict", "dataset.name": "str", "dataset.display_name": "str", "dataset.sha256": "sha256|None",
        "dataset.source": "str", "dataset.n_train": "count", "dataset.n_test": "count",
        "history": "list", "history[].epoch": "count", "history[].seconds": "seconds",
        "train_seconds": "seconds", "wall_seconds": "seconds", **CODE, **PROVENANCE,
    },
    "eval": {
        "model": "key", "spec": "dict", "spec.name": "str", "spec.attack": "str", "test": "dict|None",
        "result": "dict", "result.accuracy": "fraction", "result.n": "count", **CODE, **PROVENANCE,
    },
    "bench": {
        "kind": "str", "quick": "bool", "image_size": "count", "images": "count", "batch_size": "count",
        "fast_path": "dict", "matmul_peak_tflops": "number", "matmul_peak_dtype": "str",
        "rows": "rows", "rows[].model": "str", "rows[].method": "str", "rows[].ours_images_per_s": "number",
        "rows[].reference_images_per_s": "number|None", "rows[].speedup": "number|None",
        "rows[].epoch_seconds_50k": "seconds", "rows[].gflops_per_image": "number",
        "rows[].achieved_tflops": "number", "rows[].fraction_of_peak": "number",
        "created": "str", "device": "str", "torch": "str", "commit": "str",
    },
    "time-to-robustness": {
        "kind": "str", "quick": "bool", "dataset": "str", "dataset_sha256": "sha256|None", "model": "str",
        "train": "dict", "history": "list", "eval": "dict", "eval.attack": "str", "eval.eps": "number",
        "eval.n": "count", "clean_acc": "fraction", "robust_acc": "fraction", "train_seconds": "seconds",
        "wall_seconds": "seconds", "created": "str", "device": "str", "torch": "str", "commit": "str",
    },
}
BENCH_KINDS = ("bench", "time-to-robustness")
MISSING = object()


def _values(record, field: str):
    """(path as written, value) for `field` in `record`, one per list item for `x[].y`.
    A field whose parent is absent or of the wrong type is left out: the parent, listed
    first in a schema, is the problem reported."""
    items = [("", record)]
    for part in field.split("."):
        each = part.endswith("[]")
        name = part[:-2] if each else part
        out = []
        for path, value in items:
            if not isinstance(value, dict):
                continue
            here = f"{path}.{name}" if path else name
            child = value.get(name, MISSING)
            if not each:
                out.append((here, child))
            elif isinstance(child, list):
                out += [(f"{here}[{i}]", v) for i, v in enumerate(child)]
        items = out
    return items


def problems(record, kind: str) -> list[str]:
    """What is wrong with `record` as a record of `kind` ("model", "eval" or "bench"), one
    string per field; [] if nothing."""
    if not isinstance(record, dict):
        return [f"the record is {type(record).__name__}, not an object"]
    if kind == "bench":
        kind = record.get("kind")
        if kind not in BENCH_KINDS:
            return [f"field 'kind' is {'missing' if kind is None else repr(kind)}, "
                    f"expected one of {', '.join(BENCH_KINDS)}"]
    out = []
    for field, type_name in SCHEMAS[kind].items():
        if field == "code_files" and "migrated_from" in record:
            continue
        test, words = TYPES[type_name]
        for path, value in _values(record, field):
            if value is MISSING:
                out.append(f"field '{path}' is missing")
            elif not test(value):
                shown = repr(value) if len(repr(value)) <= 40 else f"{type(value).__name__} {repr(value)[:30]}..."
                out.append(f"field '{path}' is {shown}, expected {words}")
    if kind == "eval" and not out:
        out += _per_image_problems(record)
    return out


def _per_image_problems(record: dict) -> list[str]:
    """An evaluation's per-image outcomes (`evaluate.per_image_text`), where it has them: one
    base-36 digit per image, at most its draws, that add up to its accuracy (a record whose two
    disagree would give a worst case that is not its own)."""
    result, draws = record["result"], (record.get("spec") or {}).get("draws", 1)
    text = result.get("per_image", MISSING)
    if text is MISSING:
        return []  # recorded before evaluations kept them
    if not isinstance(text, str) or len(text) != result["n"] or not isinstance(draws, int) \
            or any(c not in per_image.DIGITS[:draws + 1] for c in text):
        shown = repr(text) if len(repr(text)) <= 40 else f"{type(text).__name__} {repr(text)[:30]}..."
        return [f"field 'result.per_image' is {shown}, expected one digit per image (result.n = {result['n']}), "
                f"each the draws right, at most {draws}"]
    right = sum(per_image.counts(text)) / max(result["n"] * draws, 1)
    if abs(right - result["accuracy"]) > 1e-9:
        return [f"field 'result.per_image' gives accuracy {right:.6g}, but 'result.accuracy' is {result['accuracy']:.6g}"]
    return []


def summary(found: list[str]) -> str:
    """One line from `problems`: the first three, and how many more."""
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return "; ".join(found[:3]) + more
