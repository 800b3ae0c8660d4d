"""The "What holds" page and the chapter page helpers behind it."""
import json

import nbformat
import pytest

from advbook import claims, reporting, verdicts
from advbook.notebooks import show_one_parameters_cell


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
    judged = claims.judge(claim, [1.0, 1.1, 0.9])
    rows = [claims.row(claim, judged)]
    _notebook_with_claims(tmp_path / "random_sign.ipynb", rows)
    page = verdicts.page(tmp_path)
    bounds = f"+1.00 [{judged.lower:+.2f}, {judged.upper:+.2f}] points (n = 3)"
    assert "(C1) R beats base" in page and "**confirmed**" in page and bounds in page
    assert "**cpu** profile: MNIST, 3 seeds, CPU" in page
    assert page.count("*No chapter yet: its claims are not decided.*") == len(verdicts.PAPERS) - 1
    assert "**In all:** 1 confirmed." in page


def test_a_smoke_chapter_is_labelled_as_deciding_nothing(tmp_path):
    claim = claims.Claim("x", "y")
    rows = claims.decided_at(False, [claims.row(claim, claims.judge(claim, [1.0, 1.1, 0.9]))])
    _notebook_with_claims(tmp_path / "adaptive.ipynb", rows, profile="smoke")
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


def test_the_book_shows_one_parameters_cell_with_the_values_the_run_used(tmp_path):
    """Catches a page that shows the notebook's defaults instead of the run's parameters, and a
    downloaded notebook whose edited parameters cell an injected cell below it silently overrides."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "smoke"   # smoke | cpu\noverrides = {}  # any parameter',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('# Parameters\nprofile = "cpu"\noverrides = {"eps": 0.1}\nextra = 3\n',
                                          metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("print(profile)")]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    show_one_parameters_cell(path)
    cells = json.loads(path.read_text())["cells"]
    assert [c["metadata"].get("tags") for c in cells] == [["parameters"], None]
    assert "".join(cells[0]["source"]) == ('profile = "cpu"   # smoke | cpu\noverrides = {"eps": 0.1}  # any parameter\n'
                                           "extra = 3")


def test_every_paper_has_a_full_citation():
    """Catches a paper entry missing its venue, year or link (the issue: no titles, years or links)."""
    for chapter, paper in verdicts.PAPERS.items():
        line = verdicts.citation(chapter)
        assert paper["title"] in line and paper["venue"] in line and "](https://" in line
    assert "2019" in verdicts.citation("adaptive") and "arXiv:1807.00340" in verdicts.citation("random_sign")


def test_results_csv_has_one_row_per_evaluation_with_its_keys_and_commits():
    """Catches a download that loses evaluations, or rows that cannot be traced to their records."""
    import csv
    import io

    from advbook.store import eval_key

    spec = {"attack": "pgd", "eps": 0.3, "name": "pgd"}
    records = [{"key": f"m{seed}", "commit": "abc123", "profile": "cpu", "dataset": {"display_name": "MNIST"},
                "config": {"chapter": "primer", "train": {"defense": "pgd_at", "seed": seed}},
                "evaluations": {"clean": {"spec": {"attack": "clean", "name": "clean"}, "test": None,
                                          "result": {"accuracy": 0.9, "n": 10}, "commit": "def456"},
                                "pgd": {"spec": spec, "test": None, "result": {"accuracy": 0.5 + seed / 10, "n": 10},
                                        "commit": "def456"}}} for seed in range(2)]
    rows = list(csv.DictReader(io.StringIO(reporting.results_csv(records))))
    assert len(rows) == 4
    pgd1 = [r for r in rows if r["model_key"] == "m1" and r["evaluation"] == "pgd"][0]
    assert pgd1["eval_key"] == eval_key("m1", spec, None) and float(pgd1["accuracy"]) == 0.6
    assert pgd1["model_commit"] == "abc123" and pgd1["eval_commit"] == "def456" and pgd1["seed"] == "1"


def test_source_links_point_at_the_functions_own_line():
    """Catches a link to the wrong file or line of the library's source pages."""
    import inspect

    from advbook.attacks import pgd

    link = reporting.source_link(pgd)
    line = inspect.getsourcelines(pgd)[1]
    assert f'href="code/advbook/attacks/gradient.py.html#L-{line}"' in link
    source = (verdicts.BOOK.parent / "lib/advbook/attacks/gradient.py").read_text().splitlines()
    assert source[line - 1].startswith("def pgd(")


