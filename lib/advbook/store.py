"""The results store: trained models and their evaluations, kept apart.

    <results root>/models/<model key>.json     what a trained model is: its training config,
                                               per-epoch history, provenance (committed)
    <results root>/models/<model key>.pt       its weights (ignored by git; torch.load with
                                               weights_only=True)
    <results root>/evals/<model key>/<eval key>.json
                                               one attack spec on that model (committed)

A model is keyed by what it was trained on and how (dataset and subset, model, training
config); an evaluation by (model key, attack spec). Adding an attack to a chapter therefore
evaluates the stored models without retraining them. Every record carries its provenance:
device, versions, the library commit, and a hash of the library code it depends on, so that
a record computed by other code than HEAD's is flagged (`is_stale`). Records are written
atomically (a temporary file unique to the process, then a rename), and checked against their
schema when read (`advbook.schema`: a failure names the file and the field). Records computed
elsewhere come in through `advbook import` (`advbook.exchange`).
"""
from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from pathlib import Path

import torch

from .atomic import save_torch, write_atomic
from .errors import CorruptRecord  # noqa: F401  (raised here, part of this module's API)
from .evaluate import DISPLAY, OPTIONS
from .paths import PROJECT_ROOT, results_root, results_roots

LIBRARY = Path(__file__).resolve().parent
# the library code each kind of record depends on: a change here may change its numbers
DEPENDS = {
    "model": ("data.py", "device.py", "models", "attacks", "defenses", "train.py", "evaluate.py"),
    "eval": ("device.py", "models", "attacks", "evaluate.py"),
}
MODEL_FIELDS = ("dataset", "subset", "validation", "model", "train")
# files that only import and register (a new model, attack or defense is added there): not hashed
REGISTRIES = ("__init__.py", "registry.py")




def key(obj) -> str:
    """A stable hash of a JSON-able object: the same content always gets the same key."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def spec_identity(spec: dict) -> dict:
    """What identifies an attack spec (`advbook.evaluate`): all but its display name and sweep
    mark, with its `params` written flat beside the options, as specs were before they had
    `params`, so that the records stored then keep their keys. A spec already flat (an old
    record's) is its own identity. A param named like an option or "attack" would make the flat
    form ambiguous; such a spec keeps its nested form (none was stored flat: it could not be
    written then)."""
    out = {k: v for k, v in spec.items() if k not in DISPLAY}
    params = out.pop("params", None)
    if params is None:
        return out
    if set(params) & {*OPTIONS, "attack", "params"}:
        return {**out, "params": params}
    return {**out, **params}


def model_config(config: dict) -> dict:
    """The part of an experiment's config that defines the trained model (the test subset does
    not: it belongs to the evaluations, see `test_selection`). A validation spec counts by its
    name and identity (`spec_identity`), as it did before specs had `params`."""
    out = {k: config[k] for k in MODEL_FIELDS if config.get(k) is not None}
    if (out.get("train") or {}).get("validation_spec"):
        spec = out["train"]["validation_spec"]
        named = {"name": spec["name"]} if "name" in spec else {}
        out["train"] = {**out["train"], "validation_spec": {**named, **spec_identity(spec)}}
    subset = {k: v for k, v in (config.get("subset") or {}).items() if k != "test" and v is not None}
    if subset.get("train") is None:
        subset.pop("seed", None)
    if subset:
        out["subset"] = subset
    else:
        out.pop("subset", None)
    return out


def test_selection(config: dict) -> dict | None:
    """Which test images an experiment's evaluations draw from (its `n` are the first of them)."""
    subset = config.get("subset") or {}
    if subset.get("test") is None:
        return None
    return {"test": subset["test"], "seed": subset.get("seed", 0)}


def test_drawn_after(config: dict) -> dict | None:
    """What else decides which images a test subset holds (`test_selection`): a training subset
    is drawn first from the same generator (`data.Dataset.subset`), a permutation of the training
    images left after the validation split, so whether one is drawn and how many images that
    split holds out change the test images (the training subset's size does not: it is a prefix
    of that permutation). Not part of the evaluations' keys (records stored before it keep
    theirs), but of the images' identity that pairs them (`per_image.selection`)."""
    subset = config.get("subset") or {}
    if subset.get("test") is None or subset.get("train") is None:
        return None
    return {"validation": config.get("validation") or 0}


def model_key(config: dict) -> str:
    return key(model_config(config))


def eval_key(mkey: str, spec: dict, test: dict | None = None) -> str:
    """An evaluation's key: the model, the test images and the spec's identity (`spec_identity`)."""
    content = {"model": mkey, "spec": spec_identity(spec)}
    if test is not None:
        content["test"] = test
    return key(content)


def located(relative: str) -> Path | None:
    """The file at `relative` in the first store that holds it (`paths.results_roots`: yours,
    then the book's beneath it), or None."""
    return next((root / relative for root in results_roots() if (root / relative).exists()), None)


def model_path(mkey: str) -> Path:
    """Where model `mkey`'s record is written (the store written: `paths.results_root`)."""
    return results_root() / "models" / f"{mkey}.json"


