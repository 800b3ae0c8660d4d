"""The ray engine (`advbook compute --engine ray`): the serial engine's records, nothing twice, a
failing task reported while the others' records are kept. One local 2-CPU Ray instance for the
whole module."""
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from advbook import chapters
from advbook.cli import main
from advbook.engines import plan, store_files
from advbook.store import model_key, spec_identity

ray = pytest.importorskip("ray", reason="the ray engine's tests need Ray (pinned in requirements.txt)")

TINY = ["-p", "seeds", "0", "-p", "defenses", "standard,pgd", "-p", "epochs", "1", "-p", "autoattack_n", "0",
        "-p", "steps_sweep", "1,2", "-p", "n_eval", "50"]


@pytest.fixture(scope="session")
def ray_address():
    """A local Ray instance with 2 CPUs, started once for the session (the engine finds this
    process connected and uses it, leaving it running)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def records(root: Path) -> dict[str, dict | bytes]:
    """Every record (and weights file) under a results root, by relative path; locks left out."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".json", ".pt"):
            out[path.relative_to(root).as_posix()] = json.loads(path.read_text()) if path.suffix == ".json" \
                else torch.load(path, weights_only=True)
    return out


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory, ray_address):
    """The TINY primer computed serially and through Ray, into two results roots. The serial run
    uses one torch thread, as each of the two Ray tasks does on 2 CPUs, so that the numbers can
    be compared exactly (and 2 threads on 2 busy cores would be slow)."""
    serial, parallel = tmp_path_factory.mktemp("serial"), tmp_path_factory.mktemp("ray")
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        torch.set_num_threads(1)
        try:
            mp.setenv("ADVBOOK_RESULTS", str(serial))
            assert main(["compute", "primer", *TINY]) == 0
        finally:
            torch.set_num_threads(threads)
        mp.setenv("ADVBOOK_RESULTS", str(parallel))
        assert main(["compute", "primer", *TINY, "--engine", "ray", "--address", ray_address]) == 0
    return serial, parallel


def test_ray_writes_the_records_the_serial_engine_writes(two_stores):
    serial, parallel = map(records, two_stores)
    assert sorted(serial) == sorted(parallel)  # the same model and evaluation keys
    assert sum(k.endswith(".pt") for k in serial) == 2 and sum(k.startswith("evals/") for k in serial) > 10
    for path, a in serial.items():
        b = parallel[path]
        if path.endswith(".pt"):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), path
        elif path.startswith("models/"):
            assert a["config"] == b["config"] and a["dataset"] == b["dataset"]
            strip = [{k: v for k, v in h.items() if k != "seconds"} for h in a["history"]]
            assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in b["history"]]
        else:
            # one evaluation asked for under two names (primer's eps sweep at 1 x eps is its PGD) is
            # stored under the spec that asked first: the serial engine computes the claims' part first
            unnamed = [spec_identity(r["spec"]) for r in (a, b)]
            assert (unnamed[0], a["test"], a["model"]) == (unnamed[1], b["test"], b["model"])
            assert a["result"]["accuracy"] == b["result"]["accuracy"] and a["result"]["n"] == b["result"]["n"]
            assert a["code"] == b["code"]


def test_a_second_ray_run_computes_nothing(two_stores, monkeypatch, capsys, ray_address):
    _, parallel = two_stores
    monkeypatch.setenv("ADVBOOK_RESULTS", str(parallel))
    before = {p: p.stat().st_mtime_ns for p in parallel.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["compute", "primer", *TINY, "--engine", "ray", "--address", ray_address]) == 0
    assert "models to compute on Ray: 0; stored complete already: 2" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in parallel.rglob("*") if p.is_file()} == before


def test_a_new_attack_evaluates_the_stored_models_and_trains_nothing(two_stores, monkeypatch, capsys, tmp_path,
                                                                    ray_address):
    """The worker starts from what the driver's store holds of its model (record, weights,
    evaluations): one more sweep step is one new evaluation record per detailed model."""
    root = tmp_path / "results"
    shutil.copytree(two_stores[1], root)
    monkeypatch.setenv("ADVBOOK_RESULTS", str(root))
    before = records(root)
    more = [v if v != "1,2" else "1,2,3" for v in TINY]
    assert main(["compute", "primer", *more, "--engine", "ray", "--address", ray_address]) == 0
    assert capsys.readouterr().out.count("stored already; new evaluation records: 1;") == 2
    after = records(root)
    assert sorted(set(after) - set(before)) == sorted(k for k in after if k.startswith("evals/") and k not in before)
    assert len(set(after) - set(before)) == 2
    assert all(after[k] == before[k] for k in before if k.endswith(".json"))  # no record rewritten