def test_progress_lines_leave_the_book_and_warnings_stay(tmp_path):
    """Catches computing progress rendered as error output on a page (the browser test fails on
    it), and a clean-up that would also hide a real warning."""
    from advbook.notebooks import drop_progress_lines

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("collect(...)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="[1/12] primer pgd seed 0: epoch 1 of 8\n"),
                    nbformat.v4.new_output("stream", name="stderr",
                                           text="[2/12] x: epoch 2\nUserWarning: something real\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="[3/12] printed on purpose\n")]
    nb.cells.append(cell)
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    drop_progress_lines(path)
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [(o["name"], o["text"]) for o in outputs] == [("stderr", "UserWarning: something real\n"),
                                                        ("stdout", "[3/12] printed on purpose\n")]


def test_the_claims_cell_says_each_claims_definition_and_evidence_in_words():
    """Catches a claims section that drops the operational definition or the rule's reason, or
    cuts a long claim."""
    long = "(2) " + "a very long claim, " * 20 + "end"
    claim = claims.Claim(long, "+1.29 points", "greater", paper_effect=1.29, definition="A = AdvProp, B = standard")
    text = reporting.claims_markdown([claims.row(claim, claims.judge(claim, [-5.0, -6.0, -5.5]))])
    table, words = text.split("**Each claim in words**")
    assert long in table and "| not confirmed |" in table
    assert "*How we read it:* A = AdvProp, B = standard." in words
    assert "**not confirmed**: the opposite sign: bounds [" in words and "-5.50 [" in words and "points (n = 3)" in words


def test_smoke_claims_are_not_counted_in_the_total(tmp_path):
    claim = claims.Claim("x", "y")
    _notebook_with_claims(tmp_path / "adaptive.ipynb",
                          claims.decided_at(False, [claims.row(claim, claims.judge(claim, [1.0, 1.1, 0.9]))]),
                          profile="smoke")
    _notebook_with_claims(tmp_path / "mixture.ipynb", [claims.row(claim, claims.judge(claim, [1.0, 1.1, 0.9]))])
    page = verdicts.page(tmp_path)
    assert "**In all:** 1 confirmed (1 claims of smoke runs, which decide nothing, not counted)." in page


def test_the_glance_gives_one_line_of_evidence_per_claim():
    """Catches a glance that loses a claim or pastes every part of a many-part claim."""
    one = claims.Claim("(1) A beats B", "+1", paper_effect=1.0)
    many = claims.Claim("(2) A beats B everywhere", "+1", paper_effect=1.0)
    parts = claims.all_of([(f"part {i}", claims.judge(many, [1.0, 1.1, 0.9])) for i in range(4)])
    refuted = claims.judge(one, [-1.0, -1.1, -0.9])
    text = reporting.verdicts_at_a_glance([claims.row(one, refuted), claims.row(many, parts)])
    first, second = text.splitlines()
    bounds = f"[{refuted.lower:+.2f}, {refuted.upper:+.2f}]"
    assert first == (f"- ✘ **not confirmed**: (1) A beats B (ours: -1.00 {bounds} points (n = 3); the opposite sign: "
                     f"bounds {bounds} exclude 0)")
    assert second == "- ✔ **confirmed**: (2) A beats B everywhere (every part confirmed; every part below)"


def test_a_chapter_without_a_papers_entry_is_still_listed(tmp_path):
    """Catches a What holds page that silently drops a new chapter's claims."""
    claim = claims.Claim("(1) new claim", "1 %")
    _notebook_with_claims(tmp_path / "newpaper.ipynb", [claims.row(claim, claims.judge(claim, [1, 2, 3]))])
    nb = nbformat.read(tmp_path / "newpaper.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# A new paper's chapter\n\ntext"))
    nbformat.write(nb, tmp_path / "newpaper.ipynb")
    page = verdicts.page(tmp_path)
    assert "## A new paper's chapter" in page and "(1) new claim" in page and "add the paper file" in page


def test_only_chapters_in_the_table_of_contents_are_linked(tmp_path):
    """Catches a link to a chapter the build does not render (a new chapter executed before it
    joins _toc.yml), which fails the build under -W."""
    claim = claims.Claim("(1) claim", "1 %")
    for name in ("random_sign", "efgsm"):
        _notebook_with_claims(tmp_path / f"{name}.ipynb", [claims.row(claim, claims.judge(claim, [1, 2, 3]))])
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nparts:\n  - caption: Papers\n"
                                       "    chapters:\n      - file: random_sign\n")
    page = verdicts.page(tmp_path)
    assert "{doc}`random_sign`" in page and "(random_sign.ipynb#claims-and-verdicts)" in page
    assert "{doc}`efgsm`" not in page and "efgsm.ipynb#" not in page
    assert "the chapter `efgsm` (not yet in the book's table of contents)" in page


