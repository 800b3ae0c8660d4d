"""`advbook export` / `advbook import`: records from another machine, checked on the way in;
and the notebook kernel's transport."""
import dataclasses
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

from advbook import atomic, exchange, experiments, paths, store
from advbook.cli import main

COMMITTED = paths.PROJECT_ROOT / "data" / "results"
CONFIG = {"chapter": "test", "profile": "smoke", "dataset": "digits", "subset": {"train": 200, "test": 60},
          "model": {"name": "small-cnn", "width": 4},
          "train": {"defense": "standard", "epochs": 1, "batch_size": 64, "seed": 0},
          "evaluate": [{"name": "clean", "attack": "clean"}, {"name": "fgsm", "attack": "fgsm", "params": {"eps": 0.1}}]}


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def computed(tmp_path, monkeypatch):
    """A store with one trained model (record, weights, two evaluations) and a bench folder
    with one bench record; returns (results root, bench root)."""
    bench = tmp_path / "bench"
    bench.mkdir()
    shutil.copy(paths.BENCH / "bench-cpu.json", bench / "bench-cpu.json")
    monkeypatch.setattr(paths, "BENCH", bench)
    experiments.get_or_compute(CONFIG, progress=False)
    return paths.results_root(), bench


def archive_of(computed, tmp_path, weights=False, name="run.tar.gz") -> Path:
    results, bench = computed
    files, selection = exchange.select(results, bench, since=None, weights=weights)
    exchange.export(tmp_path / name, files, selection)
    return tmp_path / name


def tar_with(path: Path, members: list[tuple[str, bytes]], manifest: bool = True, extra=()) -> Path:
    """A hand-made archive: `members` (name, content), a manifest listing them, and `extra`
    TarInfo entries (links) added as they are."""
    with tarfile.open(path, "w:gz") as tar:
        listed = [{"path": n, "bytes": len(c), "sha256": exchange._sha256(c)} for n, c in members]
        if manifest:
            members = [(exchange.MANIFEST, json.dumps({"format": exchange.FORMAT, "commit": "abc1234",
                                                       "created": "now", "files": listed}).encode()), *members]
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for info in extra:
            tar.addfile(info)
    return path


def refused_lines(sources, results, bench) -> list[str]:
    with pytest.raises(exchange.Refused) as caught:
        exchange.import_records(sources, results, bench)
    return caught.value.lines


# ----------------------------------------------------------------------------------------
# export, then import
# ----------------------------------------------------------------------------------------

def test_export_then_import_into_an_empty_store_gives_identical_records(computed, tmp_path):
    results, bench = computed
    archive = archive_of(computed, tmp_path, weights=True)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(exchange.MANIFEST).read())
    assert names[0] == exchange.MANIFEST and manifest["commit"] and manifest["created"]
    assert {f["path"] for f in manifest["files"]} == set(names[1:])
    assert len([n for n in names if n.startswith("evals/")]) == 2 and "bench/bench-cpu.json" in names
    assert any(n.endswith(".pt") for n in names)
    empty, empty_bench = tmp_path / "empty", tmp_path / "empty-bench"
    report = exchange.import_records([archive], empty, empty_bench)
    assert len(report.written) == len(names) - 1 and not report.conflicts and not report.stale
    originals = {k: v for k, v in files_under(results).items() if k.endswith((".json", ".pt"))}
    assert files_under(empty) == originals
    assert files_under(empty_bench) == files_under(bench)
    # the same archive again: every record is there, identical, and skipped
    again = exchange.import_records([archive], empty, empty_bench)
    assert again.written == [] and len(again.skipped) == len(names) - 1


