"""The "What holds" page: every chapter's claims and verdicts, gathered from the executed
notebooks in book/ (the claims cells carry them as output metadata, see
`reporting.show_claims`), so that the page always says what the rendered chapters say.

`advbook verdicts` writes book/verdicts.md, the same verdicts as data in book/verdicts.json, and
the rule's page book/rule.md (from `advbook.claims`' own docstring, so that the rule is written
once); `make html` runs it before every build.
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote_plus

from . import claims, deciding, profiles, published
from .atomic import write_atomic
from .claims import OURS
from .paths import BOOK
from .reporting import METADATA_KEY, anchor


# chapter name -> citation (authors, title, venue, year, link), read from the chapters' paper files
# (data/papers/<chapter>.json, see advbook.published); where we hold no verified identifier the
# link searches the title. A new chapter adds its paper file.
PAPERS = {chapter: published.citation(chapter) for chapter in published.chapters()}


def citation(chapter: str) -> str:
    """A Markdown citation: authors, title, venue, year, and a link (arXiv, or a title search)."""
    p = PAPERS[chapter]
    link = (f"https://arxiv.org/abs/{p['arxiv']}" if p.get("arxiv") else
            f"https://scholar.google.com/scholar?q={quote_plus(p['title'])}")
    label = f"arXiv:{p['arxiv']}" if p.get("arxiv") else "search the title"
    venue = ", ".join(v for v in (p["venue"], p["year"]) if v)
    return f"{p['authors']}. *{p['title']}*. {venue}. [{label}]({link})"


def chapter_claims(notebook: Path) -> dict | None:
    """The claims payload a chapter's executed notebook carries, or None."""
    nb = json.loads(notebook.read_text())
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            payload = output.get("metadata", {}).get(METADATA_KEY)
            if payload:
                return payload
    return None


def _title(notebook: Path) -> str:
    """A chapter's first heading (for a chapter with claims but no PAPERS entry yet)."""
    for cell in json.loads(notebook.read_text()).get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


