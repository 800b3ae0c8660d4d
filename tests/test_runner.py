"""The runner end to end: `advbook compute` and `advbook sweep` on tiny settings."""
import csv
import json

from advbook import chapters
from advbook.experiments import get_or_compute
from advbook.cli import main

TINY = ["-p", "seeds", "0", "-p", "defenses", "standard,pgd", "-p", "epochs", "1", "-p", "autoattack_n", "0",
        "-p", "steps_sweep", "1,2", "-p", "n_eval", "50"]


def test_compute_writes_every_record_of_the_chapter():
    assert main(["compute", "primer", *TINY]) == 0
    primer = chapters.get("primer")
    settings = primer.settings("smoke", **primer.parse_overrides(list(zip(TINY[1::3], TINY[2::3]))))
    configs = primer.experiments(settings)
    assert len(configs) == 2 and all(get_or_compute(c, compute=False) for c in configs)


def test_sweep_runs_each_point_once_and_collects_them(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "primer", "--grid", "eps=0.05,0.1", *TINY, "--output-dir", str(out)]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["grid.json", "point-000.ipynb", "point-001.ipynb",
                                                     "results.csv", "results.png"]
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["eps"], r["defense"]) for r in rows] == [("0.05", "Standard"), ("0.05", "PGD-AT"),
                                                        ("0.1", "Standard"), ("0.1", "PGD-AT")]
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("done already") == 2


def test_an_interrupted_sweep_keeps_its_folder_for_its_own_grid(tmp_path, monkeypatch, capsys):
    """The grid is recorded before the first point runs: after an interrupted sweep, another grid into
    the same folder is refused (one line) instead of taking the first sweep's points for its own."""
    from advbook import notebooks

    out = tmp_path / "sweep"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(notebooks, "execute_notebook", interrupted)
    assert main(["sweep", "primer", "--grid", "eps=0.05,0.1", *TINY, "--output-dir", str(out)]) != 0
    assert json.loads((out / "grid.json").read_text())["grid"] == {"eps": [0.05, 0.1]}
    assert main(["sweep", "primer", "--grid", "eps=0.2", *TINY, "--output-dir", str(out)]) == 2
    assert "holds a sweep with other settings" in capsys.readouterr().err


def test_the_sweep_table_is_in_percent_with_rounded_times_and_no_guard_fields():
    from advbook.sweeps import table_csv

    rows = [{"defense": "PGD-AT", "seed": 0, "clean": 0.98765, "pgd": 0.5, "train_seconds": 12.3456,
             "images": {"pgd": "x"}, "chance": 0.1, "train_acc": [0.1, 0.2]}]
    text = table_csv([{"eps": 0.1, **rows[0]}], ["eps"])
    header, line = text.strip().splitlines()
    assert header == "eps,defense,seed,clean (%),pgd (%),train_seconds (s)"
    assert line == "0.1,PGD-AT,0,98.77,50.0,12.3"
