"""`advbook export` and `advbook import`: records computed on one machine (a GPU window) become
records of the store on another, checked on the way in.

An archive is a tar.gz holding `MANIFEST.json` and records at their store paths:

    models/<model key>.json          a model record (and models/<model key>.pt with --weights)
    evals/<model key>/<eval key>.json
    bench/<name>.json                a record of `advbook bench` (data/bench/)

The manifest lists every other member with its size and SHA-256, the library commit that
exported it, when, and how the records were selected.

What `export` packs, by default the records a run here wrote: every model, evaluation and bench
record that git does not hold with the same content at HEAD (`--since COMMIT`: at COMMIT; the
results root's files are compared with data/results/ of that commit, data/bench/ with its own).
`--all`: every record. `--chapter NAME [--profile P]`: the stored records of those chapters'
experiments, committed or not (combined with `--since`, only those of them not in that commit).
Weights only with `--weights` (about 45 MB a PreAct ResNet-18; the records alone are a few MB
even for the whole store). Every record is checked against its schema before it is packed.

What `import` does, all or nothing: it reads each archive's members into memory (nothing is
extracted), and refuses the whole import, writing nothing, on any of: an unreadable archive; a
member that is not a plain file at a store path (absolute paths, '..', links, anything outside
models/ evals/ bench/); a member missing from the manifest or whose SHA-256 differs; a record
failing its schema (`advbook.schema`), naming no git commit, or stored under a path its content
does not give (a model at its key, an evaluation at its model's and its own key); weights that
torch cannot load with weights_only=True or whose model record is neither imported nor stored;
an evaluation whose model record is neither imported nor stored. One line each, naming the file
and the field. Then, for each record:

- absent from the store: written (atomically, never replacing a file);
- present with the same content: skipped;
- present with other content (same path, another computation): kept apart, under
  `<results root>/conflicts/<archive name>/<its path>`, and reported; so are the evaluations
  and weights of a model whose record conflicts (they belong to the other training).

A model or evaluation record computed by other library code than this checkout's (its per-file
code hashes differ) is imported and reported as stale: refusing it would throw away GPU work
done at an earlier commit, and every chapter's provenance already flags stale records.

A model record names its dataset by name, file name and SHA-256: `dataset.source` holds the
file name ("mnist.npz"). Records written before that hold the computing machine's absolute path;
they stay as committed, and import writes the file name for any it brings in (the only change
import makes to a record; records are compared after it).

Plain record files (a bench JSON written by `advbook bench` elsewhere, a model or evaluation
record) are imported the same way: each goes to the path its content gives.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from . import atomic, paths, schema, store

FORMAT = "advbook-records/1"
MANIFEST = "MANIFEST.json"
KEY = r"[0-9a-f]{16}"
STORE_PATH = re.compile(rf"^(models/{KEY}\.json|models/{KEY}\.pt|evals/{KEY}/{KEY}\.json|"
                        r"bench/[A-Za-z0-9][A-Za-z0-9._+-]*\.json)$")
COMMIT = re.compile(r"^[0-9a-f]{7,40}(\+dirty)?$")
MAX_RECORD_BYTES = 16 << 20     # a record is a few KB; a larger member is not one
MAX_WEIGHTS_BYTES = 1 << 30     # PreAct ResNet-18 is 45 MB; WideResNet-34-10 about 185 MB


class Refused(Exception):
    """An import or export refused before writing anything; `lines` says why, one line each."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _kind(rel: str) -> str:
    """'model', 'weights', 'eval' or 'bench', from a store path."""
    if rel.startswith("bench/"):
        return "bench"
    if rel.startswith("evals/"):
        return "eval"
    return "weights" if rel.endswith(".pt") else "model"


def _destination(rel: str, results: Path, bench: Path) -> Path:
    return bench / rel.split("/", 1)[1] if rel.startswith("bench/") else results / rel


def expected_path(record: dict, kind: str) -> str | None:
    """The store path a model or evaluation record's content gives it (None for bench records,
    whose file names are free)."""
    if kind == "model":
        return f"models/{store.key(record['config'])}.json"
    if kind == "eval":
        return f"evals/{record['model']}/{store.eval_key(record['model'], record['spec'], record['test'])}.json"
    return None


