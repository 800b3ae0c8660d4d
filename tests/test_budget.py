"""Computing within a budget (`advbook compute --budget`, advbook.planning, engines.run_queue),
rendering without computing (`advbook run` of a GPU profile) and the GPU window (advbook.window)."""
import json
import os
import re
import time
from pathlib import Path

import pytest
import torch

from advbook import engines, planning, store, window
from advbook.chapters import CLAIMS, EXTRA, Chapter
from advbook.cli import main
from advbook.errors import NotComputed
from advbook.experiments import collect, get_or_compute
from advbook.paths import results_root

CPU = torch.device("cpu")
RATES = planning.Rates("test CPU", "cpu", "test", 1e10, 1e10, 1e-4, 1.0, 0.0)


def config(chapter="a", variant="A", seed=0, specs=("clean",), **extra):
    """A tiny experiment on digits (small CNN, one epoch); each variant its own learning rate, so
    its own model."""
    evaluate = [{"name": name, "attack": "clean", "n": 50} if name == "clean" else
                {"name": name, "attack": "fgsm", "params": {"eps": 0.1}, "n": 50} for name in specs]
    return {"chapter": chapter, "profile": "smoke", "dataset": "digits", "variant": variant,
            "subset": {"test": 100}, "model": {"name": "small-cnn", "width": 4},
            "train": {"defense": "standard", "epochs": 1, "batch_size": 128, "lr": 0.01 + sum(map(ord, variant)) / 1000,
                      "seed": seed,
                      "schedule": "constant"}, "evaluate": evaluate, **extra}


def chapter(name, configs, priority=None):
    return Chapter(name, name, [], {"smoke": {}}, lambda settings: configs, priority=priority)


def extra_fgsm(config, spec):
    return EXTRA if spec["name"] == "fgsm" else CLAIMS


# ----------------------------------------------------------------------------------------
# the queue's order
# ----------------------------------------------------------------------------------------

def test_claims_first_then_chapters_then_seeds_grouped():
    a = [config("a", v, seed, specs=("clean", "fgsm")) for v in ("A", "B") for seed in (0, 1, 2)]
    b = [config("b", v, seed) for v in ("C", "D") for seed in (0, 1)]
    items, complete = planning.plan([(chapter("a", a, extra_fgsm), {}), (chapter("b", b), {})], RATES)
    assert complete == 0
    order = [(it.priority, it.chapter, it.seed, it.configs[0]["variant"]) for it in items]
    assert order == ([(CLAIMS, "a", s, v) for s in (0, 1, 2) for v in ("A", "B")]
                     + [(CLAIMS, "b", s, v) for s in (0, 1) for v in ("C", "D")]
                     + [(EXTRA, "a", s, v) for s in (0, 1, 2) for v in ("A", "B")])
    # a model is trained by its claims item; its extra evaluations come later, without training
    assert all(it.trains for it in items if it.priority == CLAIMS)
    assert not any(it.trains for it in items if it.priority == EXTRA)
    assert all([s["name"] for c in it.configs for s in c["evaluate"]] == (["clean"] if it.priority == CLAIMS
                                                                          else ["fgsm"]) for it in items[:6])
    assert all(it.seconds > 0 for it in items)


def test_a_transfer_source_is_trained_before_the_model_it_attacks():
    source = config("a", "source", 0)
    target = config("a", "target", 0, specs=("clean",))
    target["evaluate"].append({"name": "transfer", "attack": "transfer", "n": 50,
                               "params": {"source": store.model_key(source), "eps": 0.1, "alpha": 0.05, "steps": 2}})
    # the chapter ranks the source as an extra, which alone would put it after its target
    items, _ = planning.plan([(chapter("a", [target, source], lambda c, s: EXTRA if c["variant"] == "source"
                                       else CLAIMS), {})], RATES)
    assert [it.configs[0]["variant"] for it in items] == ["source", "target"]


