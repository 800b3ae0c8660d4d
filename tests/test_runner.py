"""The runner end to end: `advbook compute` and `advbook sweep` on tiny settings."""
import csv

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
