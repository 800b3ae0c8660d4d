"""The library's import graph, read from the modules' own import statements: no circle, and no
import that runs up a floor (a leaf library of attacks never reaches for the experiment runner)."""
import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "lib" / "advbook"

# floors, lowest first: a module may import its own floor and those below, never above
FLOORS = [
    {"paths", "device", "errors", "atomic", "costs"},
    {"data", "published", "claims", "per_image", "schema", "profiles"},
    {"models"},
    {"attacks"},
    {"defenses", "checks"},
    {"train", "evaluate"},
    {"store"},
    {"experiments", "masking", "reference_runs", "reference_mnist", "reference_cifar"},
    {"reporting", "bench", "notebooks", "model_audit"},
    {"chapters"},
    # what plans and runs whole chapters, and the command line
    {"cli", "__main__", "__init__", "audit", "exchange", "engines", "planning", "window", "sweeps",
     "deciding", "verdicts", "pruning"},
]


def _room(module: str) -> str:
    """The top-level room of a module name: 'advbook.attacks.gradient' -> 'attacks'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[str]]:
    """{module: the advbook modules it imports}, function-level imports included."""
    graph = {}
    for path in LIBRARY.rglob("*.py"):
        rel = path.relative_to(LIBRARY.parent).with_suffix("")
        parts = list(rel.parts)
        package = parts[:-1] if path.name != "__init__.py" else parts[:-1]
        name = ".".join(parts[:-1] if path.name == "__init__.py" else parts)
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
                target = ".".join(p for p in (base, node.module or "") if p)
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    is_module = (LIBRARY.parent / full.replace(".", "/")).with_suffix(".py").exists() or \
                        (LIBRARY.parent / full.replace(".", "/")).is_dir()
                    deps.add(full if is_module else target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d.startswith("advbook") and d != name}
    return graph


def test_every_room_has_a_floor():
    rooms = {_room(m) for m in _imports()}
    placed = set().union(*FLOORS)
    assert rooms <= placed, f"place these in FLOORS: {sorted(rooms - placed)}"


def test_no_import_runs_up_a_floor():
    floor = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}
    upward = sorted(f"{m} -> {d}" for m, deps in _imports().items() for d in deps
                    if _room(m) != _room(d) and floor[_room(d)] > floor[_room(m)])
    assert upward == []


def test_no_import_circle():
    graph = _imports()
    # a package's __init__ imports its modules (its registry); a module importing its own package
    # back closes a circle
    seen, stack, circles = set(), [], []

    def visit(node):
        if node in stack:
            circles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            visit(dep)
        stack.pop()
    for module in sorted(graph):
        visit(module)
    assert circles == []


def test_only_profiles_reads_a_profile_name():
    """A profile is asked (`profiles.get(name).decides`, `.on_gpu`, `.rank`), never recognised by its name:
    outside profiles.py no module compares a profile name with a string literal or lists profile names."""
    import re

    from advbook import profiles

    names = "|".join(profiles.NAMES)
    compared = re.compile(rf"""profile[\w\]"'\[]*\s*(==|!=|\bin\b|\bnot in\b)\s*\(?["']({names})["']""")
    listed = re.compile(rf"""\(["']({names})["'],\s*["']({names})["']""")
    offenders = [f"{path.relative_to(LIBRARY)}:{i}: {line.strip()}"
                 for path in sorted(LIBRARY.rglob("*.py")) if path.name != "profiles.py"
                 for i, line in enumerate(path.read_text().splitlines(), 1)
                 if compared.search(line) or listed.search(line)]
    assert offenders == []


def test_adding_a_profile_to_the_table_is_all_it_takes(monkeypatch):
    """A new scale in `profiles.TABLE` is known to the command line, ranked among the scales and asked for
    what it decides, with no other module to change."""
    from advbook import profiles

    big = profiles.Profile("cluster", 4, "gpu", True, "bf16")
    monkeypatch.setattr(profiles, "PROFILES", {**profiles.PROFILES, "cluster": big})
    monkeypatch.setattr(profiles, "NAMES", (*profiles.NAMES, "cluster"))
    assert profiles.largest(["cpu", "cluster", "fast"]) == "cluster" and profiles.get("cluster").on_gpu
    from advbook import cli
    args = cli._parser().parse_args(["compute", "primer", "--profile", "cluster", "--dry-run"])
    assert args.profile == "cluster"


def test_the_chapter_lists_agree():
    """A chapter is named in four places: its module in CHAPTER_MODULES, its notebook, the book's table of
    contents and (for a paper) its paper file; a name missing from one of them is a half-added chapter."""
    from advbook import chapters, published
    from advbook.verdicts import toc_files

    root = LIBRARY.parents[1]
    modules = set(chapters.CHAPTER_MODULES)
    assert modules == {p.stem for p in (root / "notebooks").glob("*.py")}
    assert modules <= toc_files(root / "book")
    assert set(published.chapters()) <= modules and set(published.chapters()) == \
        {p.stem for p in (root / "data" / "papers").glob("*.json")}


def test_every_chapter_page_opens_with_the_one_call():
    """The chapter protocol's opening (settings, records, provenance, verdicts at a glance, data not
    here) is `reporting.open_page`, called once by every chapter notebook that computes; a notebook
    that collects its records itself copies the opening again."""
    from advbook import chapters

    root = LIBRARY.parents[1]
    for name in chapters.CHAPTER_MODULES:
        source = (root / "notebooks" / f"{name}.py").read_text()
        if "CHAPTER.experiments" not in source and "open_page" not in source:
            continue  # a page of bench records (Performance) computes nothing
        assert source.count("reporting.open_page(CHAPTER, profile, overrides") == 1, name
        assert "collect(" not in source and "reporting.provenance(" not in source, name


def test_open_page_shows_the_opening_and_returns_the_pages_data(monkeypatch):
    from advbook import chapters, experiments, reporting

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj.data))
    monkeypatch.setattr(experiments, "collect", lambda configs, **kw: ([], ["MNIST"]))
    page = reporting.open_page(chapters.get("adaptive"), "cpu", {"seeds": [0, 1, 2]})
    assert page.settings["seeds"] == [0, 1, 2] and page.records == [] and page.rows == []
    assert len(page.judged) == 4
    assert shown[0].startswith("**Profile:** `cpu` · **records:** 0")
    assert shown[1].startswith("```{margin} Verdicts on this page\n4 inconclusive at this scale.")
    assert shown[2].startswith("**Verdicts at a glance**") and "Not run here:** MNIST" in shown[3]
    shown.clear()
    assert reporting.open_page(chapters.get("primer"), "cpu", {}).judged == []
    assert not any(s.startswith("**Verdicts at a glance**") for s in shown)