def test_the_command_line_exports_the_records_not_committed_and_imports_them(computed, tmp_path, monkeypatch, capsys):
    results, _ = computed
    committed = next(COMMITTED.glob("models/*.json"))  # a record git holds at HEAD, byte for byte
    shutil.copy(committed, results / "models" / committed.name)
    archive = tmp_path / "since-head.tar.gz"
    assert main(["export", "-o", str(archive)]) == 0
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    # committed already, byte for byte: not packed by default (the bench record is a copy of a committed one)
    assert f"models/{committed.name}" not in names and "bench/bench-cpu.json" not in names
    assert f"models/{store.model_key(CONFIG)}.json" in names
    assert not any(n.endswith(".pt") for n in names)  # weights only with --weights
    assert "selection: not in commit HEAD" in capsys.readouterr().out
    monkeypatch.setenv("ADVBOOK_RESULTS", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(paths, "BENCH", tmp_path / "elsewhere-bench")
    assert main(["import", str(archive)]) == 0
    assert f"imported {len(names) - 1} files" in capsys.readouterr().out


def test_export_by_chapter_packs_that_chapters_records(computed, tmp_path, monkeypatch):
    from advbook import chapters

    results, bench = computed
    primer = chapters.get("primer")
    config = primer.experiments(primer.settings("smoke"))[0]
    mkey = store.model_key(config)
    # stand-ins at the primer's first model's paths; the test model's records are not primer's
    record = json.loads((results / "models" / f"{store.model_key(CONFIG)}.json").read_text())
    store.write(record, results / "models" / f"{mkey}.json")
    files, selection = exchange.select(results, bench, since=None, chapters=["primer"], profile="smoke")
    assert list(files) == [f"models/{mkey}.json"] and "primer (smoke profile)" in selection


def test_export_refuses_a_record_failing_its_schema(computed, tmp_path):
    results, bench = computed
    path = results / "models" / f"{store.model_key(CONFIG)}.json"
    record = json.loads(path.read_text())
    del record["history"]
    store.write(record, path)
    with pytest.raises(exchange.Refused) as caught:
        archive_of(computed, tmp_path)
    assert caught.value.lines == [f"{path}: field 'history' is missing"]
    assert not (tmp_path / "run.tar.gz").exists()


# ----------------------------------------------------------------------------------------
# what import refuses, one line each, writing nothing
# ----------------------------------------------------------------------------------------

def test_a_corrupt_archive_is_refused_in_one_line(computed, tmp_path):
    archive = archive_of(computed, tmp_path)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not an archive at all")
    target = tmp_path / "target"
    lines = refused_lines([truncated, garbage], target, tmp_path / "target-bench")
    assert len(lines) == 2 and str(truncated) in lines[0] and str(garbage) in lines[1]
    assert all("not a readable tar.gz archive" in line for line in lines)
    assert not target.exists()


def test_foreign_members_are_refused_one_line_each_and_nothing_is_extracted(computed, tmp_path):
    results, bench = computed
    record = (results / "models" / f"{store.model_key(CONFIG)}.json").read_bytes()
    link = tarfile.TarInfo("models/0123456789abcdef.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = tar_with(tmp_path / "foreign.tar.gz",
                       [("../escaped.json", b"{}"), ("/tmp/absolute.json", b"{}"), ("models/../../up.json", b"{}"),
                        ("notes.txt", b"hello"), (f"models/{store.model_key(CONFIG)}.json", record)], extra=[link])
    target = tmp_path / "target"
    lines = refused_lines([archive], target, tmp_path / "target-bench")
    assert len(lines) == 5, lines
    for name in ("../escaped.json", "/tmp/absolute.json", "models/../../up.json", "notes.txt",
                 "models/0123456789abcdef.json"):
        assert sum(f"'{name}'" in line for line in lines) == 1, name
    assert "link" in next(line for line in lines if "0123456789abcdef" in line)
    assert sum("an absolute or escaping path" in line for line in lines) == 3
    assert not target.exists() and not (tmp_path / "escaped.json").exists() and not (tmp_path / "up.json").exists()


def test_a_member_altered_after_export_is_refused(computed, tmp_path):
    results, _ = computed
    rel = f"models/{store.model_key(CONFIG)}.json"
    record = json.loads((results / rel).read_text())
    archive = tar_with(tmp_path / "altered.tar.gz", [(rel, json.dumps(record).encode())])
    with tarfile.open(archive) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar]
    record["train_seconds"] = 0.5
    altered = tmp_path / "altered2.tar.gz"
    with tarfile.open(altered, "w:gz") as tar:
        for name, content in members:
            content = json.dumps(record).encode() if name == rel else content
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    lines = refused_lines([altered], tmp_path / "target", tmp_path / "target-bench")
    assert len(lines) == 1 and rel in lines[0] and "SHA-256" in lines[0]
    lines = refused_lines([tar_with(tmp_path / "bare.tar.gz", [(rel, b"{}")], manifest=False)],
                          tmp_path / "target", tmp_path / "target-bench")
    assert len(lines) == 1 and "no MANIFEST.json" in lines[0]


def test_a_record_failing_its_schema_is_refused_naming_the_file_and_the_field(computed, tmp_path):
    results, _ = computed
    path = next((results / "evals").rglob("*.json"))
    rel = path.relative_to(results).as_posix()
    record = json.loads(path.read_text())
    record["result"]["accuracy"] = 1.5
    archive = tar_with(tmp_path / "bad.tar.gz", [(rel, json.dumps(record).encode())])
    target = tmp_path / "target"
    lines = refused_lines([archive], target, tmp_path / "target-bench")
    assert len(lines) == 1 and rel in lines[0] and "field 'result.accuracy' is 1.5" in lines[0]
    assert not target.exists()