def normalized(record: dict, kind: str) -> dict:
    """The record as this store keeps it: a model record's dataset named by its file name."""
    if kind == "model" and isinstance(record.get("dataset"), dict) and isinstance(record["dataset"].get("source"), str):
        return {**record, "dataset": {**record["dataset"], "source": store.source_name(record["dataset"]["source"])}}
    return record


# ----------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------

def stored_files(results: Path, bench: Path, weights: bool = False) -> dict[str, Path]:
    """{store path: file} of every record (and, with `weights`, every weights file) here."""
    found = {}
    for f in sorted(results.glob("models/*.json")) + sorted(results.glob("evals/*/*.json")):
        found[f.relative_to(results).as_posix()] = f
    if weights:
        for f in sorted(results.glob("models/*.pt")):
            if not f.name.endswith(".ckpt.pt"):
                found[f.relative_to(results).as_posix()] = f
    for f in sorted(bench.glob("*.json")):
        found[f"bench/{f.name}"] = f
    return {rel: f for rel, f in found.items() if STORE_PATH.match(rel)}


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=paths.PROJECT_ROOT, capture_output=True, text=True,
                          check=True).stdout


def committed_blobs(commit: str) -> dict[str, str]:
    """{store path: git blob hash} of the records git holds at `commit` (data/results/ and
    data/bench/ of the project); Refused if `commit` is not a commit here."""
    try:
        full = _git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}").strip()
        listing = _git("ls-tree", "-r", "-z", full, "--", "data/results", "data/bench")
    except (OSError, subprocess.CalledProcessError):
        raise Refused([f"--since {commit}: not a commit of this git checkout (--all exports every record)"]) from None
    blobs = {}
    for entry in filter(None, listing.split("\0")):
        meta, path = entry.split("\t", 1)
        for prefix, into in (("data/results/", ""), ("data/bench/", "bench/")):
            if path.startswith(prefix):
                blobs[into + path[len(prefix):]] = meta.split()[2]
    return blobs


def _blob_hash(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def chapter_files(names: list[str], profile: str, results: Path) -> set[str]:
    """The store paths of the model and evaluation records of these chapters' experiments (the
    `performance` chapter: the bench records)."""
    from . import chapters

    rels = set()
    for name in names:
        chapter = chapters.get(name)
        if name == "performance":
            rels.add("bench/*")
        for config in chapter.experiments(chapter.settings(profile)):
            mkey, test = store.model_key(config), store.test_selection(config)
            rels.add(f"models/{mkey}.json")
            rels.add(f"models/{mkey}.pt")
            rels.update(f"evals/{mkey}/{store.eval_key(mkey, spec, test)}.json" for spec in config["evaluate"])
    return rels


def select(results: Path, bench: Path, *, since: str | None = "HEAD", chapters: list[str] | None = None,
           profile: str = "smoke", weights: bool = False) -> tuple[dict[str, Path], str]:
    """The files an export packs, {store path: file}, and the selection in words (above)."""
    files = stored_files(results, bench, weights)
    words = []
    if chapters:
        wanted = chapter_files(chapters, profile, results)
        files = {rel: f for rel, f in files.items()
                 if rel in wanted or (rel.startswith("bench/") and "bench/*" in wanted)}
        words.append(f"the records of {', '.join(chapters)} ({profile} profile)")
    if since is not None:
        blobs = committed_blobs(since)
        # a weights file is never committed: it goes with its model record when that is selected
        records = {rel: f for rel, f in files.items() if not rel.endswith(".pt")
                   and blobs.get(rel) != _blob_hash(f.read_bytes())}
        files = {**records, **{rel: f for rel, f in files.items() if rel.endswith(".pt")
                               and rel[:-3] + ".json" in records}}
        words.append(f"not in commit {since} with this content")
    return dict(sorted(files.items())), "; ".join(words) or "every record"


def export(output: Path, files: dict[str, Path], selection: str) -> dict:
    """Pack `files` ({store path: file}) with a manifest into the tar.gz `output`, written
    atomically; returns the manifest. Refused (nothing written) if a record fails its schema."""
    contents, bad = {}, []
    for rel, f in files.items():
        content = f.read_bytes()
        if not rel.endswith(".pt"):
            try:
                found = schema.problems(json.loads(content), _kind(rel))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                found = [f"not JSON ({exc})"]
            if found:
                bad.append(f"{f}: {schema.summary(found)}")
        contents[rel] = content
    if bad:
        raise Refused(bad)
    if not contents:
        raise Refused([f"nothing to export: no record is {selection} (--all exports every record)"])
    manifest = {"format": FORMAT, "commit": store.library_commit(),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "selection": selection,
                "files": [{"path": rel, "bytes": len(c), "sha256": _sha256(c)} for rel, c in contents.items()]}
    now = int(time.time())

    def fill(f):
        with tarfile.open(fileobj=f, mode="w:gz") as tar:
            for rel, content in [(MANIFEST, json.dumps(manifest, indent=1).encode() + b"\n"), *contents.items()]:
                info = tarfile.TarInfo(rel)
                info.size, info.mtime, info.mode = len(content), now, 0o644
                tar.addfile(info, io.BytesIO(content))

    atomic.write_atomic(output, "wb", fill)
    return manifest


# ----------------------------------------------------------------------------------------
# Import
# ----------------------------------------------------------------------------------------

@dataclass
class Item:
    """One file to import: its store path, bytes as they will be written, parsed record."""
    rel: str
    content: bytes
    record: dict | None
    source: str         # where it came from, for messages: "ARCHIVE:member" or the file
    batch: str          # the archive's (or file's) name: conflicts are kept under conflicts/<batch>/


@dataclass
class Report:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, Path]] = field(default_factory=list)
    stale: dict[str, list[str]] = field(default_factory=dict)   # store path: changed library files
    normalized: list[str] = field(default_factory=list)


