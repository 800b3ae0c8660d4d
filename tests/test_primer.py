"""The primer's computed conclusions (advbook.chapters.primer.takeaways)."""
from advbook.chapters import primer


def _rows(rs_seeds):
    rows = [{"defense": "PGD-AT", "seed": s, "clean": 0.97, "fgsm": 0.94, "pgd": 0.90} for s in range(3)]
    return rows + [{"defense": "FGSM-RS", "seed": s, "clean": 0.98, "fgsm": f, "pgd": p}
                   for s, (f, p) in enumerate(rs_seeds)]


def test_a_seed_that_overfits_is_named_where_the_mean_would_hide_it():
    s = primer.CHAPTER.settings("cpu")
    line = next(t for t in primer.takeaways(s, _rows([(0.95, 0.88), (0.96, 0.86), (0.98, 0.40)]))
                if t.startswith("**FGSM-RS**"))
    assert "overfits catastrophically on 1 of 3 seeds (seed 2: 98.0 % under FGSM, 40.0 % under PGD)" in line
    # a gap of 10 points (seed 1 above) is not the signature; with no such seed nothing is said
    calm = next(t for t in primer.takeaways(s, _rows([(0.95, 0.88), (0.96, 0.86), (0.95, 0.87)]))
                if t.startswith("**FGSM-RS**"))
    assert "overfits" not in calm