def test_per_image_outcomes_that_do_not_give_the_accuracy_are_refused(computed, tmp_path):
    """Catches an imported evaluation whose per-image outcomes are not its own (a worst case built
    on them would be another model's): wrong length, a digit above its draws, a flipped image."""
    from advbook import schema

    results, _ = computed
    path = next(p for p in (results / "evals").rglob("*.json") if json.loads(p.read_text())["spec"]["attack"] != "clean")
    record = json.loads(path.read_text())
    text = record["result"]["per_image"]
    assert schema.problems(record, "eval") == [] and len(text) == record["result"]["n"] and "0" in text
    flipped = text.replace("0", "1", 1)
    for bad, says in ((text[:-1], "one digit per image"), (text.replace("0", "2", 1), "at most 1"),
                      (flipped, "gives accuracy")):
        found = schema.problems({**record, "result": {**record["result"], "per_image": bad}}, "eval")
        assert len(found) == 1 and says in found[0], found
    rel = path.relative_to(results).as_posix()
    record["result"]["per_image"] = flipped
    archive = tar_with(tmp_path / "bad.tar.gz", [(rel, json.dumps(record).encode())])
    lines = refused_lines([archive], tmp_path / "target", tmp_path / "target-bench")
    assert len(lines) == 1 and rel in lines[0] and "result.per_image" in lines[0]


def test_a_record_under_a_path_its_content_does_not_give_is_refused(computed, tmp_path):
    results, _ = computed
    record = (results / "models" / f"{store.model_key(CONFIG)}.json").read_bytes()
    archive = tar_with(tmp_path / "moved.tar.gz", [("models/0123456789abcdef.json", record)])
    lines = refused_lines([archive], tmp_path / "target", tmp_path / "target-bench")
    assert len(lines) == 1 and "field 'config'" in lines[0]


def test_a_record_without_a_commit_is_refused(computed, tmp_path):
    results, _ = computed
    rel = f"models/{store.model_key(CONFIG)}.json"
    record = {**json.loads((results / rel).read_text()), "commit": "unknown"}
    lines = refused_lines([tar_with(tmp_path / "a.tar.gz", [(rel, json.dumps(record).encode())])],
                          tmp_path / "target", tmp_path / "target-bench")
    assert len(lines) == 1 and "field 'commit' is 'unknown'" in lines[0]


def test_an_evaluation_or_weights_without_their_model_are_refused(computed, tmp_path):
    results, _ = computed
    mkey = store.model_key(CONFIG)
    evaluation = next((results / "evals").rglob("*.json"))
    members = [(evaluation.relative_to(results).as_posix(), evaluation.read_bytes()),
               (f"models/{mkey}.pt", (results / "models" / f"{mkey}.pt").read_bytes())]
    lines = refused_lines([tar_with(tmp_path / "orphans.tar.gz", members)], tmp_path / "target",
                          tmp_path / "target-bench")
    assert len(lines) == 2 and all("neither imported nor stored" in line for line in lines)
    record = (results / "models" / f"{mkey}.json").read_bytes()
    broken = [(f"models/{mkey}.json", record), (f"models/{mkey}.pt", b"not torch")]
    lines = refused_lines([tar_with(tmp_path / "broken.tar.gz", broken)], tmp_path / "target",
                          tmp_path / "target-bench")
    assert len(lines) == 1 and "weights_only=True" in lines[0]


def test_a_conflicting_record_is_kept_apart_and_the_stored_one_untouched(computed, tmp_path, capsys):
    results, bench = computed
    archive = archive_of(computed, tmp_path, name="gpu-run.tar.gz")
    path = next((results / "evals").rglob("*.json"))
    rel = path.relative_to(results).as_posix()
    stored = json.loads(path.read_text())
    stored["result"]["accuracy"] = 0.123  # the store holds another computation of this evaluation
    store.write(stored, path)
    before = files_under(results)
    assert main(["import", str(archive)]) == 0
    out = capsys.readouterr().out
    conflict_lines = [line for line in out.splitlines() if line.startswith("conflict:")]
    assert len(conflict_lines) == 1 and rel in conflict_lines[0]
    after = files_under(results)
    assert set(after) - set(before) == {f"conflicts/gpu-run/{rel}"} and all(after[k] == before[k] for k in before)
    assert json.loads(path.read_text())["result"]["accuracy"] == 0.123
    assert json.loads((results / "conflicts" / "gpu-run" / rel).read_text())["result"]["accuracy"] != 0.123