def _audited(tmp_path, monkeypatch, rendered_verdict, rows_now):
    """Audit a book holding one cpu-profile 'adaptive' page whose claim was rendered `rendered_verdict`,
    with the chapter's records giving `rows_now` (the store and the chapter's claims stubbed)."""
    from advbook import experiments
    from advbook.chapters import adaptive

    claim = claims.Claim("(1) a claim", "its number")
    _notebook_with_claims(tmp_path / "adaptive.ipynb", [dict(claims.row(claim, claims.judge(claim, [1.0, 1.1, 0.9])),
                                                             verdict=rendered_verdict)])
    monkeypatch.setattr(experiments, "get_or_compute", lambda config, compute=True: {})
    monkeypatch.setattr(adaptive.CHAPTER, "summary", lambda s, records: [])
    monkeypatch.setattr(adaptive, "claims", lambda s, rows: rows_now(claim))
    from advbook.audit import audit

    return audit(tmp_path)


def test_the_audit_fails_a_book_whose_verdicts_its_records_no_longer_give(tmp_path, monkeypatch):
    """`advbook verdicts` re-judges every executed chapter from its records under today's guards; a page
    that says otherwise (or whose comparisons the guards refuse) fails the build."""
    same = lambda claim: [claims.row(claim, claims.judge(claim, [1.0, 1.1, 0.9]))]  # noqa: E731
    assert _audited(tmp_path, monkeypatch, claims.CONFIRMED, same) == []
    problems = _audited(tmp_path, monkeypatch, claims.NOT_CONFIRMED, same)
    assert len(problems) == 1 and "rendered 'not confirmed' but its records now give 'confirmed'" in problems[0]
    # the same verdict from other numbers: the parts differ
    other = lambda claim: [claims.row(claim, claims.judge(claim, [2.0, 2.1, 1.9]))]  # noqa: E731
    problems = _audited(tmp_path, monkeypatch, claims.CONFIRMED, other)
    assert len(problems) == 1 and "its reason or its parts' numbers differ" in problems[0]
    # a rendered claim its records no longer give at all
    renamed = lambda claim: [claims.row(claims.Claim("(1) another claim", ""), claims.judge(claim, [1.0, 1.1, 0.9]))]  # noqa: E731
    problems = _audited(tmp_path, monkeypatch, claims.CONFIRMED, renamed)
    assert any("'(1) a claim' is rendered but its records no longer give that claim" in p for p in problems)

    def refused(claim):
        raise claims.MismatchedImages("'A pgd' (seed 0) was measured on ... and 'B pgd' on ...")
    assert "measured on" in _audited(tmp_path, monkeypatch, claims.CONFIRMED, refused)[0]


def test_a_chapter_whose_dataset_is_not_here_is_left_unaudited_with_a_warning(tmp_path, monkeypatch, capsys):
    """A clone without the offline datasets (the README's `make test` with no $ADVBOOK_DATA) builds the
    book: a chapter whose experiments need the missing file is named on stderr, not failed; one whose
    records give another verdict still fails."""
    from advbook import data
    from advbook.chapters import adaptive

    same = lambda claim: [claims.row(claim, claims.judge(claim, [1.0, 1.1, 0.9]))]  # noqa: E731

    def missing(settings):
        raise data.DataUnavailable("dataset 'cifar10-jpeg' is not available offline")
    monkeypatch.setattr(adaptive.CHAPTER, "experiments", missing)
    assert _audited(tmp_path, monkeypatch, claims.NOT_CONFIRMED, same) == []
    assert "adaptive not re-judged here: dataset 'cifar10-jpeg'" in capsys.readouterr().err