def toc_files(book: Path = BOOK) -> set[str]:
    """The pages listed in book/_toc.yml: only those can be linked (the build renders no other)."""
    import yaml

    toc = book / "_toc.yml"
    if not toc.exists():
        return set()
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.add(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(yaml.safe_load(toc.read_text()))
    return found


def page(book: Path = BOOK) -> str:
    """book/verdicts.md: the counts as a picture, then per paper a forest plot of its judged parts and
    a table, in the order of PAPERS, then any other executed chapter that carries claims (so that a
    new chapter appears before its PAPERS entry). Writes the pictures under book/figures/."""
    lines = ["# What holds", "",
             "Every claim the book's chapters test, with the verdict under the book's one rule "
             "([How a verdict is decided](rule.md): one-sided Student-t bounds, each erring at most 5 %, on paired per-seed "
             "differences A - B, shown as mean [lower, upper]), and the scale it was decided at. This page is "
             "generated from the executed chapters (`advbook verdicts`, run by `make html`), so it always says "
             "what they say; the same verdicts as data, every part with its per-seed differences and bounds: "
             "{download}`verdicts.json <verdicts.json>`. The methods and words it names are in the "
             "[glossary](glossary.md). For every undecided claim, *what would decide it*: the paired seeds the "
             "spread of its differences asks for (80 % power at the rule's level; an extrapolation, not a promise), "
             "or the guard a design must pass, or the next profile, with the minutes `advbook.planning` plans for it "
             "from " + " and ".join(r.source for r in deciding.rates().values()) + ".", ""]
    counts, smoke = {}, 0
    listed = toc_files(book)
    others = [p.stem for p in sorted(book.glob("*.ipynb")) if p.stem not in PAPERS and chapter_claims(p)]
    for chapter in [*PAPERS, *others]:
        notebook = book / f"{chapter}.ipynb"
        if chapter in PAPERS:
            lines += [f"## {PAPERS[chapter]['title']}", "", citation(chapter), ""]
        else:
            lines += [f"## {_title(notebook)}", "", f"*No citation yet: add the paper file `data/papers/{notebook.stem}.json`.*", ""]
        payload = chapter_claims(notebook) if notebook.exists() else None
        if payload is None:
            lines += ["*No chapter yet: its claims are not decided.*" if not notebook.exists() else
                      "*The chapter shows no claims table yet.*", ""]
            continue
        scale = payload["scale"]
        chapter_entries = entries(notebook, payload)
        alt = forest(chapter, chapter_entries, book / FIGURES / f"verdicts-{chapter}.png")
        # a chapter not yet in the table of contents is not built, so it cannot be linked
        where = f"the {{doc}}`{chapter}` chapter" if chapter in listed else \
            f"the chapter `{chapter}` (not yet in the book's table of contents)"
        lines += [f"Decided in {where} at the **{scale['profile']}** profile: "
                  f"{scale['datasets']}, {scale['seeds']} seeds, {scale['device']}."
                  + ("" if profiles.get(scale["profile"]).decides else " *A smoke run decides nothing.*"), "",
                  *([f"![{alt}]({FIGURES}/verdicts-{chapter}.png)", ""] if alt else []),
                  f"| claim | the paper | {OURS} | verdict | why, in a sentence |", "|---|---|---|---|---|"]
        by_scale = payload.get("by_scale") or {}
        largest = profiles.largest([scale["profile"], *by_scale])
        if largest != scale["profile"]:
            lines[-2:-2] = [f"A larger scale has records: each verdict below is the **{largest}** profile's "
                            f"({by_scale[largest][0]['scale']['datasets']}, {by_scale[largest][0]['scale']['seeds']} "
                            f"seeds), the smaller ones beside it.", ""]
        for i, row in enumerate(payload["rows"]):
            verdict, ours = row["verdict"], row[OURS]
            if largest != scale["profile"] and i < len(by_scale[largest]):
                verdict, ours = by_scale[largest][i]["verdict"], by_scale[largest][i]["ours"]
            pieces = ours.split("; ")
            if len(pieces) > 2:  # every part is drawn above and listed in the chapter
                ours = f"{pieces[0]}; and {len(pieces) - 1} more parts (drawn above, listed in the chapter)"
            smaller = [f"{p}: {by_scale[p][i]['verdict']}" for p in profiles.by_rank(by_scale)
                       if p != largest and i < len(by_scale[p])] + ([f"{scale['profile']}: {row['verdict']}"]
                                                          if largest != scale["profile"] else [])
            if not profiles.get(largest).decides:
                smoke += 1
            else:
                counts[verdict] = counts.get(verdict, 0) + 1
            named = badge(verdict) + (f" at {largest}" if largest != scale["profile"] else "")
            decide = chapter_entries[i]["decide"]
            evidence = f" ([evidence]({chapter}.ipynb#{anchor(row['evidence'][0])}))" \
                if row.get("evidence") and chapter in listed else ""
            cells = [row["claim"] + evidence, row["paper"], ours, named + (f" ({'; '.join(smaller)})" if smaller else ""),
                     plain_reason(chapter_entries[i]) + (f" *What would decide it:* {decide['text']}." if decide else "")]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        lines += ["", f"Details, the operational definition of each claim and its evidence: "
                      f"[the chapter's claims section]({chapter}.ipynb#claims-and-verdicts).", ""] \
            if chapter in listed else [""]
    total = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    uncounted = f" ({smoke} claims of smoke runs, which decide nothing, not counted)" if smoke else ""
    summary = f"**In all:** {total or 'no claims decided yet'}{uncounted}.\n"
    if counts:
        summary += f"\n![{counts_figure(counts, book / FIGURES / 'verdicts-counts.png')}]({FIGURES}/verdicts-counts.png)\n"
    lines.insert(4, summary)
    return "\n".join(lines) + "\n"


COLOURS = {claims.CONFIRMED: "#1a7f37", claims.NOT_CONFIRMED: "#cf222e", claims.INCONCLUSIVE: "#8c959f",
           claims.UNTESTABLE: "#6e40c9"}
FIGURES = "figures"  # book/figures/: What holds' pictures, written with its page


def badge(verdict: str) -> str:
    """A verdict as a coloured badge (book/_static/tables.css), its words in bold inside."""
    kind = {claims.CONFIRMED: "confirmed", claims.NOT_CONFIRMED: "refuted", claims.INCONCLUSIVE: "inconclusive",
            claims.UNTESTABLE: "untestable"}.get(verdict, "inconclusive")
    return f'<span class="advbook-verdict advbook-{kind}">**{verdict}**</span>'


def plain_reason(claim: dict) -> str:
    """Why a claim (an entry of `data`) reads as it does, in one sentence a reader needs no rule for;
    the rule's full reason stays in the chapter."""
    parts = [p for p in claim["parts"] if p["verdict"] in claims.VERDICTS]
    verdict = claim["verdict"]
    if verdict == claims.CONFIRMED:
        return "Every part's bounds lie on the claimed side."
    if verdict == claims.NOT_CONFIRMED:
        return (claim["reason"] or "not confirmed for a part").split(";")[0].replace("not confirmed for", "Refuted for", 1) + "."
    if verdict == claims.UNTESTABLE:
        return claim["reason"].split(":")[0][:1].upper() + claim["reason"].split(":")[0][1:] + "."
    judged = [p for p in parts if p["lower"] is not None]
    if not judged:
        return (claim["reason"].split(":")[0].split(";")[0]).capitalize().rstrip(".") + "."
    held = [p for p in judged if not p["reason"].startswith("bounds")]
    if held:
        return f"{len(held)} of {len(parts)} parts held by a guard: {held[0]['reason'].split(':')[0]}."
    worst = max(judged, key=lambda p: p["min_detectable"] or 0)
    needs = [abs(p["min_effect"] if p["min_effect"] else (p["margin"] or 0)) for p in judged]
    need = f"; the claim needs about {min(needs):.2g}" if any(needs) else ""
    return (f"The bounds include both no effect and the claimed one: this design detects effects of "
            f"{worst['min_detectable']:.2g} {worst['unit'] or ''} or more{need}.").replace("  ", " ")


def forest(chapter: str, entries: list[dict], path: Path) -> str | None:
    """The chapter's judged parts in points as a forest plot (each part's bounds and mean, coloured by
    verdict, the paper's effect and a "within" claim's band beside it), saved to `path`; its alt text,
    or None when no part has bounds in points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(e["id"].split(":", 1)[1], p) for e in entries for p in e["parts"]
            if p["lower"] is not None and p["unit"] == "points"]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.2, 1.2 + 0.3 * len(rows)))
    for y, (cid, p) in enumerate(rows):
        colour = COLOURS.get(p["verdict"], COLOURS[claims.INCONCLUSIVE])
        if p["kind"] == "within":
            ax.fill_betweenx([y - 0.35, y + 0.35], p["center"] - p["margin"], p["center"] + p["margin"],
                             color="#0969da", alpha=0.12, lw=0)
        ax.plot([p["lower"], p["upper"]], [y, y], color=colour, lw=2.2)
        ax.plot(p["mean"], y, "o", color=colour, ms=4)
        if p["paper_effect"] is not None:
            ax.plot(p["paper_effect"], y, "x", color="black", ms=6, mew=1.5)
    ax.axvline(0, color="black", lw=0.8)
    labels = [f"{cid} {p['label']}"[:60] if p["label"] else cid for cid, p in rows]
    ax.set_yticks(range(len(rows)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("A - B, points: mean and the rule's bounds", fontsize=10)
    ax.tick_params(axis="x", labelsize=9)
    ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], color=c, lw=2.2, label=v) for v, c in COLOURS.items() if v != claims.UNTESTABLE]
    handles += [plt.Line2D([], [], color="black", marker="x", lw=0, label="the paper's effect"),
                plt.Rectangle((0, 0), 1, 1, color="#0969da", alpha=0.12, label="a 'within' claim's band")]
    ax.legend(handles=handles, fontsize=9, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "wb", lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight",
                                                   metadata={"Software": None}))
    plt.close(fig)
    decided = sum(p["verdict"] in (claims.CONFIRMED, claims.NOT_CONFIRMED) for _, p in rows)
    return (f"Forest plot of {len(rows)} judged comparisons of {chapter} in points, each a mean with the rule's "
            f"bounds, coloured by verdict; {decided} decided, the paper's effect marked beside each")


def counts_figure(counts: dict[str, int], path: Path) -> str:
    """The book's verdict counts as one stacked bar, saved to `path`; its alt text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 0.9))
    left, total = 0, max(sum(counts.values()), 1)
    for verdict in claims.VERDICTS:
        n = counts.get(verdict, 0)
        if n:
            short = verdict.split(" at ")[0].split(" as ")[0]
            ax.barh(0, n, left=left, color=COLOURS[verdict], label=f"{n} {short}")
            # a narrow segment holds its count only; the legend below names every segment whole
            ax.text(left + n / 2, 0, f"{n} {short}" if n / total >= 0.25 else str(n), ha="center", va="center",
                    fontsize=9, color="white" if verdict != claims.INCONCLUSIVE else "black")
            left += n
    ax.set_xlim(0, max(left, 1))
    ax.axis("off")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=4, fontsize=9, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "wb", lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight",
                                                   metadata={"Software": None}))
    plt.close(fig)
    return "The book's verdicts counted: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in claims.VERDICTS)


