"""The "What holds" page and the chapter page helpers behind it."""
import json

import nbformat

from advbook import claims, reporting, verdicts
from advbook.cli import _show_one_parameters_cell


def _notebook_with_claims(path, rows, profile="cpu"):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("reporting.show_claims(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", {"text/markdown": "| claim |"}, metadata={
        verdicts.METADATA_KEY: {"rows": rows, "scale": {"profile": profile, "datasets": "MNIST", "seeds": 3,
                                                        "device": "CPU"}}})]
    nb.cells.append(cell)
    nbformat.write(nb, path)


def test_the_page_lists_every_chapters_claims_and_the_papers_without_a_chapter(tmp_path):
    """Catches a page that drops a chapter's claims, invents verdicts, or hides undecided papers."""
    claim = claims.Claim("(C1) R beats base", "0.28 < 0.50", "greater", paper_effect=0.2)
    rows = [claims.row(claim, claims.judge(claim, [1.0, 1.1, 0.9]))]
    _notebook_with_claims(tmp_path / "random_sign.ipynb", rows)
    page = verdicts.page(tmp_path)
    assert "(C1) R beats base" in page and "**confirmed**" in page and "+1.00 ± 0.06 points (n = 3)" in page
    assert "**cpu** profile: MNIST, 3 seeds, CPU" in page
    assert page.count("*No chapter yet: its claims are not decided.*") == len(verdicts.PAPERS) - 1
    assert "**In all:** 1 confirmed." in page


def test_a_smoke_chapter_is_labelled_as_deciding_nothing(tmp_path):
    claim = claims.Claim("x", "y")
    _notebook_with_claims(tmp_path / "adaptive.ipynb", [claims.row(claim, claims.judge(claim, [1, 2, 3], "smoke"))],
                          profile="smoke")
    assert "*A smoke run decides nothing.*" in verdicts.page(tmp_path)


def test_show_claims_carries_the_rows_the_page_reads(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, metadata=None: shown.append(metadata))
    claim = claims.Claim("a claim", "its number")
    rows = [claims.row(claim, claims.judge(claim, [1, 2, 3]))]
    records = [{"config": {"train": {"seed": s}}, "dataset": {"display_name": "MNIST"}, "device": "CPU"}
               for s in range(3)]
    reporting.show_claims(rows, {"profile": "cpu"}, records)
    assert shown[0][verdicts.METADATA_KEY]["rows"] == rows
    assert shown[0][verdicts.METADATA_KEY]["scale"] == {"profile": "cpu", "datasets": "MNIST", "seeds": 3,
                                                        "device": "CPU"}


def test_the_book_shows_one_parameters_cell(tmp_path):
    """The run's injected parameters stay visible; the notebook's defaults beside them are hidden."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "smoke"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('profile = "cpu"', metadata={"tags": ["injected-parameters"]})]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    _show_one_parameters_cell(path)
    tags = [c["metadata"]["tags"] for c in json.loads(path.read_text())["cells"]]
    assert tags == [["parameters", "remove-cell"], ["injected-parameters"]]