def test_a_claim_is_shown_at_its_largest_scale_with_the_smaller_beside(tmp_path):
    """A chapter rendered at cpu whose store also holds fast records: What holds names the fast verdict and
    its scale, with cpu's beside it; a page with no other scale is unchanged."""
    claim = claims.Claim("(C1) R beats base", "0.28 < 0.50", "greater", paper_effect=0.2)
    rows = [claims.row(claim, claims.judge(claim, [1.0, 1.1, 0.9]))]
    nb = tmp_path / "random_sign.ipynb"
    _notebook_with_claims(nb, rows)
    payload = json.loads(nb.read_text())
    fast = {"verdict": claims.NOT_CONFIRMED, "ours": "-0.50 [-0.80, -0.20] points (n = 3)", "why": "",
            "scale": {"profile": "fast", "datasets": "CIFAR-10", "seeds": 3, "device": "H200"}}
    output = payload["cells"][0]["outputs"][0]
    output["metadata"][verdicts.METADATA_KEY]["by_scale"] = {"fast": [fast]}
    nb.write_text(json.dumps(payload))
    page = verdicts.page(tmp_path)
    assert "**not confirmed**</span> at fast (cpu: confirmed)" in page and "-0.50 [-0.80, -0.20]" in page
    assert "**In all:** 1 not confirmed." in page


def test_claims_by_scale_judges_every_other_profile_with_records(monkeypatch):
    from types import SimpleNamespace

    from advbook import experiments

    chapter = SimpleNamespace(profiles={"smoke": {}, "cpu": {}, "fast": {}, "paper": {}},
                              settings=lambda profile, **o: {"profile": profile},
                              experiments=lambda s: [s["profile"]], summary=lambda s, records: records,
                              judge=lambda s, rows: [claims.row(claim, claims.judge(claim, [1.0, 1.1, 0.9]))])
    stored = {"fast": [{"dataset": {"display_name": "CIFAR-10"}, "config": {"train": {"seed": 0}}, "device": "H200"}]}
    monkeypatch.setattr(experiments, "stored_records", lambda configs: stored.get(configs[0], []))
    claim = claims.Claim("c", "p")
    by_scale = reporting.claims_by_scale(chapter, {"profile": "cpu"})
    assert list(by_scale) == ["fast"] and by_scale["fast"][0]["verdict"] == claims.CONFIRMED


def test_claims_by_scale_leaves_out_a_scale_whose_dataset_is_not_here(monkeypatch):
    """A clone without the offline datasets renders a chapter (a smoke run) whose other scales'
    configs need them: those scales are left out, nothing fails (the README's `make test`)."""
    from types import SimpleNamespace

    from advbook import data, experiments

    def experiments_of(s):
        if s["profile"] == "fast":
            raise data.DataUnavailable("dataset 'cifar10-jpeg' is not available offline")
        return [s["profile"]]
    chapter = SimpleNamespace(profiles={"smoke": {}, "cpu": {}, "fast": {}},
                              settings=lambda profile, **o: {"profile": profile},
                              experiments=experiments_of, summary=lambda s, records: records,
                              judge=lambda s, rows: [claims.row(claim, claims.judge(claim, [1, 2, 3]))])
    stored = {"cpu": [{"dataset": {"display_name": "MNIST"}, "config": {"train": {"seed": 0}}, "device": "CPU"}]}
    monkeypatch.setattr(experiments, "stored_records", lambda configs: stored.get(configs[0], []))
    claim = claims.Claim("c", "p")
    assert list(reporting.claims_by_scale(chapter, {"profile": "smoke"})) == ["cpu"]