def test_no_figure_text_below_the_books_floor():
    """Legends, tick labels and titles at 9 pt or more (issue: text a reader cannot read): every size
    the library and the notebooks set by hand is checked here; matplotlib's defaults (10 pt) are above."""
    import re

    root = LIBRARY.parents[1]
    small = []
    for path in [*LIBRARY.rglob("*.py"), *(root / "notebooks").glob("*.py")]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for size in re.findall(r"\b(?:fontsize|labelsize|titlesize)\s*=\s*(\d+(?:\.\d+)?)\b|"
                                   r"[\"']size[\"']\s*:\s*(\d+(?:\.\d+)?)\b", line):
                if float(next(s for s in size if s)) < 9:
                    small.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert small == []


def test_errors_are_imported_from_errors_only():
    """One errors module: an error class imported through another module is an error re-exported
    (five modules did it), which hides where it is defined."""
    from advbook import errors

    names = {n for n in dir(errors) if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), Exception)
             and getattr(errors, n).__module__ == "advbook.errors"}
    root = LIBRARY.parents[1]
    found = []
    for path in [*LIBRARY.rglob("*.py"), *(root / "tests").glob("*.py"), *(root / "notebooks").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not (node.module or "").endswith("errors"):
                found += [f"{path.relative_to(root)}: {a.name} from {node.module}" for a in node.names if a.name in names]
    assert found == []


# the roles a paper chapter's module plays, in the order its sections come: declaration, plan,
# results, claims, conclusions (a module need not play every role)
CHAPTER_ROLES = ("priority", "baselines", "experiments", "summary", "masking_checks", "paper_table", "claims",
                 "takeaways")
# chapters that are no paper's reading: the book's audit and its performance page
NOT_PAPER_CHAPTERS = ("auditing", "performance")
# names a role once had in one chapter; every chapter now says `masking_checks` and `paper_table`
OLD_ROLE_NAMES = ("masking_checklist", "paper_vs_ours")


def _layout_problems(source: str) -> list[str]:
    """What breaks the one layout in a chapter module's source: roles out of order, a role under an
    old name, a `masking_checks` that does not take (s, records)."""
    functions = [node for node in ast.parse(source).body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    roles = [f.name for f in functions if f.name in CHAPTER_ROLES]
    problems = []
    if roles != sorted(roles, key=CHAPTER_ROLES.index):
        problems.append(f"roles in the order {roles}, not {sorted(roles, key=CHAPTER_ROLES.index)}")
    problems += [f"defines {f.name} (the role's name is now another)" for f in functions if f.name in OLD_ROLE_NAMES]
    for f in functions:
        if f.name == "masking_checks":
            a = f.args
            params = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)] + \
                [f"*{p.arg}" for p in (a.vararg, a.kwarg) if p is not None]
            if params != ["s", "records"]:
                problems.append(f"masking_checks takes {params}, not ['s', 'records']")
    return problems


def test_every_chapter_module_has_one_layout():
    """Issue #34: one name and one signature per role across the paper chapters, and one order of sections
    (priority, baselines, experiments, summary, masking_checks, paper_table, claims, takeaways), so that a
    reader who knows one chapter module finds their way in the next."""
    from advbook import chapters

    assert set(NOT_PAPER_CHAPTERS) <= set(chapters.CHAPTER_MODULES)
    papers = [name for name in chapters.CHAPTER_MODULES if name not in NOT_PAPER_CHAPTERS]
    assert papers, "no paper chapter to check"
    problems = {name: _layout_problems((LIBRARY / "chapters" / f"{name}.py").read_text()) for name in papers}
    assert {name: p for name, p in problems.items() if p} == {}


def test_the_layout_check_sees_a_role_out_of_order():
    """The check above can fail: priority after baselines, an old name, and a checklist without the settings."""
    source = ("def baselines(s): pass\ndef priority(config, spec): pass\n"
              f"def {OLD_ROLE_NAMES[0]}(records, s): pass\ndef masking_checks(records): pass\n")
    problems = _layout_problems(source)
    assert len(problems) == 3 and "order" in problems[0] and OLD_ROLE_NAMES[0] in problems[1], problems
