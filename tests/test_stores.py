"""Your store over the book's (advbook.paths.results_roots): what you compute is written into
data/local/ and read before the committed data/results/ beneath it, so a rerun never changes the
committed store and an export ships only your records; `--store book` writes the book's store."""
import json
import os

import pytest
import torch

from advbook import cli, exchange, paths, pruning, store
from advbook.errors import ParameterError


@pytest.fixture
def stores(tmp_path, monkeypatch):
    """A book store and a local store in tmp_path, with $ADVBOOK_RESULTS unset (the conftest sets it)."""
    book, local = tmp_path / "book", tmp_path / "local"
    monkeypatch.delenv("ADVBOOK_RESULTS", raising=False)
    monkeypatch.setenv("ADVBOOK_STORE", "local")  # recorded, so that what a test's command sets is undone
    monkeypatch.delenv("ADVBOOK_STORE")
    monkeypatch.setattr(paths, "BOOK_RESULTS", book)
    monkeypatch.setattr(paths, "STORES", {"local": local, "book": book})
    return book, local


def _model_record(mkey: str, created: str) -> dict:
    return {"key": mkey, "created": created}


def _put(root, rel, record):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_a_run_writes_yours_and_reads_the_books_beneath(stores, monkeypatch):
    book, local = stores
    assert paths.results_root() == local and paths.results_roots() == [local, book]
    monkeypatch.setattr(store, "read", lambda path, kind=None: json.loads(path.read_text()))
    _put(book, "models/m.json", _model_record("m", "book"))
    assert store.load_model("m")["created"] == "book"  # the book's record, read through yours
    assert store.model_path("m") == local / "models" / "m.json"  # and a new one is written into yours
    _put(local, "models/m.json", _model_record("m", "yours"))
    assert store.load_model("m")["created"] == "yours"  # yours first


def test_weights_come_from_beside_the_record_read(stores):
    book, local = stores
    _put(book, "models/m.json", {})
    torch.save({"w": torch.zeros(1)}, book / "models" / "m.pt")
    assert store.weights_path("m") == book / "models" / "m.pt"
    _put(local, "models/m.json", {})  # retrained here: the book's weights are not this record's
    assert store.weights_path("m") == local / "models" / "m.pt" and not store.weights_path("m").exists()
    model = torch.nn.Linear(1, 1)
    assert store.save_weights(model, "m") == local / "models" / "m.pt"
    assert (book / "models" / "m.pt").exists()  # the book's weights untouched


def test_store_book_writes_the_committed_store_alone(stores, monkeypatch):
    book, _ = stores
    monkeypatch.setenv("ADVBOOK_STORE", "book")
    assert paths.results_root() == book and paths.results_roots() == [book]
    monkeypatch.setenv("ADVBOOK_STORE", "elsewhere")
    with pytest.raises(ParameterError, match="ADVBOOK_STORE='elsewhere' names no store"):
        paths.results_root()


def test_advbook_results_names_one_store_alone(stores, tmp_path, monkeypatch):
    monkeypatch.setenv("ADVBOOK_RESULTS", str(tmp_path / "mine"))
    assert paths.results_roots() == [tmp_path / "mine"]


def test_the_command_line_option_reaches_the_kernel_environment(stores, monkeypatch, capsys):
    book, local = stores
    monkeypatch.setattr(pruning, "unused", lambda: pruning.Unused())  # every chapter's configs: not needed here
    assert cli.main(["prune", "--store", "book"]) == 0
    assert os.environ["ADVBOOK_STORE"] == "book"  # what a notebook kernel or a sweep's runs inherit
    assert str(book) in capsys.readouterr().out
    monkeypatch.setenv("ADVBOOK_STORE", "nowhere")
    assert cli.main(["list"]) == 2
    assert "names no store" in capsys.readouterr().err


def test_an_export_ships_your_records_not_the_books(stores):
    book, local = stores
    _put(book, "models/0000000000000000.json", {"book": True})
    _put(local, "evals/0000000000000000/1111111111111111.json", {"yours": True})
    files, _ = exchange.select(paths.results_root(), local / "no-bench", since=None)
    assert list(files) == ["evals/0000000000000000/1111111111111111.json"]


def test_a_rerun_with_another_attack_evaluates_the_books_model_into_your_store(stores, monkeypatch):
    """The book's model and evaluations are read, the new attack alone is computed, and it is
    written into your store: the committed store is byte for byte as it was."""
    from test_results import config

    from advbook import experiments

    book, local = stores
    monkeypatch.setenv("ADVBOOK_STORE", "book")
    experiments.get_or_compute(config(), progress=False)
    before = {p: p.read_bytes() for p in book.rglob("*") if p.is_file()}
    monkeypatch.setenv("ADVBOOK_STORE", "local")
    evaluated = []
    evaluate_spec = experiments.evaluate_spec
    monkeypatch.setattr(experiments, "evaluate_spec", lambda *a, **k: evaluated.append(a[2]["name"])
                        or evaluate_spec(*a, **k))
    more = config(evaluate=config()["evaluate"] + [{"name": "pgd", "attack": "pgd",
                                                    "params": {"eps": 0.1, "alpha": 0.05, "steps": 3}}])
    record = experiments.get_or_compute(more, progress=False)
    assert evaluated == ["pgd"] and set(record["metrics"]) == {"clean", "fgsm", "pgd"}
    assert {p: p.read_bytes() for p in book.rglob("*") if p.is_file()} == before
    assert [p.relative_to(local).parts[0] for p in local.rglob("*.json")] == ["evals"]


def test_a_ray_task_starts_from_both_stores_yours_first(stores):
    """What a Ray worker is seeded with (engines.seed_files): the book's model and evaluations and
    yours, yours winning where both hold a file, and the weights beside the record read."""
    from advbook import engines

    book, local = stores
    _put(book, "models/m.json", {"from": "book"})
    (book / "models" / "m.pt").write_bytes(b"book weights")
    _put(book, "evals/m/a.json", {"from": "book"})
    _put(book, "evals/m/b.json", {"from": "book"})
    _put(local, "evals/m/b.json", {"from": "yours"})
    seeded = {rel: json.loads(c) if rel.endswith(".json") else c for rel, c in engines.seed_files("m").items()}
    assert seeded == {"models/m.json": {"from": "book"}, "models/m.pt": b"book weights",
                      "evals/m/a.json": {"from": "book"}, "evals/m/b.json": {"from": "yours"}}
    _put(local, "models/m.json", {"from": "yours"})  # trained again here, its weights not (yet) beside it
    assert "models/m.pt" not in engines.seed_files("m")
