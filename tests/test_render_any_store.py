"""Every chapter renders at every profile it offers from whatever the results store holds, computing
nothing (`advbook run --no-compute`, what a user runs after a budgeted GPU window): exit code 0, the
notebook written, and its first cell lists the models not computed yet with the command that
computes them and the planner's estimate; a table, figure or list with nothing stored says so, and
the claims table renders.

Executing a notebook with nothing to compute takes 5 to 20 s on this project's 2 busy cores (biparo
builds its configs from the training images' statistics), so not every chapter x profile x store is
run: every chapter at every profile against an empty store, and a representative subset against a
partial one: the three chapters issue 37 names (primer, mixture, random_sign) at the `cpu` profile,
the scale whose records the committed store (data/results) holds, with every third of their models
copied into a temporary store, the first of them with only the evaluations its claims read (what a
budgeted window leaves when the extras do not fit). Performance renders data/bench, not the results
store: it is rendered at every profile and has nothing to list."""
import shutil
from pathlib import Path

import nbformat
import pytest

from advbook import chapters, data, store
from advbook.claims import INCONCLUSIVE, UNTESTABLE
from advbook.cli import main
from advbook.paths import results_root
from advbook.verdicts import chapter_claims
from conftest import offline_root

COMMITTED = Path(__file__).resolve().parents[1] / "data" / "results"
NO_DATA = "Nothing stored yet for this"


def cases():
    return [(chapter.name, profile) for chapter in chapters.all_chapters() for profile in chapter.profiles]


@pytest.fixture(autouse=True)
def _offline_data(monkeypatch):
    """The offline datasets where they are here (the planner's estimates and biparo's configs read
    them); without them a chapter still renders, its models listed as not computable here."""
    root = offline_root()
    if root is not None:
        monkeypatch.setenv("ADVBOOK_DATA", str(root))


def configs_of(name: str, profile: str) -> list[dict]:
    chapter = chapters.get(name)
    try:
        return chapter.experiments(chapter.settings(profile))
    except data.DataUnavailable as exc:  # biparo's configs hold the training images' pixel statistics
        pytest.skip(f"{name} ({profile}) cannot build its configs without the offline data: {exc}")


def render(name: str, profile: str, tmp_path: Path) -> nbformat.NotebookNode:
    """`advbook run NAME --profile PROFILE --no-compute` into tmp_path, which computes nothing (the
    store holds the same files after it); the executed notebook."""
    before = stored_files()
    output = tmp_path / f"{name}-{profile}.ipynb"
    assert main(["run", name, "--profile", profile, "--no-compute", "--output", str(output)]) == 0
    assert output.exists() and stored_files() == before
    return nbformat.read(output, as_version=4)


def stored_files() -> list[Path]:
    return sorted(p for p in results_root().rglob("*") if p.is_file())


def texts(cell) -> str:
    """Everything a cell shows, as text."""
    out = []
    for output in cell.get("outputs", []):
        out.append(output.get("text", ""))
        out += [v for k, v in output.get("data", {}).items() if k in ("text/markdown", "text/plain")]
    return "\n".join(out)


def first_output(nb) -> str:
    """What the first code cell that shows anything shows: the top of the page."""
    return next(texts(c) for c in nb.cells if c.cell_type == "code" and c.get("outputs"))


def page(nb) -> str:
    return "\n".join(texts(c) for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("name, profile", cases())
def test_a_chapter_renders_from_an_empty_store(name, profile, tmp_path):
    configs = configs_of(name, profile)
    nb = render(name, profile, tmp_path)
    if not configs:  # performance: nothing of it is in the results store
        return
    top, models = first_output(nb), len({store.model_key(c) for c in configs})
    assert f"Not computed yet: {models} of {models} models" in top
    assert f"`advbook compute {name} --profile {profile}` computes them" in top
    assert "by the planner's estimate" in top or "not computable here" in top
    assert NO_DATA in page(nb)
    claims = chapter_claims(tmp_path / f"{name}-{profile}.ipynb")
    if claims is not None:  # every claim with no data reads inconclusive (or untestable, whatever the data)
        assert {row["verdict"] for row in claims["rows"]} <= {INCONCLUSIVE, UNTESTABLE}


def copy_partial(name: str, profile: str) -> tuple[int, bool]:
    """Every third model of the chapter's experiments that the committed store holds, copied into the
    test's store, the first with only the evaluations its claims read; (models copied, whether that
    first one has extras left out)."""
    chapter = chapters.get(name)
    by_model = {}
    for config in configs_of(name, profile):
        by_model.setdefault(store.model_key(config), []).append(config)
    copied, extras_left_out = 0, False
    for mkey in list(by_model)[::3]:
        source = COMMITTED / store.model_path(mkey).relative_to(results_root())
        if not source.exists():
            continue
        first = copied == 0
        store.model_path(mkey).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, store.model_path(mkey))
        for config in by_model[mkey]:
            for spec in config["evaluate"]:
                if first and chapter.priority(config, spec) != chapters.CLAIMS:
                    extras_left_out = True
                    continue
                path = store.eval_path(mkey, spec, store.test_selection(config))
                if (COMMITTED / path.relative_to(results_root())).exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(COMMITTED / path.relative_to(results_root()), path)
        copied += 1
    return copied, extras_left_out


@pytest.mark.parametrize("name", ["primer", "mixture", "random_sign"])
def test_a_chapter_renders_from_a_partial_store(name, tmp_path):
    copied, extras_left_out = copy_partial(name, "cpu")
    if not copied:
        pytest.skip(f"the committed store holds no {name} (cpu) model")
    nb = render(name, "cpu", tmp_path)
    top = first_output(nb)
    assert "Not computed yet: " in top and f"`advbook compute {name} --profile cpu` computes them" in top
    # every copied model is on the page, the one short of its extras too
    assert f"**records:** {copied} " in page(nb)
    if extras_left_out:
        assert "evaluations (extras) missing" in top