def test_the_evaluations_of_a_conflicting_model_are_kept_apart_with_it(computed, tmp_path):
    results, bench = computed
    archive = archive_of(computed, tmp_path, name="other.tar.gz")
    mkey = store.model_key(CONFIG)
    evals = sorted((results / "evals" / mkey).glob("*.json"))
    evals[0].unlink()  # the store lacks one evaluation of the model ...
    record = json.loads((results / "models" / f"{mkey}.json").read_text())
    store.write({**record, "train_seconds": 123.0}, results / "models" / f"{mkey}.json")  # ... and trained it apart
    report = exchange.import_records([archive], results, bench)
    apart = {rel for rel, _ in report.conflicts}
    assert f"models/{mkey}.json" in apart and evals[0].relative_to(results).as_posix() in apart
    assert not evals[0].exists()


def test_the_command_line_says_refused_one_line_each_and_exits_2(computed, tmp_path, capsys):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b garbage")
    assert main(["import", str(garbage)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith(f"advbook: refused: {garbage}") and "nothing imported" in err[1]


def test_an_import_that_fails_while_writing_leaves_nothing(computed, tmp_path, monkeypatch):
    archive = archive_of(computed, tmp_path)
    target = tmp_path / "target"
    create, calls = atomic.create_new, []

    def fail_on_the_third(content, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return create(content, path)

    monkeypatch.setattr(atomic, "create_new", fail_on_the_third)
    with pytest.raises(OSError, match="disk full"):
        exchange.import_records([archive], target, tmp_path / "target-bench")
    assert len(calls) == 3 and files_under(target) == {} and files_under(tmp_path / "target-bench") == {}


# ----------------------------------------------------------------------------------------
# provenance on the way in: stale code, the dataset's name, plain bench records
# ----------------------------------------------------------------------------------------

def test_a_record_of_other_library_code_is_imported_and_reported_stale(computed, tmp_path):
    results, bench = computed
    rel = f"models/{store.model_key(CONFIG)}.json"
    record = json.loads((results / rel).read_text())
    record["code_files"] = {**record["code_files"], "train.py": "0000000000000000"}
    archive = tar_with(tmp_path / "old-code.tar.gz", [(rel, json.dumps(record).encode())])
    report = exchange.import_records([archive], tmp_path / "target", tmp_path / "target-bench")
    assert report.written == [rel] and report.stale == {rel: ["train.py"]}
    assert any("stale: 1 records" in line and "train.py" in line for line in exchange.describe(report))


def test_records_name_their_dataset_by_file_name(computed, tmp_path, digits):
    results, _ = computed
    # the writer: a dataset read from a file names the file, not the folder it was in
    dataset = dataclasses.replace(digits, source="/home/someone/datasets/mnist.npz")
    config = {**CONFIG, "train": {**CONFIG["train"], "seed": 1}}
    _, record = experiments.train_model(config, dataset.subset(100, 20, seed=0), device=torch.device("cpu"),
                                        progress=False)
    assert record["dataset"]["source"] == "mnist.npz"
    # an older record with the computing machine's path (as records were written before they named
    # the file; made here from a committed one, whatever the store holds today): imported with the name
    committed = next(COMMITTED.glob("models/*.json"))
    original = json.loads(committed.read_text())
    original["dataset"] = {**original["dataset"],
                           "source": "/home/someone/datasets/" + Path(original["dataset"]["source"]).name}
    older = tmp_path / "older" / committed.name
    older.parent.mkdir()
    older.write_text(json.dumps(original))
    archive = tar_with(tmp_path / "older.tar.gz", [(f"models/{older.name}", older.read_bytes())])
    report = exchange.import_records([archive], tmp_path / "target", tmp_path / "target-bench")
    imported = json.loads((tmp_path / "target" / "models" / older.name).read_text())
    assert imported["dataset"]["source"] == Path(original["dataset"]["source"]).name
    assert {k: v for k, v in imported.items() if k != "dataset"} == {k: v for k, v in original.items() if k != "dataset"}
    assert report.normalized == [f"models/{older.name}"]
    # a store holding the older record, path and all, holds the same record: skipped, not a conflict
    (tmp_path / "committed" / "models").mkdir(parents=True)
    shutil.copy(older, tmp_path / "committed" / "models" / older.name)
    again = exchange.import_records([archive], tmp_path / "committed", tmp_path / "target-bench")
    assert again.skipped == [f"models/{older.name}"] and not again.conflicts


def test_plain_bench_records_are_checked_and_go_to_the_bench_folder(tmp_path):
    record = json.loads((paths.BENCH / "time-to-robustness-cpu-quick.json").read_text())
    good = tmp_path / "time-to-robustness-x.json"
    good.write_text(json.dumps(record))
    bad = tmp_path / "loose-numbers.json"
    bad.write_text(json.dumps({"clean": 0.7, "pgd50_10": 0.4}))
    bench = tmp_path / "bench"
    lines = refused_lines([good, bad], tmp_path / "results", bench)
    assert lines == [f"{bad}: field 'kind' is missing, expected one of bench, time-to-robustness"]
    assert not bench.exists()
    report = exchange.import_records([good], tmp_path / "results", bench)
    assert report.written == ["bench/time-to-robustness-x.json"] and (bench / good.name).read_bytes() == good.read_bytes()


# ----------------------------------------------------------------------------------------
# the notebook kernel
# ----------------------------------------------------------------------------------------

def test_the_notebook_kernel_runs_without_the_unencrypted_tcp_warning(tmp_path, monkeypatch, capfd):
    from advbook import notebooks

    (tmp_path / "tiny.py").write_text("# %%\nprint('ran')\n")
    monkeypatch.setattr(notebooks, "NOTEBOOKS", tmp_path)
    notebooks.execute_notebook("tiny", {}, tmp_path / "out" / "tiny.ipynb")
    assert "ran" in (tmp_path / "out" / "tiny.ipynb").read_text()
    assert "without encryption" not in capfd.readouterr().err


# ----------------------------------------------------------------------------------------
# the GPU records on the Performance page
# ----------------------------------------------------------------------------------------

def test_the_performance_page_reads_each_gpu_target_met_or_missed():
    from advbook.chapters import performance

    def bench(seconds, speedup):
        return {"kind": "bench", "file": "b.json", "device": "NVIDIA H200", "commit": "abc", "quick": False,
                "rows": [{"model": "preact-resnet18", "method": "pgd10", "epoch_seconds_50k": seconds,
                          "speedup": speedup}]}

    def ttr(clean, robust, wall, train):
        return {"kind": "time-to-robustness", "file": "t.json", "device": "NVIDIA H200", "commit": "abc",
                "quick": False, "train": {"epochs": 15, "batch_size": 128}, "clean_acc": clean,
                "robust_acc": robust, "wall_seconds": wall, "train_seconds": train,
                "eval": {"attack": "PGD-50, 10 restarts", "n": 10_000}}

    def verdicts(lines):
        return [word for line in lines for word in ("met", "missed") for _ in range(line.count(f"**{word}**"))]

    assert verdicts(performance.gpu_bench_lines(bench(3.9, 3.1))) == ["met", "met"]
    assert verdicts(performance.gpu_bench_lines(bench(4.1, 2.9))) == ["missed", "missed"]
    assert sorted(verdicts(performance.gpu_ttr_lines(ttr(0.83, 0.47, 89, 60)))) == ["met"] * 4
    assert verdicts(performance.gpu_ttr_lines(ttr(0.81, 0.47, 91, 60))).count("missed") == 3  # clean, wall, eval
    lines = performance.gpu_target_lines([bench(3.9, 3.1)], [ttr(0.83, 0.47, 89, 60)])
    assert len(lines) == 4 and all("NVIDIA H200, commit abc" in line for line in lines)
    # the page reads the imported H200 records, beside the CPU ones
    stored = performance.records("bench") + performance.records("time-to-robustness")
    assert {r["file"] for r in stored if performance.on_gpu(r)} == {"bench-cuda.json", "time-to-robustness-cuda.json"}
    assert any(r["device"].startswith("CPU") for r in stored)


def test_a_bench_record_failing_its_schema_stops_the_page_naming_the_field(tmp_path, monkeypatch):
    from advbook.chapters import performance

    record = json.loads((paths.BENCH / "bench-cuda.json").read_text())
    record["rows"][0]["epoch_seconds_50k"] = "fast"
    (tmp_path / "bench-x.json").write_text(json.dumps(record))
    monkeypatch.setattr(performance, "BENCH_DIR", tmp_path)
    with pytest.raises(store.CorruptRecord, match=r"bench-x.json .*field 'rows\[0\].epoch_seconds_50k' is 'fast'"):
        performance.records("bench")
