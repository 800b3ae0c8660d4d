import json

import pandas as pd
import pytest

from advbook import experiments, published, reporting, results


def config(**changes):
    base = {"chapter": "test", "profile": "smoke", "dataset": "digits", "subset": {"train": 300, "test": 100},
            "model": {"name": "small-cnn", "width": 4},
            "train": {"defense": "standard", "epochs": 1, "batch_size": 64, "seed": 0},
            "evaluate": {"n": 100, "eps": 0.1, "alpha": 0.05, "steps": 2, "attacks": ["fgsm", "pgd"]}}
    base.update(changes)
    return base


def test_config_key_is_stable_and_order_independent():
    a = config()
    b = json.loads(json.dumps(a, sort_keys=True))
    b = dict(reversed(list(b.items())))
    assert results.config_key(a) == results.config_key(b)
    assert results.config_key(a) != results.config_key(config(dataset="mnist"))


def test_get_or_compute_stores_a_full_record_once(monkeypatch):
    record = experiments.get_or_compute(config())
    path = results.record_path(config())
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    for field in ("profile", "dataset", "device", "torch", "torchvision", "commit", "wall_seconds", "history",
                  "metrics", "created"):
        assert field in record, field
    assert record["dataset"]["display_name"] == "scikit-learn digits (8x8)"
    assert 0 <= record["metrics"]["pgd"] <= record["metrics"]["clean"] <= 1

    def fail(*a, **k):
        raise AssertionError("recomputed a stored result")

    monkeypatch.setattr(experiments, "run", fail)
    assert experiments.get_or_compute(config()) == record


def test_missing_record_without_compute_says_how_to_make_it():
    with pytest.raises(experiments.NotComputed, match="advbook compute test --profile smoke"):
        experiments.get_or_compute(config(), compute=False)


def test_save_is_atomic(monkeypatch):
    record = {"config": config(), "metrics": {"clean": 1.0}}
    results.save(record)

    def broken_dump(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(results.json, "dump", broken_dump)
    with pytest.raises(RuntimeError):
        results.save({"config": config(), "metrics": {"clean": 0.0}})
    assert results.load(config())["metrics"]["clean"] == 1.0
    assert not list(results.record_path(config()).parent.glob("*.tmp"))


def test_published_compare(tmp_path, monkeypatch):
    (tmp_path / "paper-x.csv").write_text(
        "paper,table,row,column,value\n"
        "paper-x,1,Traditional,clean,90.0\npaper-x,1,Traditional,PGD,10.0\npaper-x,1,AdvProp,clean,91.0\n")
    monkeypatch.setattr(published, "published_dir", lambda: tmp_path)
    ours = pd.DataFrame([{"row": "Traditional", "column": "clean", "mean": 88.5, "std": 0.5, "n": 3},
                         {"row": "Traditional", "column": "PGD", "mean": 12.0, "std": 1.0, "n": 3}])
    table = published.compare("paper-x", "1", ours)
    assert table.loc["Traditional", ("clean", "paper")] == 90.0
    assert table.loc["Traditional", ("clean", "difference")] == -1.5
    assert table.loc["Traditional", ("clean", "ours")] == "88.50 ± 0.50"
    assert table.loc["AdvProp", ("clean", "ours")] == "not run"
    folded = published.side_by_side(table)
    assert folded.loc["Traditional", "clean"] == "88.50 ± 0.50 (90.00; -1.50)"
    assert folded.loc["AdvProp", "clean"] == "not run (91.00)"
    with pytest.raises(ValueError, match="no table"):
        published.compare("paper-x", "9", ours)


def test_seed_table_and_verdicts():
    rows = [{"defense": "a", "clean": 0.9}, {"defense": "a", "clean": 0.8}, {"defense": "b", "clean": 0.5}]
    table = reporting.seed_table(rows, "defense", ["clean"])
    assert table.loc["a", "clean"] == "85.0 ± 7.1" and table.loc["b", "clean"] == "50.0"
    assert table.loc["a", "seeds"] == 2
    assert reporting.verdict(True, "smoke") == "inconclusive at this scale"
    assert reporting.verdict(False, "fast") == "not confirmed"
    assert reporting.verdict(True, "paper") == "confirmed"
    with pytest.raises(ValueError):
        reporting.claims_table([{"claim": "c", "paper": "p", "ours": "o", "verdict": "probably"}])


def test_provenance_of_a_smoke_run_says_so():
    record = experiments.get_or_compute(config())
    text = reporting.provenance([record], {"profile": "smoke"})
    assert "smoke run, not a reproduction" in text and record["device"] in text and "digits" in text
    assert "smoke run" not in reporting.provenance([record], {"profile": "fast"})
    changed = reporting.provenance([record], {"profile": "fast", "eps": 0.05}, {"eps": 8 / 255})
    assert "Changed from the profile's defaults:** `eps` = 0.05" in changed