def weights_path(mkey: str) -> Path:
    """Model `mkey`'s weights: those beside its record in the first store that holds the record
    (never another store's weights under a record they were not trained with), else where they
    are written."""
    record = located(f"models/{mkey}.json")
    return (record or model_path(mkey)).with_suffix(".pt")


def checkpoint_path(mkey: str) -> Path:
    """The in-progress training checkpoint (resumed from; removed when training ends)."""
    return results_root() / "models" / f"{mkey}.ckpt.pt"


def eval_name(mkey: str, spec: dict, test: dict | None = None) -> str:
    """An evaluation record's path relative to a results store."""
    return f"evals/{mkey}/{eval_key(mkey, spec, test)}.json"


def eval_path(mkey: str, spec: dict, test: dict | None = None) -> Path:
    """Where an evaluation record is written (the store written)."""
    return results_root() / eval_name(mkey, spec, test)


def read(path: Path, kind: str | None = None) -> dict | None:
    """The JSON record at `path`, None if absent, CorruptRecord (naming the file) if unreadable
    or, with `kind` ("model", "eval" or "bench"), if it fails that kind's schema (naming the
    field: see `advbook.schema`)."""
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptRecord(f"{path} is not a readable record ({exc.__class__.__name__}: {exc}); "
                            f"move it away and run again to recompute it") from None
    if kind is not None:
        from .schema import problems, summary

        found = problems(record, kind)
        if found:
            raise CorruptRecord(f"{path} is not a valid {kind} record: {summary(found)}; "
                                "move it away and run again to recompute it")
    return record


def write(record: dict, path: Path) -> Path:
    """Write `record` as JSON atomically; returns `path`."""
    def fill(f):
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    return write_atomic(path, "w", fill)


def write_bytes(content: bytes, path: Path) -> Path:
    """Write `content` (a weights file computed elsewhere) atomically; returns `path`."""
    return write_atomic(path, "wb", lambda f: f.write(content))



def source_name(source: str) -> str:
    """How a record names its dataset's origin: the file name ("mnist.npz"), never the
    computing machine's folder; a source without a folder ("sklearn.datasets.load_digits")
    stays as it is."""
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def load_model(mkey: str) -> dict | None:
    """Model `mkey`'s record from the first store that holds it, or None."""
    path = located(f"models/{mkey}.json")
    return read(path, "model") if path else None


def load_eval(mkey: str, spec: dict, test: dict | None = None) -> dict | None:
    """The evaluation record from the first store that holds it, or None."""
    path = located(eval_name(mkey, spec, test))
    return read(path, "eval") if path else None


def save_weights(model: torch.nn.Module, mkey: str) -> Path:
    path = model_path(mkey).with_suffix(".pt")
    save_torch({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
    return path


def load_weights(model: torch.nn.Module, mkey: str) -> bool:
    """Load the stored weights into `model`; False if there are none here."""
    path = weights_path(mkey)
    if not path.exists():
        return False
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return True


# ----------------------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------------------

@functools.cache
def code_manifest(kind: str) -> dict[str, str]:
    """{file: content hash} of the library sources a record of `kind` ("model" or "eval") depends
    on, read once per process: the code that computes a record is the code the process imported,
    even if the files change while it runs. The packages' `__init__.py` files are left out: they
    only import and register (a new model, attack or defense is added there, and that must not
    mark every older record stale)."""
    manifest = {}
    for name in DEPENDS[kind]:
        target = LIBRARY / name
        for f in sorted(target.rglob("*.py")) if target.is_dir() else [target]:
            if target.is_dir() and f.name in REGISTRIES:
                continue
            manifest[str(f.relative_to(LIBRARY))] = hashlib.sha256(f.read_bytes()).hexdigest()[:16]
    return manifest


def code_hash(kind: str) -> str:
    """One hash of `code_manifest(kind)`: equal hashes, equal code."""
    return key(code_manifest(kind))


def changed_code(record: dict, kind: str) -> list[str]:
    """The library files that differ between the code `record` was computed by and this
    checkout's: a file the record depended on that changed or went away. Files added since do
    not count (the record did not run them). A file moved or renamed with its content unchanged
    (its hash found under another path now) is the same code: a pure move marks nothing stale. A
    record without a manifest (older than manifests) counts as changed unless its whole-code
    hash matches."""
    manifest = record.get("code_files")
    if manifest is None:
        return [] if record.get("code") == code_hash(kind) else ["(all: record predates per-file code hashes)"]
    now = code_manifest(kind)
    moved_here = set(now.values())
    return sorted(f for f, h in manifest.items() if now.get(f) != h and not (f not in now and h in moved_here))


def is_stale(record: dict, kind: str) -> bool:
    """True if `record` was computed by other library code (of the files it depends on) than
    this checkout's."""
    return bool(changed_code(record, kind))


@functools.cache
def library_commit(kind: str | None = None) -> str:
    """The project's git commit, with '+dirty' if the library code a record of `kind` depends on
    (all of the library for None) has uncommitted changes; read once per process, like
    `code_hash`."""
    paths = [str(LIBRARY / name) for name in DEPENDS[kind]] if kind else ["lib"]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment(device: torch.device, kind: str | None = None) -> dict:
    """Where a record (of `kind`, for the commit's dirty mark) was computed."""
    import torchvision

    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {"device": device_name, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "commit": library_commit(kind)}