def test_stored_work_is_not_planned_again():
    done = config("a", "A", 0, specs=("clean", "fgsm"))
    get_or_compute({**done, "evaluate": done["evaluate"][:1]}, device=CPU)  # the claims' part only
    items, complete = planning.plan([(chapter("a", [done], extra_fgsm), {})], RATES)
    assert complete == 0 and len(items) == 1 and not items[0].trains and items[0].priority == EXTRA
    get_or_compute(done, device=CPU)
    assert planning.plan([(chapter("a", [done], extra_fgsm), {})], RATES) == ([], 1)


# ----------------------------------------------------------------------------------------
# running the queue within a budget (the work itself replaced by a stand-in that takes time)
# ----------------------------------------------------------------------------------------

def item(name, seconds, arch="net", trains=True, sources=()):
    return planning.Item("a", 0, name, CLAIMS, 0, 0, [{"name": name}], trains, name, arch=arch, seconds=seconds,
                         sources=set(sources))


@pytest.fixture
def work(monkeypatch):
    """engines.run_queue's computation replaced: each config sleeps `durations[name]` seconds
    (default 0) and is recorded; the store then 'holds' that model."""
    calls, durations, stored = [], {}, set()

    def fake(config, **kwargs):
        calls.append(config["name"])
        time.sleep(durations.get(config["name"], 0.0))
        stored.add(config["name"])
    monkeypatch.setattr(engines, "get_or_compute", fake)
    monkeypatch.setattr(engines, "_stored", stored.__contains__)
    return calls, durations, stored


def test_an_item_expected_to_overrun_the_time_left_is_not_started(work, capsys):
    calls, _, _ = work
    engines.run_queue([item("big", 1000.0), item("small", 0.1)], budget=20)
    assert calls == ["small"]  # the cheaper item after it still runs
    assert re.search(r"big: not started, estimated 16\.67 min > 0\.3\d min left", capsys.readouterr().out)


def test_the_running_item_is_interrupted_at_the_deadline(work, capsys):
    calls, durations, stored = work
    durations["slow"] = 30.0
    started = time.monotonic()
    engines.run_queue([item("slow", 0.1), item("next", 0.1)], budget=1.5, started=started)
    assert time.monotonic() - started < 3.0
    assert calls == ["slow"] and "slow" not in stored
    assert "slow: interrupted at the end of the budget" in capsys.readouterr().out


def test_estimates_are_scaled_by_the_observed_ratio(work, capsys):
    calls, durations, _ = work
    durations["first"] = 1.0  # estimated 0.5 s: it takes twice that
    engines.run_queue([item("first", 0.5), item("second", 0.6)], budget=2.0)
    assert calls == ["first"]  # 0.6 s fits the second left; the expected 1.2 s does not
    assert re.search(r"second: not started, estimated [\d.]+ min > [\d.]+ min left", capsys.readouterr().out)
    tracker = planning.Tracker()
    tracker.add(item("x", 2.0, arch="small"), 1.0)
    assert tracker.expected(item("y", 4.0, arch="small")) == pytest.approx(2.0)
    assert tracker.expected(item("z", 4.0, arch="big")) == pytest.approx(4.0)  # never below 1 for a new one


def test_an_item_waits_for_the_model_it_needs(work, capsys):
    calls, _, _ = work
    engines.run_queue([item("evaluations", 0.1, trains=False), item("attacker", 0.1, sources=["source"]),
                       item("source", 0.1), item("attacker2", 0.1, sources=["source"])], budget=30)
    assert calls == ["source", "attacker2"]
    assert capsys.readouterr().out.count("it needs a model not computed yet") == 2


def test_windows_simulates_the_same_rules():
    items = [item("m1", 300.0), item("m2", 300.0), item("m2-extra", 50.0, trains=False), item("m3", 100.0),
             item("stored", 50.0, trains=False)]
    items[2].mkey = "m2"
    # window 1: m1, not m2 (over the 180 s left), nor m2's extra (m2 untrained), m3, and the
    # evaluations of a model no item trains (so: stored already); window 2: m2, then its extra
    assert planning.windows(items, 480) == [1, 2, 2, 1, 1]


