"""Reporting: provenance, seed-aggregated tables, verdicts and the book's standard figures."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import NamedTuple

import pandas as pd

from . import profiles
from .claims import CONFIRMED, INCONCLUSIVE, LEARNED_MARGIN, NOT_CONFIRMED, OURS, UNTESTABLE, training_failures
from .claims import label as claim_label

# the output metadata a claims cell carries its rows under, from which `advbook verdicts` builds What holds
METADATA_KEY = "advbook_claims"


class Page(NamedTuple):
    """What every chapter page opens with (`open_page`)."""
    settings: dict
    records: list[dict]
    rows: list[dict]
    judged: list[dict]


def open_page(chapter, profile: str, overrides: dict, planner=None) -> Page:
    """A chapter page's opening, one call on every page: its settings (validated), its records
    (`experiments.collect`: computing what is missing where allowed, the `planner`'s estimates for
    the rest), the summary rows, the provenance block, the verdicts at a glance (a chapter with
    claims) and the datasets not available here, whose panels and claims are then missing."""
    from IPython.display import Markdown, display

    from .experiments import collect

    settings = chapter.settings(profile, **overrides)
    records, unavailable = collect(chapter.experiments(settings), priority=chapter.priority, planner=planner)
    rows = chapter.summary(settings, records)
    display(Markdown(provenance(records, settings, chapter.profiles[profile])))
    judged = chapter.judge(settings, rows) if chapter.has_claims else []
    if chapter.has_claims:
        display(Markdown(verdicts_margin(judged)))
        display(Markdown("**Verdicts at a glance** (the claims, their operational definitions and evidence are in "
                         "*Claims and verdicts* below)\n\n" + (verdicts_at_a_glance(judged) or no_data_text("summary"))))
    if unavailable:
        display(Markdown(f"> **Not run here:** {', '.join(unavailable)}: the data are not available on this machine "
                         "(no offline copy, no network; `advbook list` names `--data-root`). Their panels and claims "
                         "are missing below."))
    return Page(settings, records, rows, judged)


def provenance(records: list[dict], settings: dict, profile_defaults: dict | None = None) -> str:
    """Markdown naming where every number of a chapter came from, and which parameters were
    changed from the profile's defaults (`profile_defaults`)."""
    def distinct(key):
        return ", ".join(sorted({str(r.get(key)) for r in records})) or "none"

    datasets = ", ".join(sorted({r["dataset"]["display_name"] for r in records})) or "none"
    hashes = ", ".join(sorted({r["dataset"]["sha256"][:16] if r["dataset"]["sha256"] else
                               "none, bundled with scikit-learn" for r in records}))
    wall = sum(r["wall_seconds"] for r in records)
    stale = [r["key"] for r in records if r.get("stale")]
    changed_files = sorted({f for r in records for f in (r.get("stale") or []) if isinstance(f, str)})
    lines = [f"**Profile:** `{settings['profile']}` · **records:** {len(records)} · "
             f"**total compute wall time:** {wall:.0f} s",
             f"**Dataset:** {datasets} (file sha256: {hashes})",
             f"**Device:** {distinct('device')}",
             f"**Versions:** torch {distinct('torch')}, torchvision {distinct('torchvision')}, "
             f"Python {distinct('python')} · **library commit:** {distinct('commit')} (models), "
             f"{', '.join(sorted({c for r in records for c in r.get('eval_commits', [])})) or 'none'} (evaluations)",
             f"**Computed:** {min((r['created'] for r in records), default='-')} to "
             f"{max((r['created'] for r in records), default='-')}"]
    changed = {k: v for k, v in settings.items() if profile_defaults and k in profile_defaults
               and profile_defaults[k] != v}
    if changed:
        lines.insert(1, "**Changed from the profile's defaults:** "
                     + ", ".join(f"`{k}` = {v!r}" for k, v in changed.items()))
    if stale:
        lines.append(f"> **{len(stale)} of {len(records)} records were computed by other library code** (of the "
                     "files they depend on) than this checkout's: their numbers may differ from a rerun. "
                     f"Changed since: {', '.join(f'`{f}`' for f in changed_files)}. `advbook compute "
                     f"{records[0]['config'].get('chapter')} --profile {settings.get('profile')} --stale` "
                     "recomputes them.")
    autoattacks = autoattack_labels(records)
    if autoattacks:
        lines.append("**AutoAttack:** " + "; ".join(f"{label} ({n} evaluations)" for label, n in autoattacks.items()))
    failures = training_failures(records, clean_metric="Test Accuracy" if records and "Test Accuracy" in
                                 records[0]["metrics"] else "clean")
    if failures:
        lines.append("> **Trainings that did not learn** (clean accuracy below chance + "
                     f"{LEARNED_MARGIN:g} points; every claim part that compares one of them is inconclusive): "
                     + "; ".join(failures) + ".")
    if not profiles.get(settings["profile"]).decides:
        lines.insert(0, "> **This is a smoke run, not a reproduction.** It trains tiny models on a tiny dataset "
                        "on a CPU to show that the pipeline works end to end. Its numbers say nothing about the "
                        "paper's claims; the `cpu` profile (real data, 2 CPU cores) or `fast` / `paper` on a GPU do that.\n")
    return "\n\n".join(lines)


