"""The results store, the claims rule, published numbers and provenance."""
import json
import re

import pandas as pd
import pytest

from advbook import chapters, claims, evaluate, experiments, published, reporting, store
from advbook.claims import CONFIRMED, Claim, judge


def config(**changes):
    base = {"chapter": "test", "profile": "smoke", "dataset": "digits", "subset": {"train": 300, "test": 100},
            "model": {"name": "small-cnn", "width": 4},
            "train": {"defense": "standard", "epochs": 1, "batch_size": 64, "seed": 0},
            "evaluate": [{"name": "clean", "attack": "clean"}, {"name": "fgsm", "attack": "fgsm", "params": {"eps": 0.1}}]}
    base.update(changes)
    return base


def test_keys_are_stable_order_independent_and_separate_models_from_evaluations():
    a = config()
    b = dict(reversed(list(json.loads(json.dumps(a, sort_keys=True)).items())))
    assert store.model_key(a) == store.model_key(b)
    assert store.model_key(a) != store.model_key(config(dataset="mnist"))
    # the test images and the attacks are not part of what the model is
    assert store.model_key(a) == store.model_key(config(subset={"train": 300, "test": 50}, evaluate=[]))
    spec = {"name": "x", "attack": "fgsm", "params": {"eps": 0.1}}
    assert store.eval_key("m", spec) == store.eval_key("m", {**spec, "name": "another label"})
    assert store.eval_key("m", spec) != store.eval_key("m", {**spec, "params": {"eps": 0.2}})
    assert store.eval_key("m", spec, {"test": 100, "seed": 0}) != store.eval_key("m", spec, {"test": 50, "seed": 0})


def test_get_or_compute_stores_the_model_and_each_evaluation_once(monkeypatch):
    record = experiments.get_or_compute(config(), progress=False)
    mkey = store.model_key(config())
    assert store.model_path(mkey).exists() and store.weights_path(mkey).exists()
    assert not store.checkpoint_path(mkey).exists()
    for field in ("profile", "dataset", "device", "torch", "torchvision", "commit", "wall_seconds", "history",
                  "metrics", "created", "evaluations", "stale"):
        assert field in record, field
    assert record["dataset"]["display_name"] == "scikit-learn digits (8x8)"
    assert 0 <= record["metrics"]["fgsm"] <= record["metrics"]["clean"] <= 1
    assert record["stale"] == []

    def fail(*a, **k):
        raise AssertionError("recomputed a stored result")

    monkeypatch.setattr(experiments, "train_model", fail)
    monkeypatch.setattr(experiments, "evaluate_spec", fail)
    assert experiments.get_or_compute(config()) == record


def test_adding_an_attack_evaluates_the_stored_model_without_retraining(monkeypatch):
    experiments.get_or_compute(config(), progress=False)
    trainings, evaluations = [], []
    train, evaluate_spec = experiments.train_model, experiments.evaluate_spec
    monkeypatch.setattr(experiments, "train_model", lambda *a, **k: trainings.append(1) or train(*a, **k))
    monkeypatch.setattr(experiments, "evaluate_spec", lambda *a, **k: evaluations.append(a[2]["name"])
                        or evaluate_spec(*a, **k))
    more = config(evaluate=config()["evaluate"] + [{"name": "pgd", "attack": "pgd",
                                                    "params": {"eps": 0.1, "alpha": 0.05, "steps": 3}}])
    record = experiments.get_or_compute(more)
    assert trainings == [] and evaluations == ["pgd"]
    assert set(record["metrics"]) == {"clean", "fgsm", "pgd"}