def entries(notebook: Path, payload: dict | None = None) -> list[dict]:
    """A chapter's claims as data, at the scale What holds shows them: verdict, reason, scale and each
    judged part with its differences and bounds (empty for a chapter without a claims table);
    `payload`, the notebook's claims payload where the caller has read it already."""
    payload = payload if payload is not None else chapter_claims(notebook)
    if payload is None:
        return []
    by_scale = payload.get("by_scale") or {}
    largest = profiles.largest([payload["scale"]["profile"], *by_scale])
    out = []
    for i, row in enumerate(payload["rows"]):
        shown = by_scale[largest][i] if largest != payload["scale"]["profile"] else None
        entry = {"chapter": notebook.stem, "id": f"{notebook.stem}:{claims.label(i, row['claim'])}", "text": row["claim"],
                 "verdict": (shown or row)["verdict"], "reason": (shown or row)["why"],
                 "scale": shown["scale"] if shown else payload["scale"],
                 "parts": (shown or row).get("parts", []), "stand_in": (shown or row).get("stand_in", "")}
        decision = deciding.what_decides(entry)
        out.append({**entry, "decide": decision.as_data() if decision else None})
    return out


def data(book: Path = BOOK) -> list[dict]:
    """Every claim of every executed chapter as data (book/verdicts.json)."""
    return [e for notebook in sorted(book.glob("*.ipynb")) for e in entries(notebook)]


