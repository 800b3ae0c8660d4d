"""Bad input and faults, met as a user meets them: one line naming the input, before any work
where it can be known before; nothing lost; no stray file left."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from advbook import chapters, experiments, store
from advbook.cli import main

PROJECT = Path(__file__).resolve().parents[1]
TINY = ["-p", "seeds", "0", "-p", "defenses", "standard", "-p", "epochs", "1", "-p", "autoattack_n", "0",
        "-p", "steps_sweep", "1", "-p", "eps_factors", "0,1", "-p", "n_eval", "50"]


def one_line_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("advbook: error: "), err
    return err[0]


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr(experiments, "train_model", refuse)


def test_a_non_finite_number_is_refused(capsys, no_training):
    assert main(["compute", "primer", "-p", "eps", "nan"]) == 2
    assert "parameter 'eps' must be a finite number" in one_line_error(capsys)


def test_an_unwritable_results_store_is_refused_before_any_work(tmp_path, monkeypatch, capsys, no_training):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ADVBOOK_RESULTS", str(blocker / "results"))
    assert main(["compute", "primer", *TINY]) == 2
    assert f"the results store {blocker / 'results'} is not writable" in one_line_error(capsys)


def test_a_missing_data_root_is_named(tmp_path, capsys, no_training):
    assert main(["compute", "primer", "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "--data-root" in one_line_error(capsys)


def test_a_corrupt_record_is_named_and_kept(capsys):
    primer = chapters.get("primer")
    settings = primer.settings("smoke", **primer.parse_overrides(list(zip(TINY[1::3], TINY[2::3]))))
    config = primer.experiments(settings)[0]
    path = store.model_path(store.model_key(config))
    path.parent.mkdir(parents=True)
    path.write_text('{"half a rec')
    assert main(["compute", "primer", *TINY]) == 2
    line = one_line_error(capsys)
    assert str(path) in line and "move it away" in line
    assert path.read_text() == '{"half a rec'  # nothing overwritten


def test_two_runs_of_one_experiment_train_it_once(monkeypatch):
    primer = chapters.get("primer")
    config = primer.experiments(primer.settings("smoke", **primer.parse_overrides(list(zip(TINY[1::3], TINY[2::3])))))[0]
    trained, train = [], experiments.train_model
    monkeypatch.setattr(experiments, "train_model", lambda *a, **k: trained.append(1) or train(*a, **k))
    results = []
    threads = [threading.Thread(target=lambda: results.append(experiments.get_or_compute(config, progress=False)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert trained == [1] and results[0]["metrics"] == results[1]["metrics"]
    leftovers = [p.name for p in store.model_path("x").parent.iterdir() if p.suffix not in (".json", ".pt", ".lock")]
    assert leftovers == []


def test_a_chapter_renders_from_committed_records_with_no_dataset(monkeypatch, tmp_path):
    """The committed adaptive records (cpu profile) are found with no data root at all."""
    monkeypatch.setenv("ADVBOOK_RESULTS", str(PROJECT / "data" / "results"))
    monkeypatch.setenv("ADVBOOK_DATA", str(tmp_path))
    adaptive = chapters.get("adaptive")
    records, unavailable = experiments.collect(adaptive.experiments(adaptive.settings("cpu")), compute=False)
    # the decide design's committed models: at least 5 seeds of its 8 variants
    assert unavailable == [] and len(records) >= 5 * 8


def test_a_failing_notebook_is_one_line_and_kept_and_the_output_untouched(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADVBOOK_DATA", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    output = tmp_path / "primer.ipynb"
    output.write_text("the reader's earlier chapter")
    # a kernel that cannot draw: the notebook fails inside it (a missing dataset fails before any work)
    monkeypatch.setenv("MPLBACKEND", "no-such-backend")
    assert main(["run", "primer", *TINY, "-p", "dataset", "mnist", "--no-compute", "--output", str(output)]) == 2
    line = one_line_error(capsys)
    assert line.startswith("advbook: error: primer: ")
    assert output.read_text() == "the reader's earlier chapter"
    failed = tmp_path / "primer.failed.ipynb"
    assert failed.exists() and str(failed) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "primer.failed.ipynb", "primer.ipynb", "results"]


def test_a_missing_dataset_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    """A run that would compute names the file and the folder it searched, once, and writes nothing."""
    monkeypatch.setenv("ADVBOOK_DATA", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    output = tmp_path / "primer.ipynb"
    assert main(["run", "primer", *TINY, "-p", "dataset", "mnist", "--output", str(output)]) == 2
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("advbook: error: dataset 'mnist' is not available offline")
    assert "mnist.npz" in err[0] and str(tmp_path / "empty") in err[0] and "computing them" not in captured.out
    assert not output.exists() and not (tmp_path / "primer.failed.ipynb").exists()


def test_a_run_never_replaces_a_larger_scale_unless_asked(tmp_path, capsys):
    """The README's rerun example used to replace the committed cpu chapter with a smoke run: a run into a
    notebook that holds a larger scale is refused before any work, and an --output that is a folder too."""
    import json

    output = tmp_path / "primer.ipynb"
    output.write_text(json.dumps({"metadata": {"papermill": {"parameters": {"profile": "cpu"}}}}))
    before = output.read_text()
    assert main(["run", "primer", *TINY, "--output", str(output)]) == 2
    assert "holds the 'cpu' run, a larger scale than 'smoke'" in one_line_error(capsys)
    assert output.read_text() == before
    assert main(["run", "primer", *TINY, "--output", str(tmp_path)]) == 2
    assert "is a folder" in one_line_error(capsys)


def test_sweeps_under_other_overrides_do_not_touch_each_other(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "primer", "--grid", "eps=0.05", *TINY, "--output-dir", str(out)]) == 0
    before = (out / "results.csv").read_text()
    # the same folder under other overrides is refused, and what it holds is kept
    assert main(["sweep", "primer", "--grid", "eps=0.05", *TINY, "-p", "lr", "0.05", "--output-dir", str(out)]) == 2
    assert "holds a sweep with other settings" in one_line_error(capsys)
    assert (out / "results.csv").read_text() == before


@pytest.mark.parametrize("how", ["SIGTERM to the process", "Ctrl-C: SIGINT to its process group"])
def test_an_interrupt_cleans_up_in_one_line(tmp_path, how):
    """Catches a traceback or a half-written output after Ctrl-C (the terminal sends SIGINT to the
    whole group, the notebook's kernel included) or a SIGTERM."""
    env = {**os.environ, "ADVBOOK_RESULTS": str(tmp_path / "results")}
    output = tmp_path / "out" / "primer.ipynb"
    # long enough (200 epochs of training) that the interrupt lands in the kernel's work on any machine
    proc = subprocess.Popen([sys.executable, "-m", "advbook", "run", "primer", *TINY, "-p", "epochs", "200",
                             "--output", str(output)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            # as from a terminal: a test run in the background (make, nohup, CI) inherits
                            # SIGINT ignored, and Python keeps it ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path / "out").glob(".primer-run-*")):
        time.sleep(0.2)
    assert list((tmp_path / "out").glob(".primer-run-*")), "the run never started"
    time.sleep(2)  # into the kernel's work
    if how.startswith("SIGTERM"):
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert list((tmp_path / "out").iterdir()) == []


def test_bench_keeps_an_earlier_record(tmp_path):
    from advbook.bench import _write

    path = tmp_path / "bench-cpu.json"
    _write({"created": "2026-01-01T00:00:00+00:00", "n": 1}, path)
    _write({"created": "2026-02-01T00:00:00+00:00", "n": 2}, path)
    assert json.loads(path.read_text())["n"] == 2
    assert json.loads((tmp_path / "bench-cpu.2026-01-01T000000+0000.json").read_text())["n"] == 1
    assert len(list(tmp_path.iterdir())) == 2


def test_version_and_the_gpu_profile_warning(capsys, monkeypatch):
    import argparse

    import torch

    from advbook import cli

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("advbook ")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = argparse.Namespace(chapter="primer", param=[], profile="fast", data_root=None)
    cli._validated(args)
    err = capsys.readouterr().err
    assert "planned for a GPU" in err and "'cpu' profile" in err


def test_progress_goes_to_the_terminal_not_the_notebook(capfd):
    """`say` writes to the process's own stderr (in a kernel: the terminal of `advbook run`)."""
    import io
    import sys

    captured = io.StringIO()
    real = sys.stderr
    sys.stderr = captured  # what a notebook cell's stderr capture looks like
    try:
        experiments.say("[1/2] primer standard seed 0: training")
    finally:
        sys.stderr = real
    assert captured.getvalue() == ""
    assert "[1/2] primer standard seed 0: training" in capfd.readouterr().err
