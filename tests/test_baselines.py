"""Each chapter's `baselines(settings)`: every baseline's hyperparameters in this run against the
paper's, with a reason exactly where they differ, following the settings it is given."""
import importlib

import pytest

from advbook import reporting
from advbook.chapters import baseline_row, budget

# chapter -> (a parameter that reaches a baseline's training step, a value no profile has, the baseline)
OVERRIDES = {
    "biparo": ("train_steps", 3, "L-inf PGD training (PGD-inf)"),
    "efgsm": ("pgd_steps", 3, "PGD-AT (Madry; the paper does not restate the step: Madry et al.'s)"),
    "mixture": ("train_steps", 3, "Adversarial (PGD training)"),
    "adaptive": ("eps_mnist", 0.2, "all FGSM (every sample perturbed)"),
    "primer": ("train_steps", 3, "PGD-AT"),
    "random_sign": ("fgsm_eps", 0.15, "FGSM (Goodfellow et al.'s objective), MNIST"),
}


def chapter(name):
    module = importlib.import_module(f"advbook.chapters.{name}")
    return module.CHAPTER, module.baselines


@pytest.mark.parametrize("name", sorted(OVERRIDES))
@pytest.mark.parametrize("profile", ["smoke", "cpu", "fast", "paper"])
def test_a_reason_exactly_where_the_columns_differ(name, profile):
    chap, baselines = chapter(name)
    rows = baselines(chap.settings(profile))
    assert rows and all(len(r) == 4 and all(isinstance(c, str) for c in r) for r in rows)
    for baseline, mine, theirs, why in rows:
        assert mine and theirs, baseline
        assert bool(why) == (mine != theirs), (profile, baseline, mine, theirs, why)


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_the_paper_profile_agrees_where_the_paper_gives_a_value_and_cpu_says_why_not(name):
    chap, baselines = chapter(name)
    for baseline, mine, theirs, why in baselines(chap.settings("paper")):
        if mine == theirs:
            assert why == "", baseline
    differ = [(b, why) for b, mine, theirs, why in baselines(chap.settings("cpu")) if mine != theirs]
    assert differ and all(why for _, why in differ), differ


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_this_run_follows_an_override(name):
    parameter, value, baseline = OVERRIDES[name]
    chap, baselines = chapter(name)
    before = {r[0]: r for r in baselines(chap.settings("cpu"))}
    after = {r[0]: r for r in baselines(chap.settings("cpu", **{parameter: value}))}
    assert after[baseline][1] != before[baseline][1] and str(value) in after[baseline][1]
    assert after[baseline][2] == before[baseline][2]        # the paper's column stays the paper's
    assert after[baseline][3]


def test_a_row_refuses_a_difference_without_a_reason():
    assert baseline_row("X", [("steps", "7", "7", "")]) == ("X", "steps 7", "steps 7", "")
    assert baseline_row("X", [("steps", "5", "7", "budget"), ("eps", "0.3", "0.3", "")])[3] == "steps: budget"
    with pytest.raises(ValueError, match="no reason"):
        baseline_row("X", [("steps", "5", "7", "")])


def test_budgets_read_as_the_papers_write_them():
    assert (budget(8 / 255), budget(2 / 255), budget(0.3), budget(0.03)) == ("8/255", "2/255", "0.3", "0.03")


def test_the_markdown_table_has_one_line_per_baseline_and_escapes_bars():
    text = reporting.baselines_markdown([("A", "x | y", "x", "why"), ("B", "z", "z", "")])
    lines = text.splitlines()
    assert lines[0] == "| baseline | this run | the paper | why they differ |" and len(lines) == 4
    assert "x \\| y" in lines[2] and lines[3].endswith("| they do not |")