def _batch_name(path: Path) -> str:
    name = path.name
    for suffix in (".tar.gz", ".tgz", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _member_problem(member: tarfile.TarInfo) -> str | None:
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith("/") or "\\" in name or ".." in parts or not parts:
        return "an absolute or escaping path"
    if member.isdir():
        return None if name.rstrip("/") in {"models", "evals", "bench"} or re.match(rf"^evals/{KEY}/?$", name) \
            else "a folder outside models/, evals/, bench/"
    if not member.isfile():
        return f"a {'link' if member.issym() or member.islnk() else 'special file'}, not a plain file"
    if name != MANIFEST and not STORE_PATH.match(name):
        return "not a store path (models/KEY.json, models/KEY.pt, evals/KEY/KEY.json, bench/NAME.json)"
    limit = MAX_WEIGHTS_BYTES if name.endswith(".pt") else MAX_RECORD_BYTES
    if member.size > limit:
        return f"{member.size} bytes, more than any {'weights file' if name.endswith('.pt') else 'record'}"
    return None


def read_archive(path: Path) -> tuple[list[Item], list[str]]:
    """The members of the archive at `path`, read into memory and checked against its manifest
    (nothing is extracted), and the problems found, one line each."""
    batch, members, problems = _batch_name(path), {}, []
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                problem = _member_problem(member)
                if problem:
                    problems.append(f"{path}: member '{member.name}' is {problem}")
                    continue
                if member.isdir():
                    continue
                if member.name in members:
                    problems.append(f"{path}: member '{member.name}' appears twice")
                    continue
                members[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        return [], [f"{path}: not a readable tar.gz archive ({type(exc).__name__}: {exc})"]
    if MANIFEST not in members:
        return [], problems + [f"{path}: no {MANIFEST} (an archive written by `advbook export` has one)"]
    try:
        manifest = json.loads(members.pop(MANIFEST))
        listed = {f["path"]: f["sha256"] for f in manifest["files"]}
        assert manifest["format"] == FORMAT, f"format {manifest['format']!r}, expected {FORMAT}"
        assert isinstance(manifest["commit"], str) and manifest["commit"], "no commit"
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AssertionError) as exc:
        return [], problems + [f"{path}: {MANIFEST} is not a manifest of `advbook export` "
                               f"({type(exc).__name__}: {exc})"]
    for rel in sorted(set(listed) - set(members)):
        if STORE_PATH.match(rel):  # a foreign name was reported above already
            problems.append(f"{path}: {rel} is in the manifest but not in the archive")
    items = []
    for rel, content in members.items():
        if rel not in listed:
            problems.append(f"{path}: member '{rel}' is not in the manifest")
        elif listed[rel] != _sha256(content):
            problems.append(f"{path}: member '{rel}' does not match its SHA-256 in the manifest (altered or truncated)")
        else:
            items.append(Item(rel, content, None, f"{path}:{rel}", batch))
    return items, problems


def read_file(path: Path) -> tuple[list[Item], list[str]]:
    """A plain record file (JSON): one item at the store path its content gives."""
    try:
        content = path.read_bytes()
        record = json.loads(content)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [], [f"{path}: not a readable JSON record ({type(exc).__name__}: {exc})"]
    if not isinstance(record, dict):
        return [], [f"{path}: the record is {type(record).__name__}, not an object"]
    if "kind" in record or not ({"spec", "config"} & set(record)):
        rel = f"bench/{path.name}"  # a bench record, or nothing the book writes: its schema says which
    elif "spec" in record:
        found = schema.problems(record, "eval")
        if found:
            return [], [f"{path}: {schema.summary(found)}"]
        rel = expected_path(record, "eval")
    else:
        found = schema.problems(record, "model")
        if found:
            return [], [f"{path}: {schema.summary(found)}"]
        rel = expected_path(record, "model")
    if not STORE_PATH.match(rel):
        return [], [f"{path}: the file name gives no store path {rel}"]
    return [Item(rel, content, None, str(path), _batch_name(path))], []


def check(items: list[Item]) -> list[str]:
    """Parse and check every record item (schema, commit, path), normalizing model records;
    the problems, one line each."""
    problems = []
    for item in items:
        kind = _kind(item.rel)
        if kind == "weights":
            continue
        try:
            record = json.loads(item.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{item.source}: not JSON ({exc})")
            continue
        found = schema.problems(record, kind)
        if not found and not COMMIT.match(record["commit"]):
            found = [f"field 'commit' is {record['commit']!r}, expected a git commit"]
        if found:
            problems.append(f"{item.source}: {schema.summary(found)}")
            continue
        expected = expected_path(record, kind)
        if expected is not None and expected != item.rel:
            field_name = "config" if kind == "model" else "model/spec/test"
            problems.append(f"{item.source}: field '{field_name}' gives the store path {expected}, not {item.rel}")
            continue
        item.record = normalized(record, kind)
    return problems


def _loads_weights(content: bytes) -> str | None:
    import torch

    try:
        state = torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds here; any means: not a weights file
        return f"not a weights file torch loads with weights_only=True ({type(exc).__name__})"
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return "not a state dict of tensors"
    return None


def _same(existing: Path, item: Item) -> bool:
    if item.record is None:
        return existing.read_bytes() == item.content
    try:
        return normalized(json.loads(existing.read_bytes()), _kind(item.rel)) == item.record
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False  # an unreadable record in the store: the import is another record, kept apart


def _encoded(item: Item) -> bytes:
    """The bytes to write: the file as it came, unless import normalized the record."""
    if item.record is not None and json.loads(item.content) != item.record:
        return json.dumps(item.record, indent=1, sort_keys=True).encode() + b"\n"
    return item.content


def import_records(sources: list[Path], results: Path | None = None, bench: Path | None = None) -> Report:
    """Import archives (tar.gz) and plain record files into the store, all or nothing (above);
    Refused, with one line per problem and nothing written, if any check fails. Into your store
    (the default), a record the book's store beneath it holds already is skipped, and an
    evaluation may name a model that only the book's store holds."""
    beneath = [] if results is not None else paths.results_roots()[1:]
    results = results or paths.results_root()
    bench = bench or paths.BENCH
    items, problems = [], []
    for source in sources:
        source = Path(source)
        if not source.is_file():
            problems.append(f"{source}: no such file")
            continue
        found, bad = (read_file if source.suffix == ".json" else read_archive)(source)
        items += found
        problems += bad
    problems += check(items)
    by_rel: dict[str, Item] = {}
    for item in items:
        if item.rel in by_rel and by_rel[item.rel].content != item.content:
            problems.append(f"{item.source}: {item.rel} also comes, with other content, from {by_rel[item.rel].source}")
        by_rel.setdefault(item.rel, item)
    models_here = {rel for rel in by_rel if _kind(rel) == "model"} | \
        {f"models/{p.name}" for root in (results, *beneath) for p in root.glob("models/*.json")}
    for rel, item in by_rel.items():
        if _kind(rel) == "weights":
            problem = _loads_weights(item.content)
            if problem:
                problems.append(f"{item.source}: {problem}")
            elif rel[:-3] + ".json" not in models_here:
                problems.append(f"{item.source}: its model record {rel[:-3]}.json is neither imported nor stored")
        elif _kind(rel) == "eval" and item.record is not None and f"models/{item.record['model']}.json" not in models_here:
            problems.append(f"{item.source}: its model record models/{item.record['model']}.json "
                            "is neither imported nor stored")
    if problems:
        raise Refused(problems)

    report = Report()
    plan: list[tuple[Path, bytes]] = []
    conflicting_models = {rel.split("/")[1][:16] for rel, item in by_rel.items() if _kind(rel) == "model"
                          and _destination(rel, results, bench).exists()
                          and not _same(_destination(rel, results, bench), item)}
    order = {"weights": 0, "model": 1, "eval": 2, "bench": 3}
    for rel, item in sorted(by_rel.items(), key=lambda kv: (order[_kind(kv[0])], kv[0])):
        target = _destination(rel, results, bench)
        mkey = rel.split("/")[1][:16] if not rel.startswith("bench/") else None
        if any(t.exists() and _same(t, item) for t in (target, *(_destination(rel, root, bench) for root in beneath))):
            report.skipped.append(rel)
            continue
        if target.exists() or mkey in conflicting_models:
            apart = results / "conflicts" / item.batch / rel
            if apart.exists():
                if _same(apart, item):
                    report.skipped.append(rel)
                    continue
                raise Refused([f"{item.source}: conflicts with {target}, and {apart} holds yet another version; "
                               "nothing imported (rename the archive to keep this one apart too)"])
            plan.append((apart, _encoded(item)))
            report.conflicts.append((rel, apart))
        else:
            plan.append((target, _encoded(item)))
            report.written.append(rel)
        if item.record is not None and _kind(rel) in ("model", "eval"):
            changed = store.changed_code(item.record, _kind(rel))
            if changed:
                report.stale[rel] = changed
        if item.record is not None and json.loads(item.content) != item.record:
            report.normalized.append(rel)
    created = []
    try:
        for target, content in plan:
            created.append(atomic.create_new(content, target))  # an import never overwrites a record
    except BaseException as exc:
        for f in created:  # all or nothing: what this import wrote goes again
            f.unlink(missing_ok=True)
        if isinstance(exc, FileExistsError):
            raise Refused([f"{exc.filename}: appeared during the import; nothing imported, run it again"]) from None
        raise
    return report


def describe(report: Report) -> list[str]:
    """What an import did, a few lines."""
    kinds = {}
    for rel in report.written:
        kinds[_kind(rel)] = kinds.get(_kind(rel), 0) + 1
    names = {"model": "model records", "weights": "weights files", "eval": "evaluation records",
             "bench": "bench records"}
    lines = [f"imported {len(report.written)} files" + (f" ({', '.join(f'{n} {names[k]}' for k, n in kinds.items())})"
                                                        if kinds else "")
             + f"; {len(report.skipped)} identical ones were already stored"]
    lines += [f"conflict: {rel} differs from the stored one; kept apart as {apart}" for rel, apart in report.conflicts]
    if report.normalized:
        lines.append(f"{len(report.normalized)} model records named their dataset by a path: written with its file name")
    if report.stale:
        changed = sorted({f for files in report.stale.values() for f in files})
        lines.append(f"stale: {len(report.stale)} records were computed by other library code than this checkout's "
                     f"(changed: {', '.join(changed)}); imported, and flagged wherever a chapter shows them")
    return lines