def test_a_failing_task_is_reported_and_the_others_records_are_kept(monkeypatch, capsys, tmp_path, ray_address):
    """The pgd model asks for an activation that does not exist: only its task fails, inside the
    worker; the standard model's records are stored; the rerun computes only the failing one."""
    monkeypatch.setenv("ADVBOOK_RESULTS", str(tmp_path / "results"))
    primer = chapters.get("primer")
    experiments = primer.experiments

    def with_a_broken_model(settings):
        configs = experiments(settings)
        for config in configs:
            if config["train"]["defense"] == "pgd":
                config["model"] = {**config["model"], "activation": "no-such-activation"}
        return configs

    monkeypatch.setattr(primer, "experiments", with_a_broken_model)
    argv = ["compute", "primer", *TINY, "--engine", "ray", "--address", ray_address]
    assert main(argv) == 1
    captured = capsys.readouterr()
    failed = [line for line in captured.err.splitlines() if line.startswith("advbook: failed:")]
    assert len(failed) == 1 and "primer (digits): defense pgd, seed 0" in failed[0]
    assert "ValueError: activation must be 'relu' or 'sat'" in failed[0]
    assert "defense standard, seed 0: model" in captured.out  # its per-task line
    stored = records(tmp_path / "results")
    settings = primer.settings("smoke", **primer.parse_overrides(list(zip(TINY[1::3], TINY[2::3]))))
    good, bad = (model_key(c) for c in with_a_broken_model(settings))
    assert f"models/{good}.json" in stored and f"models/{good}.pt" in stored
    assert sum(k.startswith(f"evals/{good}/") for k in stored) > 10
    assert not any(bad in k for k in stored)

    assert main(argv) == 1  # the rerun: only the failing model is submitted again
    captured = capsys.readouterr()
    assert "models to compute on Ray: 1; stored complete already: 1" in captured.out
    assert captured.err.count("advbook: failed:") == 1


def test_each_task_asks_for_one_gpu_or_its_share_of_the_cpus():
    assert plan({"CPU": 2.0}, 2) == ({"num_cpus": 1}, 1)
    assert plan({"CPU": 2.0}, 1) == ({"num_cpus": 2}, 2)
    assert plan({"CPU": 16.0}, 5) == ({"num_cpus": 3}, 3)
    assert plan({"CPU": 16.0}, 1, node_cpus=8) == ({"num_cpus": 8}, 8)  # two 8-CPU nodes: fits on one
    assert plan({"CPU": 32.0, "GPU": 8.0}, 12) == ({"num_gpus": 1, "num_cpus": 1}, 4)
    assert plan({"CPU": 32.0, "GPU": 8.0}, 2) == ({"num_gpus": 1, "num_cpus": 1}, 16)


def test_a_returned_file_outside_the_store_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVBOOK_RESULTS", str(tmp_path / "results"))
    with pytest.raises(RuntimeError, match="outside the results store"):
        store_files([("../escaped.json", b"{}")])
    assert not (tmp_path / "escaped.json").exists()


def test_a_budget_needs_the_serial_engine(capsys):
    assert main(["compute", "primer", *TINY, "--engine", "ray", "--budget", "60"]) == 2
    assert "--budget needs --engine serial" in capsys.readouterr().err


def test_several_chapters_go_to_ray_as_one_list_of_tasks(monkeypatch, capsys):
    """`advbook compute CHAPTER CHAPTER --engine ray` submits every chapter's missing models at once."""
    from advbook import engines

    seen = []
    monkeypatch.setattr(engines, "run_ray", lambda configs, **kw: seen.append(configs) or [])
    assert main(["compute", "primer", "random_sign", "--engine", "ray"]) == 0
    assert len(seen) == 1 and {c["chapter"] for c in seen[0]} == {"primer", "random_sign"}


def test_address_needs_the_ray_engine(capsys):
    assert main(["compute", "primer", *TINY, "--address", "127.0.0.1:6379"]) == 2
    assert "--address needs --engine ray" in capsys.readouterr().err