def test_a_model_trained_again_is_evaluated_again_never_mixed_with_the_old_weights(monkeypatch):
    """Weights are not committed: a stored model whose weights are absent is trained again for a new
    attack, and then every evaluation of the config is of the new weights (an old evaluation names the
    model it scored and no longer counts). Catches an old evaluation kept beside new weights."""
    experiments.get_or_compute(config(), progress=False)
    mkey = store.model_key(config())
    store.weights_path(mkey).unlink()
    evaluations = []
    evaluate_spec = experiments.evaluate_spec
    monkeypatch.setattr(experiments, "evaluate_spec", lambda *a, **k: evaluations.append(a[2]["name"])
                        or evaluate_spec(*a, **k))
    more = config(evaluate=config()["evaluate"] + [{"name": "pgd", "attack": "pgd",
                                                    "params": {"eps": 0.1, "alpha": 0.05, "steps": 3}}])
    record = experiments.get_or_compute(more)
    assert sorted(evaluations) == ["clean", "fgsm", "pgd"]
    created = store.load_model(mkey)["created"]
    assert {e["model_created"] for e in record["evaluations"].values()} == {created}
    # an evaluation of other weights is missing, not a result
    stale = dict(store.load_eval(mkey, config()["evaluate"][0], store.test_selection(config())), model_created="0")
    store.write(stale, store.eval_path(mkey, config()["evaluate"][0], store.test_selection(config())))
    with pytest.raises(experiments.NotComputed):
        experiments.get_or_compute(config(), compute=False)


def test_records_stored_before_specs_had_params_keep_their_keys():
    """The key is the spec's identity with `params` written flat, as specs were stored before; an
    attack argument named like an evaluation option keeps its nesting, never colliding with it."""
    nested = {"name": "p", "attack": "pgd", "params": {"eps": 0.1, "steps": 3}, "n": 50}
    flat = {"name": "p", "attack": "pgd", "eps": 0.1, "steps": 3, "n": 50}
    assert store.eval_key("m", nested) == store.eval_key("m", flat)
    assert store.eval_key("m", {**nested, "sweep": {"name": "p", "value": 0.1}}) == store.eval_key("m", nested)
    argument_n = {"name": "p", "attack": "pgd", "params": {"eps": 0.1, "steps": 3, "n": 50}}
    assert store.eval_key("m", argument_n) != store.eval_key("m", nested)
    # a validation spec keeps its name in the model's key, as before
    train = {"defense": "standard", "validation_spec": {"name": "v", "attack": "pgd", "params": {"eps": 0.1}}}
    old = {"defense": "standard", "validation_spec": {"name": "v", "attack": "pgd", "eps": 0.1}}
    assert store.model_key(config(train=train)) == store.model_key(config(train=old))


def test_a_sweep_is_grouped_by_its_mark_not_by_its_name():
    marked = evaluate.sweep({"attack": "fgsm", "params": {}}, "eps", [0.2])[0]
    unmarked = {**marked, "name": "fgsm:at 0.2"}
    del unmarked["sweep"]
    record = experiments.get_or_compute(config(evaluate=[{"name": "clean", "attack": "clean"}, marked, unmarked]),
                                        progress=False)
    assert record["metrics"]["eps_sweep"] == {"0.2": record["metrics"]["fgsm:at 0.2"]}


def test_a_sweep_is_grouped_back_into_one_metric():
    specs = [{"name": "clean", "attack": "clean"}] + \
        evaluate.sweep({"attack": "fgsm", "params": {}}, "eps", [0.0, 0.2])
    record = experiments.get_or_compute(config(evaluate=specs), progress=False)
    assert set(record["metrics"]["eps_sweep"]) == {"0.0", "0.2"}
    assert record["metrics"]["eps_sweep"]["0.0"] == record["metrics"]["clean"]


def _library_as_if(monkeypatch, edit):
    """Make the checkout's code manifest look as if the library had been edited by `edit`."""
    manifests = {kind: store.code_manifest(kind) for kind in ("model", "eval")}
    monkeypatch.setattr(store, "code_manifest", lambda kind: edit(dict(manifests[kind])))


def test_records_from_other_library_code_are_flagged_with_the_changed_file(monkeypatch):
    experiments.get_or_compute(config(), progress=False)
    _library_as_if(monkeypatch, lambda m: {**m, "attacks/gradient.py": "edited"})
    record = experiments.get_or_compute(config())
    assert record["stale"] == ["attacks/gradient.py"]
    assert "computed by other library code" in reporting.provenance([record], {"profile": "cpu"})
    assert "`attacks/gradient.py`" in reporting.provenance([record], {"profile": "cpu"})


