"""`advbook prune` (advbook.pruning): what no page reads is listed and, on request, deleted; what a
page reads never is."""
import json

import pytest

from advbook import chapters, experiments, pruning, store
from advbook.cli import main
from advbook.errors import DataUnavailable, ParameterError


@pytest.fixture
def computed():
    """A real smoke model with two evaluations, the config that reads both, and one that reads one."""
    chapter = chapters.get("primer")
    settings = chapter.settings("smoke", seeds=[0], defenses=["standard"], epochs=1, n_eval=20, autoattack_n=0,
                                steps_sweep=[1], eps_factors=[1.0])
    config = chapter.experiments(settings)[0]
    experiments.get_or_compute(config)
    reads_one = {**config, "evaluate": config["evaluate"][:1]}
    return config, reads_one


def eval_paths(config):
    return {store.eval_path(store.model_key(config), s, store.test_selection(config)) for s in config["evaluate"]}


def test_what_a_config_reads_is_kept_and_the_rest_listed(computed):
    config, reads_one = computed
    mkey = store.model_key(config)
    assert pruning.unused([config]).paths == []
    dropped = pruning.unused([reads_one])
    assert dropped.models == [] and set(dropped.evals) == eval_paths(config) - eval_paths(reads_one)
    assert dropped.evals and all(p.parent.name == mkey for p in dropped.evals)
    # a model no config names goes with its weights
    gone = pruning.unused([])
    assert store.model_path(mkey) in gone.models and store.weights_path(mkey) in gone.models


def test_an_evaluation_of_earlier_weights_is_unused(computed):
    config, _ = computed
    mkey, test = store.model_key(config), store.test_selection(config)
    path = store.eval_path(mkey, config["evaluate"][0], test)
    record = json.loads(path.read_text())
    store.write({**record, "model_created": "2020-01-01T00:00:00+00:00"}, path)
    assert pruning.unused([config]).evals == [path]


def test_delete_removes_exactly_the_unused(computed):
    config, reads_one = computed
    found = pruning.unused([reads_one])
    kept = store.eval_path(store.model_key(config), config["evaluate"][0], store.test_selection(config))
    assert pruning.delete(found) == len(found.paths)
    assert kept.exists() and store.model_path(store.model_key(config)).exists()
    assert not any(p.exists() for p in found.paths)
    assert pruning.unused([reads_one]).paths == []


def test_nothing_is_judged_unused_where_a_chapter_cannot_be_built(monkeypatch):
    def missing(settings):
        raise DataUnavailable("dataset 'mnist' is not available offline")
    monkeypatch.setattr(chapters.get("adaptive"), "experiments", missing)
    with pytest.raises(ParameterError, match="cannot tell what adaptive reads"):
        pruning.read_configs()


def test_the_pages_promised_renderings_and_extra_runs_are_read(monkeypatch):
    seen = []
    for name in chapters.CHAPTER_MODULES:
        monkeypatch.setattr(chapters.get(name), "experiments",
                            lambda s, name=name: seen.append((name, s["profile"], s.get("train_subset"))) or [])
    from advbook.chapters import biparo
    monkeypatch.setattr(biparo, "reads", lambda: [{"marker": "learning runs"}])
    configs = pruning.read_configs()
    assert ("biparo", "cpu", 4000) in seen and ("biparo", "cpu", 20000) in seen
    assert {(n, p) for n, p, _ in seen} == {(n, p) for n in chapters.CHAPTER_MODULES for p in chapters.get(n).profiles}
    assert configs == [{"marker": "learning runs"}]


def test_the_command_lists_then_deletes_on_request(computed, monkeypatch, capsys):
    config, reads_one = computed
    monkeypatch.setattr(pruning, "read_configs", lambda: [reads_one])
    assert main(["prune"]) == 0
    out = capsys.readouterr().out
    assert f"{len(eval_paths(config) - eval_paths(reads_one))} evaluation records" in out
    assert "--delete removes them" in out
    assert main(["prune", "--delete"]) == 0
    assert pruning.unused([reads_one]).paths == []