# what an AutoAttack evaluation without a recorded label ran: torchattacks' own AutoAttack
LEGACY_AUTOATTACK = ("AutoAttack as torchattacks packages it, APGD-CE, APGD-T and FAB-T at 10 iterations each (the "
                     "published AutoAttack runs 100) and Square at 5,000 queries: weaker than the published "
                     "AutoAttack, computed before the book's full-strength one and to be recomputed")


def autoattack_labels(records: list[dict]) -> dict[str, int]:
    """{the AutoAttack an evaluation ran, with its parameters: how many evaluations} over `records`."""
    counts: dict[str, int] = {}
    for r in records:
        for evaluation in r.get("evaluations", {}).values():
            if evaluation["spec"].get("attack") == "autoattack":
                label = evaluation["result"].get("attack_label") or LEGACY_AUTOATTACK
                counts[label] = counts.get(label, 0) + 1
    return counts


def mean_spread(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def fmt(mean: float, spread: float, n: int, scale: float = 100.0, digits: int = 1) -> str:
    """'mean ± spread' in percent (or 'mean' for one seed, 'n/a' for none)."""
    if n == 0 or math.isnan(mean):
        return "n/a"
    if n == 1:
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {spread * scale:.{digits}f}"


# what a table, figure or list shows where the store holds none of its records (`experiments.collect`
# lists the missing models at the top of the page)
NO_DATA = "Nothing stored yet for this {what}: the models it needs are listed as not computed at the top of the page."


def no_data_text(what: str = "table") -> str:
    """The sentence, in Markdown, that a table, figure or list with no stored records shows instead."""
    return f"*{NO_DATA.format(what=what)}*"


def no_data(what: str = "table"):
    """`no_data_text` to display."""
    from IPython.display import Markdown

    return Markdown(no_data_text(what))


def or_no_data(table: pd.DataFrame, what: str = "table"):
    """`table` to display as it is, or the no-data sentence where it has no rows."""
    return no_data(what) if table.empty else table


def bullets_markdown(lines: list[str], what: str = "list") -> str:
    """Lines as a Markdown list (a page's computed conclusions), or the no-data sentence where there
    are none."""
    return "\n".join(f"- {line}" for line in lines) if lines else no_data_text(what)


def checklist_markdown(checks: list[dict]) -> str:
    """The book's masking checklist (`masking.checklist` rows), one row per model, with the models
    it flags named under it; the no-data sentence without models."""
    from . import masking

    if not checks:
        return no_data_text("checklist")
    return markdown_table(pd.DataFrame(checks).set_index("model")) + "\n\n" + masking.flagged(checks)


def seed_table(rows: list[dict], by: str, metrics: list[str], order=None, labels: dict | None = None) -> pd.DataFrame:
    """Rows of per-seed metrics -> one row per `by` value with 'mean ± std (n seeds)' cells, in percent."""
    groups = defaultdict(list)
    for row in rows:
        groups[row[by]].append(row)
    keys = [k for k in (order or sorted(groups)) if k in groups]
    table = {}
    for key in keys:
        cells = {}
        for metric in metrics:
            values = [r[metric] for r in groups[key] if r.get(metric) is not None]
            cells[(labels or {}).get(metric, metric)] = fmt(*mean_spread(values), len(values))
        cells["seeds"] = len(groups[key])
        table[key] = cells
    frame = pd.DataFrame.from_dict(table, orient="index")
    frame.index.name = by
    return frame


def aggregate(rows: list[dict], by: str, metric: str) -> dict:
    """{group: (mean, std, n)} of one metric."""
    groups = defaultdict(list)
    for row in rows:
        if row.get(metric) is not None:
            groups[row[by]].append(row[metric])
    return {k: (*mean_spread(v), len(v)) for k, v in groups.items()}


def claims_table(rows: list[dict]) -> pd.DataFrame:
    """A chapter's claims (`claims.row` dicts) as a table, verdicts checked against the book's
    three; show it with `markdown_table` so that no cell is cut."""
    from .claims import VERDICTS

    frame = pd.DataFrame(rows, columns=None if rows else ["claim", "verdict"])
    bad = set(frame["verdict"]) - set(VERDICTS)
    if bad:
        raise ValueError(f"unknown verdicts {bad}; use one of {VERDICTS}")
    return frame.set_index("claim")


def scale(settings: dict, records: list[dict]) -> dict:
    """Where a chapter's verdicts were decided: profile, datasets, seeds, devices."""
    seeds = {r["config"]["train"]["seed"] for r in records}
    return {"profile": settings["profile"],
            "datasets": ", ".join(sorted({r["dataset"]["display_name"] for r in records})) or "none",
            "seeds": len(seeds), "device": " / ".join(sorted({r["device"] for r in records})) or "none"}


def claims_by_scale(chapter, settings: dict, overrides: dict | None = None) -> dict[str, list[dict]]:
    """The chapter's claims judged at every other scale (profile) whose records the store holds,
    computing nothing: {profile: [{"verdict", "ours", "why"} per claim, in the claims' order]}.
    A verdict at any scale needs its own seeds, like any other; smoke runs decide nothing and
    are left out, and so is a scale whose experiments need a dataset that is not here (its
    configs cannot be built, e.g. a clone without the offline copies)."""
    from .errors import DataUnavailable
    from .experiments import stored_records
    out = {}
    for profile in profiles.NAMES:
        if not profiles.get(profile).decides or profile == settings["profile"] or profile not in chapter.profiles:
            continue
        other = chapter.settings(profile, **(overrides or {}))
        try:
            configs = chapter.experiments(other)
        except DataUnavailable:
            continue
        records = stored_records(configs)
        if records:
            rows = chapter.judge(other, chapter.summary(other, records))
            out[profile] = [{"verdict": r["verdict"], "ours": r[OURS], "why": r["why"], "parts": r.get("parts", []),
                             "stand_in": r.get("stand_in", ""), "scale": scale(other, records)} for r in rows]
    return out


def show_claims(rows: list[dict], settings: dict, records: list[dict], by_scale: dict | None = None) -> None:
    """Display a chapter's claims: a table of claim, the paper's number, ours and the verdict
    (and the verdict at every other scale with records, `claims_by_scale`), then each claim's
    operational definition and evidence in words (nothing cut), carrying the rows, the scale and
    the other scales' verdicts as output metadata, from which `advbook verdicts` builds "What holds"."""
    from IPython.display import Markdown, display

    payload = {"rows": rows, "scale": scale(settings, records)}
    text = claims_markdown(rows)
    if by_scale:
        payload["by_scale"] = by_scale
        columns = {f"at {profile}": [f"{v['verdict']} ({v['ours']})" for v in verdicts]
                   for profile, verdicts in by_scale.items()}
        frame = pd.DataFrame({"claim": [r["claim"] for r in rows],
                              f"at {settings['profile']} (this page)": [r["verdict"] for r in rows], **columns})
        text += ("\n\n**The same claims at the other scales with records** (computed from the store; each "
                 "scale's own seeds):\n\n" + markdown_table(frame.set_index("claim")))
    display(Markdown(text), metadata={METADATA_KEY: payload})


def anchor(heading: str) -> str:
    """The anchor the book gives a `##` heading (MyST's slug: myst_heading_anchors in _config.yml)."""
    import re

    return re.sub(r"[^\w\u4e00-\u9fff\- ]", "", heading.strip().lower().replace(" ", "-"))


def evidence_for(judged: list[dict], ids: list[str], heading: str) -> None:
    """Close an evidence section: name the claims it is the evidence for, each with its verdict,
    and mark their rows so that the claims table links back here (`claims_markdown`). `ids` as
    `claims.label` gives them ('1', 'C6a'); `heading` the section's `##` heading, as written."""
    from IPython.display import Markdown, display

    if not judged:  # a page that judges no claim yet (no records of any dataset): nothing to name
        return
    unknown = sorted(set(ids) - {claim_label(i, r["claim"]) for i, r in enumerate(judged)})
    if unknown:
        raise ValueError(f"no claim {', '.join(unknown)} on this page")
    found = []
    for i, row in enumerate(judged):
        if claim_label(i, row["claim"]) in ids:
            row.setdefault("evidence", []).append(heading)
            found.append(f"*{row['claim']}*: **{row['verdict']}**")
    if found:
        display(Markdown("**The evidence above is for:** " + "; ".join(found)
                         + " ([every claim and why](#claims-and-verdicts))"))


def claims_markdown(rows: list[dict]) -> str:
    """The claims table (four columns, every cell whole), then one paragraph per claim: how we
    read it, what we measured and why the rule gave its verdict."""
    columns = ["paper", OURS, "verdict"]

    def linked(r):  # the claim, with a link to each section holding its evidence (`evidence_for`)
        return r["claim"] + "".join(f" ([evidence](#{anchor(h)}))" for h in r.get("evidence", []))
    table = markdown_table(claims_table([{"claim": linked(r), **{k: r.get(k, "") for k in columns}} for r in rows]))
    def sentence(text) -> str:
        return str(text).strip().rstrip(".")

    words = [f"- **{sentence(r['claim'])}.** *How we read it:* {sentence(r.get('how we read it') or 'as stated')}. "
             f"*The paper:* {sentence(r['paper'])}. *Ours:* {sentence(r[OURS])}. "
             f"*Verdict:* **{r['verdict']}**: {sentence(r.get('why') or 'see the rule above')}."
             for r in rows]
    return table + "\n\n**Each claim in words**\n\n" + "\n".join(words)


def verdicts_margin(rows: list[dict]) -> str:
    """The page's verdicts counted, for the margin beside its opening (a MyST `margin` block, which
    the book's theme sets in the sidebar on a wide screen)."""
    from .claims import VERDICTS

    counts = [f"{sum(r['verdict'] == v for r in rows)} {v}" for v in VERDICTS if any(r["verdict"] == v for r in rows)]
    return ("```{margin} Verdicts on this page\n" + ("; ".join(counts) if counts else "no claims judged yet")
            + ". [Every claim and why](#claims-and-verdicts).\n```")


def verdicts_at_a_glance(rows: list[dict]) -> str:
    """The top-of-chapter summary: one line per claim, its verdict and one line of evidence (the
    measured difference, or for a claim of several parts the rule's reason; every part is in
    the claims section)."""
    marks = {CONFIRMED: "✔", NOT_CONFIRMED: "✘", INCONCLUSIVE: "?", UNTESTABLE: "–"}

    def evidence(r):
        ours = r[OURS]
        if ";" in ours:
            return f"{r.get('why') or ours}; every part below"
        # an undecided single comparison says why (a guard, or the rule's band)
        return f"ours: {ours}" + (f"; {r['why']}" if r["verdict"] != CONFIRMED and r.get("why") else "")

    return "\n".join(f"- {marks.get(r['verdict'], '')} **{r['verdict']}**: {r['claim']} ({evidence(r)})"
                      for r in rows)


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table, every cell whole (pandas' HTML cuts long text); the no-data
    sentence for a frame without rows or columns."""
    if frame.empty:
        return no_data_text("table")

    def cell(v):
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return "n/a"  # not measured (a check not made, a model not run): never 'None' or 'nan' on a page
        return str(v).replace("|", "\\|").replace("\n", " ")

    index = [frame.index.name or ""]
    header = "| " + " | ".join(index + [cell(c) for c in frame.columns]) + " |"
    rule = "|" + "---|" * (len(frame.columns) + 1)
    body = ["| " + " | ".join([cell(i)] + [cell(v) for v in r]) + " |" for i, r in zip(frame.index, frame.values)]
    return "\n".join([header, rule, *body])


def baselines_markdown(rows: list[tuple[str, str, str, str]]) -> str:
    """A chapter's `baselines(settings)` rows, (baseline, this run, the paper, why they differ), as
    a Markdown table; an empty reason reads "they do not"."""
    frame = pd.DataFrame([(b, mine, theirs, why or "they do not") for b, mine, theirs, why in rows],
                         columns=["baseline", "this run", "the paper", "why they differ"]).set_index("baseline")
    return markdown_table(frame)


def sweep_curves(records: list[dict], sweep: str, label) -> dict[str, dict]:
    """{label(record): {x: [accuracy per seed]}} from the records that hold `metrics[sweep]`."""
    curves: dict[str, dict] = {}
    for record in records:
        for x, acc in record["metrics"].get(sweep, {}).items():
            curves.setdefault(label(record), {}).setdefault(float(x), []).append(acc)
    return curves


def curve_figure(curves: dict[str, dict], xlabel: str, ylabel: str, title: str, logx: bool = False, ax=None,
                 xticklabels: list[str] | None = None, ylim: tuple | None = (-2, 102), looks: dict | None = None):
    """One line per label; each curve {x: [values over seeds]}, drawn as mean with a ±std band.
    Draws into `ax` when given (for multi-panel figures), else into a new figure.
    `ylim` None fits the axis to the data (for small differences); `looks` gives a label's line
    keywords (colour and style, say)."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.6))
    fig = ax.figure
    for label, points in curves.items():
        xs = sorted(points)
        stats = [mean_spread(points[x]) for x in xs]
        means = [100 * m for m, _ in stats]
        spreads = [100 * s for _, s in stats]
        line, = ax.plot(xs, means, marker="o", label=label, **(looks or {}).get(label, {}))
        if any(spreads):
            ax.fill_between(xs, [m - s for m, s in zip(means, spreads)], [m + s for m, s in zip(means, spreads)],
                            alpha=0.2, color=line.get_color())
    if logx:
        ax.set_xscale("log")
    if xticklabels is not None:
        ax.set_xticks(range(len(xticklabels)), xticklabels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    legend_or_no_data(ax, curves)
    fig.tight_layout()
    return fig


def scatter_figure(points: dict[str, tuple[list, list]], xlabel: str, ylabel: str, title: str, ax=None):
    """One marker per label at (mean x, mean y) over seeds, with ±std error bars, in percent; a label
    with no values is left out."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    drawn = []
    for label, (xs, ys) in points.items():
        (mx, sx), (my, sy) = mean_spread(xs), mean_spread(ys)
        if math.isnan(mx) or math.isnan(my):  # nothing stored for this label
            continue
        ax.errorbar(100 * mx, 100 * my, xerr=100 * sx, yerr=100 * sy, fmt="o", capsize=3, label=label)
        drawn.append(label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_or_no_data(ax, drawn)
    ax.figure.tight_layout()
    return ax.figure


def legend_or_no_data(ax, drawn) -> None:
    """The legend of the lines or points drawn, or, where nothing is (`drawn` empty), the no-data
    sentence across the empty axes."""
    import textwrap

    if drawn:
        ax.legend(fontsize=9)
    else:
        ax.text(0.5, 0.5, textwrap.fill(NO_DATA.format(what="figure"), 40), ha="center", va="center", fontsize=9,
                transform=ax.transAxes)


def results_csv(records: list[dict]) -> str:
    """A chapter's results as CSV, one row per evaluation: the model's and the evaluation's record
    keys (their files are data/results/models/MODEL.json and evals/MODEL/EVAL.json), the
    commits that computed them, and the accuracy, so that every number can be traced."""
    import csv
    import io
    import json

    from .store import eval_key

    columns = ["model_key", "eval_key", "chapter", "profile", "dataset", "defense", "seed", "evaluation",
               "attack", "accuracy", "n", "model_commit", "eval_commit", "device", "created", "train_config"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        train = record["config"].get("train", {})
        for name, evaluation in record.get("evaluations", {}).items():
            writer.writerow({
                "model_key": record["key"], "eval_key": eval_key(record["key"], evaluation["spec"], evaluation["test"]),
                "chapter": record["config"].get("chapter"), "profile": record.get("profile"),
                "dataset": record["dataset"]["display_name"], "defense": train.get("defense"),
                "seed": train.get("seed"), "evaluation": name, "attack": evaluation["spec"].get("attack"),
                "accuracy": evaluation["result"]["accuracy"], "n": evaluation["result"].get("n"),
                "model_commit": record["commit"], "eval_commit": evaluation.get("commit"),
                "device": evaluation.get("device"), "created": evaluation.get("created"),
                "train_config": json.dumps(train, sort_keys=True)})
    return out.getvalue()


def source_link(obj) -> str:
    """An HTML link from a library function or class to its source page in the built book
    (book/_ext/offline_pages.py writes code/advbook/FILE.py.html with one anchor per line)."""
    import html
    import inspect
    from pathlib import Path

    from .paths import PROJECT_ROOT

    target = inspect.unwrap(obj)
    path = Path(inspect.getsourcefile(target)).resolve().relative_to(PROJECT_ROOT / "lib")
    line = inspect.getsourcelines(target)[1]
    name = f"{target.__module__}.{target.__qualname__}"
    return (f'<a href="code/{path.as_posix()}.html#L-{line}"><code>{html.escape(name)}</code></a> '
            f'<span class="advbook-where">({path.as_posix()}, line {line})</span>')


def for_researchers(chapter: str, records: list[dict], functions: list, results: str | None = None,
                     profile: str = "cpu"):
    """The chapter's "Code, data and how to rerun" block: its executed notebook and its results
    (`results_csv(records)`, or the CSV text `results`, embedded in the page so that it works
    offline) to download, the library functions it calls linked to their source, and how to
    run the downloaded notebook."""
    import base64
    import html

    from IPython.display import HTML

    csv_text = results_csv(records) if results is None else results
    rows = max(csv_text.count("\n") - 1, 0)
    what = (f"{rows} evaluations of {len(records)} models, each with its model and evaluation record keys, "
            "the commits that computed them, device and date" if results is None else f"{rows} rows")
    data = base64.b64encode(csv_text.encode()).decode()
    code = "".join(f"<li>{source_link(f)}</li>" for f in functions)
    run = html.escape(f"make setup && ADVBOOK_DATA=/path/to/data .venv/bin/advbook run {chapter} --profile {profile}")
    return HTML(
        '<div class="advbook-researchers">'
        f'<p><strong>Download:</strong> <a href="_sources/{chapter}.ipynb" download="{chapter}.ipynb">'
        f"this chapter's executed notebook</a> (<code>{chapter}.ipynb</code>) · "
        f'<a href="data:text/csv;base64,{data}" download="{chapter}-results.csv">its results</a> '
        f"(<code>{chapter}-results.csv</code>: {what}).</p>"
        f"<p><strong>The library code this chapter calls:</strong></p><ul>{code}</ul>"
        "<p><strong>To run the downloaded notebook:</strong> it needs the <code>advbook</code> library and its "
        "records, so run it inside a clone of this book's repository: <code>make setup</code> installs the "
        "pinned environment in <code>.venv</code>; put the notebook in <code>book/</code> (or anywhere) and "
        "open it with Jupyter installed into that environment (<code>.venv/bin/pip install jupyterlab</code>), "
        "set <code>profile</code> (and <code>overrides</code>) in its parameters cell and run all cells. It "
        "reads your records (<code>data/local</code>) and the book's beneath them (<code>data/results</code>) "
        "and computes any that are missing into yours, never into the book's (real-data profiles need the "
        "dataset copies: "
        "<code>export ADVBOOK_DATA=/path/to/data</code>). The same from the command line, executing the "
        f"chapter's source <code>notebooks/{chapter}.py</code>:</p><pre>{run}</pre></div>")