def test_stale_records_are_computed_again_only_when_asked(monkeypatch):
    """`recompute_stale` (advbook compute --stale): a record of other model code retrains the model
    and evaluates it again; one of other evaluation code alone evaluates the stored model again; without
    it the stored records serve, flagged. Catches a recompute that trusts stale records or retrains for nothing."""
    from advbook import planning

    trained, evaluated = [], []
    real_train, real_evaluate = experiments.train_model, experiments.evaluate_spec
    monkeypatch.setattr(experiments, "train_model", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    monkeypatch.setattr(experiments, "evaluate_spec", lambda *a, **k: evaluated.append(1) or real_evaluate(*a, **k))
    experiments.get_or_compute(config(), progress=False)
    assert (len(trained), len(evaluated)) == (1, 2)
    # one evaluation made by older evaluation code (its manifest says so): evaluated again alone
    mkey, spec, test = store.model_key(config()), config()["evaluate"][1], store.test_selection(config())
    old = store.load_eval(mkey, spec, test)
    store.write({**old, "code_files": {**old["code_files"], "evaluate.py": "older"}}, store.eval_path(mkey, spec, test))
    assert experiments.get_or_compute(config())["stale"] == ["evaluate.py"] and len(evaluated) == 2
    assert experiments.get_or_compute(config(), recompute_stale=True, progress=False)["stale"] == []
    assert (len(trained), len(evaluated)) == (1, 3)
    _library_as_if(monkeypatch, lambda m: {**m, "train.py": "edited"} if "train.py" in m else m)  # training code
    chapter, rates = chapters.Chapter("test", "t", [], {"smoke": {}}, lambda s: [config()]), \
        planning.Rates("test CPU", "cpu", "test", 1e10, 1e10, 1e-4, 1.0, 0.0)
    assert planning.plan([(chapter, {})], rates)[1] == 1  # complete, as stored
    items, complete = planning.plan([(chapter, {})], rates, recompute_stale=True)
    assert complete == 0 and items[0].trains
    record = experiments.get_or_compute(config(), recompute_stale=True, progress=False)
    assert record["stale"] == [] and (len(trained), len(evaluated)) == (2, 5)


def test_a_model_named_for_retraining_is_trained_once_and_evaluated_again(monkeypatch):
    """`retrain` (advbook compute --retrain): the named model is trained again with every
    evaluation, once per compute (a record made since the compute started serves); a plan counts
    it as missing. Catches a retrain that is ignored, that keeps the old weights' evaluations, or
    that trains again on every call."""
    from advbook import planning

    trained, evaluated = [], []
    real_train, real_evaluate = experiments.train_model, experiments.evaluate_spec
    monkeypatch.setattr(experiments, "train_model", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    monkeypatch.setattr(experiments, "evaluate_spec", lambda *a, **k: evaluated.append(1) or real_evaluate(*a, **k))
    first = experiments.get_or_compute(config(), progress=False)
    retrain = experiments.Retrain(frozenset({store.model_key(config())}), before="9999")  # every record older
    chapter, rates = chapters.Chapter("test", "t", [], {"smoke": {}}, lambda s: [config()]), \
        planning.Rates("test CPU", "cpu", "test", 1e10, 1e10, 1e-4, 1.0, 0.0)
    items, complete = planning.plan([(chapter, {})], rates, retrain=retrain)
    assert complete == 0 and items[0].trains
    assert planning.plan([(chapter, {})], rates, retrain=experiments.Retrain(frozenset({"0" * 16}), "9999"))[1] == 1
    again = experiments.get_or_compute(config(), retrain=retrain, progress=False)
    assert (len(trained), len(evaluated)) == (2, 4)
    assert all(e["model_created"] == again["created"] for e in again["evaluations"].values())
    since = experiments.Retrain(retrain.keys, before=again["created"])  # trained since the compute began
    experiments.get_or_compute(config(), retrain=since, progress=False)
    assert (len(trained), len(evaluated)) == (2, 4) and first["key"] == again["key"]


def test_retrain_takes_only_models_of_the_chapter(capsys):
    from advbook import cli

    assert cli.main(["compute", "primer", "--profile", "smoke", "--retrain", "nothex", "--dry-run"]) == 2
    assert "16 hex digits" in capsys.readouterr().err
    assert cli.main(["compute", "primer", "--profile", "smoke", "--retrain", "0123456789abcdef", "--dry-run"]) == 2
    assert "not a model of primer" in capsys.readouterr().err
    key = store.model_key(chapters.get("primer").experiments(chapters.get("primer").settings("smoke"))[0])
    assert cli.main(["compute", "primer", "--profile", "smoke", "--retrain", key, "--dry-run"]) == 0


def test_a_new_library_file_does_not_mark_older_records_stale(monkeypatch):
    experiments.get_or_compute(config(), progress=False)
    _library_as_if(monkeypatch, lambda m: {**m, "defenses/a_new_method.py": "new"})
    assert experiments.get_or_compute(config())["stale"] == []


def test_a_pure_move_keeps_records_current_and_an_edit_while_moving_does_not(monkeypatch):
    """A file renamed with its content unchanged is the same code; renamed and edited, it is not.
    Catches a provenance that flags every rename, or one that forgives any vanished file."""
    experiments.get_or_compute(config(), progress=False)

    def moved(m):
        m = dict(m)
        m["attacks/renamed.py"] = m.pop("attacks/gradient.py")
        return m
    _library_as_if(monkeypatch, moved)
    assert experiments.get_or_compute(config())["stale"] == []

    def moved_and_edited(m):
        m = dict(m)
        m["attacks/renamed.py"] = "edited"  # m is the moved manifest: gradient.py is gone
        return m
    _library_as_if(monkeypatch, moved_and_edited)
    assert experiments.get_or_compute(config())["stale"] == ["attacks/gradient.py"]


def test_registries_are_not_hashed_but_the_code_they_register_is():
    manifest = store.code_manifest("model")
    assert not any(f.endswith("__init__.py") for f in manifest)
    assert {"models/factory.py", "models/cnns.py", "defenses/baselines.py", "train.py"} <= set(manifest)


def test_missing_record_without_compute_says_how_to_make_it():
    with pytest.raises(experiments.NotComputed, match="advbook compute test --profile smoke"):
        experiments.get_or_compute(config(), compute=False)


def test_a_corrupt_record_is_named(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"half": ')
    with pytest.raises(store.CorruptRecord, match=str(path)):
        store.read(path)


def test_write_is_atomic(monkeypatch, tmp_path):
    path = tmp_path / "r.json"
    store.write({"value": 1}, path)

    def broken_dump(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store.json, "dump", broken_dump)
    with pytest.raises(RuntimeError):
        store.write({"value": 0}, path)
    assert store.read(path) == {"value": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_standard_error_is_of_the_paired_differences():
    j = judge(Claim("t", ""), [1.0, 2.0, 3.0])
    assert j.mean == pytest.approx(2.0) and j.se == pytest.approx(1.0 / 3 ** 0.5) and j.n == 3
    assert claims.paired_differences({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.4, 2: 0.6, 3: 0.1}) == pytest.approx([10, 10])


def test_published_compare(tmp_path, monkeypatch):
    (tmp_path / "paper-x.json").write_text(json.dumps({"citation": {}, "tables": {"1": {
        "Traditional": {"clean": 90.0, "PGD": 10.0}, "AdvProp": {"clean": 91.0}}}}))
    monkeypatch.setattr(published, "published_dir", lambda: tmp_path)
    assert published.gap("paper-x", "1", ("AdvProp", "clean"), ("Traditional", "clean")) == 1.0
    with pytest.raises(KeyError, match="no cell"):
        published.cell("paper-x", "1", "AdvProp", "PGD")
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


def test_seed_table_and_claims_table():
    rows = [{"defense": "a", "clean": 0.9}, {"defense": "a", "clean": 0.8}, {"defense": "b", "clean": 0.5}]
    table = reporting.seed_table(rows, "defense", ["clean"])
    assert table.loc["a", "clean"] == "85.0 ± 7.1" and table.loc["b", "clean"] == "50.0"
    assert table.loc["a", "seeds"] == 2
    with pytest.raises(ValueError):
        reporting.claims_table([{"claim": "c", "paper": "p", "verdict": "probably"}])
    long = "a claim much longer than fifty characters, which pandas would cut short in HTML"
    text = reporting.markdown_table(reporting.claims_table([{"claim": long, "verdict": CONFIRMED}]))
    assert long in text


def test_provenance_of_a_smoke_run_says_so():
    record = experiments.get_or_compute(config(), progress=False)
    text = reporting.provenance([record], {"profile": "smoke"})
    assert "smoke run, not a reproduction" in text and record["device"] in text and "digits" in text
    assert "smoke run" not in reporting.provenance([record], {"profile": "fast"})
    changed = reporting.provenance([record], {"profile": "fast", "eps": 0.05}, {"eps": 8 / 255})
    assert "Changed from the profile's defaults:** `eps` = 0.05" in changed


def test_every_committed_record_passes_its_schema_at_the_path_its_content_gives():
    from advbook import exchange, paths

    root = paths.PROJECT_ROOT / "data" / "results"
    checked = 0
    for kind, pattern in (("model", "models/*.json"), ("eval", "evals/*/*.json")):
        for path in sorted(root.glob(pattern)):
            record = store.read(path, kind)  # CorruptRecord, naming the file and field, if not
            assert exchange.expected_path(record, kind) == path.relative_to(root).as_posix()
            checked += 1
    for path in sorted(paths.BENCH.glob("*.json")):
        store.read(path, "bench")
        checked += 1
    assert checked > 1000  # the committed store, pruned of what no page reads (advbook prune)


def test_a_record_failing_its_schema_is_named_with_the_field_when_read():
    experiments.get_or_compute(config(), progress=False)
    mkey, test = store.model_key(config()), store.test_selection(config())
    path = store.eval_path(mkey, config()["evaluate"][1], test)
    good = store.read(path)
    path.write_text("{}")  # an empty record in place of an evaluation
    with pytest.raises(store.CorruptRecord, match=rf"^{re.escape(str(path))} .*field 'model' is missing"):
        experiments.get_or_compute(config(), compute=False)
    store.write({**good, "result": {**good["result"], "accuracy": 1.5}}, path)
    with pytest.raises(store.CorruptRecord, match=r"field 'result.accuracy' is 1.5, expected a fraction"):
        experiments.get_or_compute(config(), compute=False)
    store.write(good, path)
    model = store.read(store.model_path(mkey))
    store.write({k: v for k, v in model.items() if k != "history"}, store.model_path(mkey))
    with pytest.raises(store.CorruptRecord, match=rf"{re.escape(str(store.model_path(mkey)))} .*field 'history'"):
        experiments.get_or_compute(config(), compute=False)


def test_the_model_key_covers_every_training_parameter():
    """Two trainings that differ in any TrainConfig field, the data, the subset or the model are two
    models: catches a key that drops a field (and so serves one model's records for another)."""
    import dataclasses

    from advbook.train import TrainConfig

    base = config()
    other_values = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v / 2 + 0.01,
                    str: lambda v: {"sgd": "adam", "piecewise": "cyclic", "fp32": "bf16"}.get(v, v + "-x"),
                    dict: lambda v: {**(v or {}), "changed": 1}}
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind = type(default) if default is not None else dict
        changed = config(train={**base["train"], f.name: other_values[kind](default)})
        assert store.model_key(changed) != store.model_key(base), f"the key ignores train.{f.name}"
    for field, value in (("dataset", "mnist"), ("validation", 100), ("model", {"name": "small-cnn", "width": 8}),
                         ("subset", {"train": 200, "test": 100})):
        assert store.model_key(config(**{field: value})) != store.model_key(base), f"the key ignores {field}"


def test_a_config_outside_its_schema_is_refused_in_one_line_before_any_work():
    for bad, message in (({**config(), "evalute": []}, "unknown config key.*evalute"),
                         ({k: v for k, v in config().items() if k != "model"}, "'model' is missing"),
                         (config(train={"defense": "standard", "epoch": 3}), "train: .*epoch"),
                         (config(train={"defense": "standard", "lr": -1.0}), "train: lr must be"),
                         (config(subset={"train": 10, "tset": 5}), "unknown subset key.*tset"),
                         (config(validation="100"), "'validation' must be a int"),
                         (config(evaluate=[{"name": "a", "attack": "clean"}] * 2), "names repeat")):
        with pytest.raises(ValueError, match=message) as info:
            experiments.get_or_compute(bad)
        assert "\n" not in str(info.value)