def test_every_decided_part_of_the_committed_book_holds_under_the_one_sided_t_rule():
    """book/verdicts.json is what the rendered pages say, and each decided part follows from its own
    per-seed differences: a confirmed 'greater' part has mean - t(0.95, n - 1) * sd / sqrt(n) > 0, and so
    on for every kind and branch (the rule's own bounds, wider, imply these); its stated bounds are at
    least as wide as the t bounds at the rule's level."""
    import math

    from scipy.stats import t

    from advbook.paths import BOOK

    stored = json.loads((BOOK / "verdicts.json").read_text())

    def judged(entries):  # what would decide each claim is planned from the data (tests/test_deciding.py)
        return [{k: v for k, v in e.items() if k != "decide"} for e in entries]
    assert judged(stored) == judged(json.loads(json.dumps(verdicts.data(BOOK))))
    decided = 0
    for claim in stored:
        for part in claim["parts"]:
            if part["verdict"] not in (claims.CONFIRMED, claims.NOT_CONFIRMED) or not part["kind"]:
                continue
            decided += 1
            d, n = part["diffs"], part["n"]
            mean = sum(d) / n
            sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
            half = t.ppf(0.95, n - 1) * sd / math.sqrt(n)
            lo, hi = mean - half, mean + half
            assert part["lower"] <= mean - t.ppf(claims.LEVEL, n - 1) * sd / math.sqrt(n) + 1e-6
            kind, confirmed = part["kind"], part["verdict"] == claims.CONFIRMED
            margin, center, needed = part["margin"] or 0.0, part["center"], part["min_effect"] or 0.0
            if kind == "greater":
                assert lo > 0 if confirmed else hi < needed, (claim["id"], part)
            elif kind == "less":
                assert hi < 0 if confirmed else lo > -needed, (claim["id"], part)
            elif kind == "within":
                assert (center - margin < lo and hi < center + margin) if confirmed else \
                    (lo > center + margin or hi < center - margin), (claim["id"], part)
            else:
                assert hi < margin if confirmed else lo > margin, (claim["id"], part)
    assert decided or all(c["verdict"] not in (claims.CONFIRMED, claims.NOT_CONFIRMED) for c in stored)


def test_what_holds_draws_each_chapter_and_says_why_in_a_sentence(tmp_path):
    """A chapter's judged parts become a forest plot with an alt text that describes it (not a file name),
    the verdict a coloured badge, and each claim gets a one-sentence reason."""
    claim = claims.Claim("(C1) R beats base", "0.28 < 0.50", "greater", paper_effect=0.2)
    noisy = claims.Claim("(C2) R beats FGSM", "1 point", "greater", paper_effect=1.0)
    rows = [claims.row(claim, claims.judge(claim, [1.0, 1.1, 0.9])),
            claims.row(noisy, claims.judge(noisy, [2.0, -1.0, 0.5]))]
    _notebook_with_claims(tmp_path / "random_sign.ipynb", rows)
    page = verdicts.page(tmp_path)
    assert (tmp_path / "figures" / "verdicts-random_sign.png").stat().st_size > 1000
    assert "![Forest plot of 2 judged comparisons of random_sign in points" in page
    assert '<span class="advbook-verdict advbook-confirmed">**confirmed**</span>' in page
    assert "| Every part's bounds lie on the claimed side. |" in page
    assert "The bounds include both no effect and the claimed one: this design detects effects of" in page
    assert "![The book's verdicts counted: 1 confirmed, 0 not confirmed, 1 inconclusive" in page


def test_evidence_sections_and_claims_link_both_ways(monkeypatch):
    """Catches a claims table whose rows do not lead to their evidence, an evidence section that
    does not say what it supports, a link to an anchor the book does not make, and a misspelt id."""
    from mdit_py_plugins.anchors.index import slugify

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj.data))
    c1, c2 = claims.Claim("(1) first", "p"), claims.Claim("(2) second", "p")
    judged = [claims.row(c1, claims.judge(c1, [1, 2, 3])), claims.row(c2, claims.judge(c2, [-1, 0, 1]))]
    heading = "Table 1: which training resists which attack (eps = 0.03)"
    reporting.evidence_for(judged, ["2"], heading)
    assert "*(2) second*: **inconclusive at this scale**" in shown[0] and "(1) first" not in shown[0]
    assert judged[1]["evidence"] == [heading] and "evidence" not in judged[0]
    assert reporting.anchor(heading) == slugify(heading)
    assert f"(2) second ([evidence](#{slugify(heading)}))" in reporting.claims_markdown(judged)
    with pytest.raises(ValueError, match="no claim 3"):
        reporting.evidence_for(judged, ["3"], heading)


def test_a_page_that_judges_no_claim_yet_closes_its_sections_quietly(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    reporting.evidence_for([], ["C1", "C6"], "Clean error")
    assert shown == []