# ----------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------

def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_dry_run_prints_the_plan_and_computes_nothing(capsys):
    assert main(["compute", "primer", "random_sign", "--profile", "smoke", "--dry-run", "--budget", "60"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plan on ") and "total:" in out and "window(s) of 1 min" in out
    assert re.search(r"^\s+1\s+1\s+\d+\.\d\d\s+\d+\.\d\d\s+primer \(digits\): defense standard, seed 0 \[claims\]", out,
                     re.M)
    assert files(results_root()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine with no GPU")
def test_a_gpu_profile_is_not_computed_on_a_cpu_unless_forced(capsys):
    # --budget 5: were the guard gone, the command would plan and stop instead of training for hours
    assert main(["compute", "primer", "--profile", "fast", "--budget", "5", "-p", "seeds", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("advbook: error: the 'fast' profile is planned for a GPU") and "\n" not in err
    assert main(["run", "primer", "--profile", "paper", "--compute", "--output", "/dev/null/x.ipynb"]) == 2
    assert "--force-cpu" in capsys.readouterr().err
    assert files(results_root()) == []


def test_run_renders_a_gpu_profile_from_stored_records_only(monkeypatch, capsys):
    """`advbook run` tells the notebook (through its environment) not to compute for a GPU
    profile, and to compute for the CPU profiles, as before; --compute and --no-compute decide."""
    import advbook.cli as cli

    seen = []
    monkeypatch.setattr(cli, "execute_notebook", lambda name, params, output: seen.append(
        os.environ.get("ADVBOOK_COMPUTE")))
    monkeypatch.setattr(cli, "_refuse_gpu_profile_on_cpu", lambda profile, force: None)
    monkeypatch.setattr("advbook.verdicts.write", lambda: "verdicts")
    tiny = ["-p", "seeds", "0", "-p", "defenses", "standard"]
    for profile, flag, expected in (("smoke", [], "1"), ("smoke", ["--no-compute"], "0"), ("fast", [], "0"),
                                    ("fast", ["--compute"], "1")):
        assert main(["run", "primer", "--profile", profile, *tiny, *flag, "--output", "/tmp/unused.ipynb"]) == 0
        assert seen.pop() == expected
    assert "ADVBOOK_COMPUTE" not in os.environ
    assert "1 not trained and 0 with evaluations missing: not computed" in capsys.readouterr().out


def test_collect_without_computing_returns_what_is_stored_and_lists_the_rest(monkeypatch, capsys):
    from advbook.chapters import primer

    settings = primer.CHAPTER.settings("smoke", seeds=[0], defenses=["standard", "fgsm"], epochs=1, autoattack_n=0,
                                       steps_sweep=[1], eps_factors=[0.0], n_eval=50)
    standard, fgsm = primer.CHAPTER.experiments(settings)
    claims_part = [s for s in standard["evaluate"] if primer.priority(standard, s) == CLAIMS]
    get_or_compute({**standard, "evaluate": claims_part}, device=CPU)  # the extras (the sweeps) not yet
    before = files(results_root())
    monkeypatch.setenv("ADVBOOK_COMPUTE", "0")
    records, unavailable = collect([standard, fgsm], priority=primer.CHAPTER.priority)
    assert files(results_root()) == before and unavailable == []
    assert [r["config"]["train"]["defense"] for r in records] == ["standard"]
    assert set(records[0]["metrics"]) == {s["name"] for s in claims_part}
    out = capsys.readouterr().out
    assert "Not computed yet: 2 of 2 models" in out
    assert f"defense standard, seed 0: {len(standard['evaluate']) - len(claims_part)} of " in out
    assert "defense fgsm, seed 0: not computed" in out
    with pytest.raises(NotComputed):
        get_or_compute(fgsm, compute=False)


def test_a_budget_over_every_chapter_stops_in_time_with_whole_models(capsys):
    """The smoke queue of every chapter, 30 s: it ends within the budget; every item it reports
    finished is complete in the store (model, weights, every evaluation of the item), every model
    record has its weights, and no temporary file is left."""
    from advbook import chapters

    selected = [(c, c.settings("smoke")) for c in chapters.all_chapters() if "smoke" in c.profiles]
    planned = {it.label: it for it in planning.plan(selected, RATES)[0]}
    started = time.monotonic()
    assert main(["compute", "all", "--profile", "smoke", "--budget", "30"]) == 0
    assert time.monotonic() - started < 30 + 2  # the deadline, and the clean-up after it
    out = capsys.readouterr().out
    finished = re.findall(r"^\[\d+/\d+\] (.*): estimated .* took ", out, re.M)
    assert finished, "nothing finished in 30 s"
    for label in finished:
        for part in planned[label].configs:
            get_or_compute(part, compute=False)  # raises if anything of it is missing
            assert store.weights_path(store.model_key(part)).exists()
    root = results_root()
    assert not [p for p in files(root) if p.name.endswith(".tmp")]
    for record in root.glob("models/*.json"):
        assert json.loads(record.read_text())["key"] and record.with_suffix(".pt").exists()
    for record in root.glob("evals/*/*.json"):
        assert json.loads(record.read_text())["result"]


# ----------------------------------------------------------------------------------------
# the GPU window, on a CPU (smoke profile)
# ----------------------------------------------------------------------------------------

def bench_record(folder: Path) -> Path:
    """A bench record of this machine at this commit (so that the window skips its bench)."""
    from advbook.store import library_commit

    folder.mkdir(parents=True, exist_ok=True)
    record = {"kind": "bench", "quick": False, "device": store.environment(CPU)["device"], "commit": library_commit(),
              "created": "2026-01-01T00:00:00+00:00", "threads": 1,
              "rows": [{"model": "small-cnn", "method": "pgd10", "achieved_tflops": 0.01}]}
    path = folder / "bench-cpu.json"
    path.write_text(json.dumps(record))
    return path


def test_window_records_the_environment_and_computes_within_its_budget(tmp_path, capsys):
    out = tmp_path / "out"
    started = time.monotonic()
    assert window.main(["--budget", "45", "--reserve", "5", "--output", str(out), "--bench-dir",
                        str(bench_record(tmp_path / "bench").parent), "--no-export"]) == 0
    assert time.monotonic() - started < 45 + 3
    env = json.loads((out / "environment.json").read_text())
    assert {"device", "torch", "python", "commit", "started"} <= set(env) and env["profile"] == "smoke"
    summary = json.loads((out / "window.json").read_text())
    assert "skipped" in summary["steps"]["bench"] and summary["steps"]["compute"]["exit_code"] == 0
    log = (out / "compute.log").read_text()
    # on a loaded machine no item may fit the budget; either way the plan is printed and the run ends
    assert "plan on" in log and (re.search(r"took \d+\.\d\d min", log) or "not computed:" in log)
    assert list(results_root().glob("models/*.json")) or "not computed:" in log


def test_window_benches_a_new_device_or_commit_then_computes_and_exports(tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(window, "run", lambda command, log, timeout: commands.append(command) or 0)
    out = tmp_path / "out"
    assert window.main(["--budget", "100", "--output", str(out), "--bench-dir", str(tmp_path / "empty")]) == 0
    bench, compute, export = commands
    assert bench[2:4] == ["advbook", "bench"] and bench[-2:] == ["--output", str(out.resolve() / "bench-cpu.json")]
    assert compute[3:7] == ["compute", "all", "--profile", "smoke"] and "--bench" in compute
    assert export[3] == "export"
    commands.clear()
    assert window.main(["--budget", "100", "--output", str(out), "--bench-dir",
                        str(bench_record(tmp_path / "bench").parent)]) == 0
    assert [c[3] for c in commands] == ["compute", "export"]
    assert commands[1][-2:] == ["--output", str(out.resolve() / "records.tar.gz")]


def test_the_plan_is_read_against_the_measured_wall_time_at_each_models_threads(monkeypatch):
    """Catches a page that compares the plan with the wrong device's rates, or drops evaluations
    from the measured time."""
    from advbook import planning, store

    seen = []
    monkeypatch.setattr(planning, "device_rates", lambda device, bench=None, for_gpu=False, threads=None:
                        seen.append((for_gpu, threads)) or (threads or 100))
    monkeypatch.setattr(planning, "config_seconds", lambda config, rates: 600.0 / rates)
    configs = [{"variant": v, "seed": s, "dataset": "digits"} for v in ("a", "b") for s in (0, 1)]
    monkeypatch.setattr(store, "model_key", lambda c: f"{c['variant']}{c['seed']}")
    records = [{"key": f"a{s}", "device": "CPU (x86_64, 1 threads)", "wall_seconds": 240.0,
                "evaluations": {"clean": {"result": {"seconds": 30.0}}, "pgd": {"result": {"seconds": 90.0}}}}
               for s in (0, 1)]
    records.append({"key": "b0", "device": "NVIDIA H200", "wall_seconds": 6.0, "evaluations": {}})
    rows = planning.planned_against_measured(configs, records)
    assert rows == [{"variant": "a", "models": 2, "planned (min a model)": 10.0, "measured (min a model)": 6.0,
                     "measured / planned": 0.6},
                    {"variant": "b", "models": 1, "planned (min a model)": 0.1, "measured (min a model)": 0.1,
                     "measured / planned": 1.0}]
    assert seen == [(False, 1), (False, 1), (True, None)]


def test_shards_split_the_queue_once_and_keep_a_transfer_with_its_source():
    from advbook import planning

    def item(mkey, seed, sources=()):
        return planning.Item("c", 0, mkey, 0, seed, 0, [], True, mkey, sources=set(sources))
    keys = [f"{i:016x}" for i in range(1, 14)]
    items = [item(k, i) for i, k in enumerate(keys)] + [item(keys[0], 0), item("f" * 16, 9, sources=[keys[1]])]
    shares = [planning.shard(items, k, 3) for k in (1, 2, 3)]
    assert sorted(id(i) for s in shares for i in s) == sorted(id(i) for i in items)  # every item once
    assert all(s for s in shares)
    home = {i.mkey: k for k, s in enumerate(shares) for i in s}
    assert home["f" * 16] == home[keys[1]]  # the attacker runs where its source is trained
    for s in shares:  # the queue's order kept
        assert [i for i in items if any(i is j for j in s)] == s


def test_a_transfer_from_a_source_that_has_a_source_runs_where_both_are_trained():
    """Catches eFGSM's Ours seed 0 left out of every shard: it attacks with Madry's model, which
    attacks with the standard model, so all three must share one process whatever their keys."""
    from advbook import planning

    def item(mkey, sources=()):
        return planning.Item("c", 0, mkey, 0, 0, 0, [], True, mkey, sources=set(sources))
    standard, madry, ours = "0" * 15 + "4", "0" * 15 + "3", "0" * 15 + "9"
    items = [item(standard), item(madry, [standard]), item(ours, [madry, standard])]
    for n in (2, 3, 5):
        shares = [planning.shard(items, k, n) for k in range(1, n + 1)]
        assert len([s for s in shares if s]) == 1 and sum(map(len, shares)) == 3, n


def test_a_malformed_shard_is_one_line(capsys):
    from advbook.cli import main

    for bad in ("0/2", "3/2", "a/b", "1"):
        assert main(["compute", "primer", "--shard", bad, "--dry-run"]) == 2
        assert "--shard takes K/N" in capsys.readouterr().err