def rule_page() -> str:
    """book/rule.md: the rule and its guards as `advbook.claims` states them, with its constants."""
    text = claims.__doc__.split("\n", 1)[1].strip()
    constants = [("ALPHA", claims.ALPHA, "one-sided level of each bound; a claim's refutation is Holm-corrected at it"),
                 ("POWER", claims.POWER, "the power at which a part states the smallest effect it could detect"),
                 ("MIN_PAIRS", claims.MIN_PAIRS, "fewer paired seeds decide nothing (new designs use at least 5)"),
                 ("LEARNED_MARGIN", claims.LEARNED_MARGIN, "points above chance a compared model must reach clean"),
                 ("FLOOR_POINTS", claims.FLOOR_POINTS, "a side this close to 0 % or 100 % sits at a floor or ceiling"),
                 ("OTHERS_TOLERANCE", claims.OTHERS_TOLERANCE, "CPUs other processes may keep busy while a model is timed")]
    table = ["| constant | value | meaning |", "|---|---|---|",
             *(f"| `{name}` | {value:g} | {meaning} |" for name, value, meaning in constants)]
    return "\n".join(["# How a verdict is decided", "",
                      "The book's one rule, as the code that applies it (`advbook.claims`) states it; every chapter's "
                      "claims and [What holds](verdicts.md) are judged by it.", "", text, "", "## Its constants", "",
                      *table, ""])


def write(book: Path = BOOK) -> Path:
    """book/verdicts.md with its figures, book/verdicts.json and book/rule.md, each written whole."""
    write_atomic(book / "rule.md", "w", lambda f: f.write(rule_page()))
    everything = data(book)
    write_atomic(book / "verdicts.json", "w", lambda f: f.write(json.dumps(everything, indent=1, ensure_ascii=False)
                                                                   + "\n"))
    return write_atomic(book / "verdicts.md", "w", lambda f: f.write(page(book)))
