"""The built book opened in a real browser (headless Chromium), page by page, as a reader would.

Fails on: formulas left as raw TeX, a missing image, a console error, a request that leaves the
machine, error output in a cell, a Markdown table shown as raw text, or a link to a file of the book that is not there (a download,
a source page); and on what makes a page hard to read: a table wider than its container with no
scroll box of its own, a table cell reading None or nan, an image whose alt text is a file name or
a hash instead of words. Screenshots of failing pages go to _build/browser-failures/; screenshots
of What holds and of one chapter, as a reader sees them, go to screenshots/ (not published).
Runs on the HTML that `make html` built from the committed chapters (`make test` builds it first).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ADVBOOK_HTML: another built copy (a build in a scratch folder, say)
HTML = Path(os.environ.get("ADVBOOK_HTML", ROOT / "_build" / "html"))
FAILURES = HTML.parent / "browser-failures"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# every page but the generated index, the search page and index.html (a redirect to intro.html)
PAGES = sorted(p.name for p in HTML.glob("*.html") if p.name not in ("genindex.html", "search.html", "index.html")) \
    if HTML.is_dir() else []

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (the set-up installs it with "
                                                "apt-get where it can: `apt-get install chromium`)"),
    pytest.mark.skipif(not PAGES, reason="the book is not built: run `make html` (make test does)"),
]

# in-page checks, after MathJax has typeset the page
CHECKS = r"""async () => {
    if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
    const main = document.querySelector('main') || document.body;
    const math = [...main.querySelectorAll('.math')];
    return {
        math: math.length,
        untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
        mathjax: !!window.MathJax,
        broken_images: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
        error_outputs: [...main.querySelectorAll('.output.stderr, .output.traceback, .output.error')]
            .map(o => o.textContent.slice(0, 200)),
        // a table's rule row '|---|' (the typographer turns '---' into an em dash) outside a table
        raw_tables: [...main.querySelectorAll('p')].filter(p => /\|\s*:?(-{3,}|[—–]+-?)\s*:?\|/.test(p.textContent))
            .map(p => p.textContent.slice(0, 80)),
        local_links: [...document.querySelectorAll('a[href]')].map(a => a.href)
            .filter(h => h.startsWith('file:')),
        // a table that overflows its container must scroll inside a box of its own (tables.css)
        cut_tables: [...main.querySelectorAll('table')].filter(t => {
            const box = t.parentElement.getBoundingClientRect().width;
            if (t.scrollWidth <= box + 1) return false;
            for (let e = t; e && e !== main; e = e.parentElement) {
                const o = getComputedStyle(e).overflowX;
                if ((o === 'auto' || o === 'scroll') && e.clientWidth < e.scrollWidth + 1) return false;
            }
            return true;
        }).map(t => t.textContent.slice(0, 80)),
        empty_cells: [...main.querySelectorAll('td')].map(td => td.textContent.trim())
            .filter(text => ['None', 'nan', 'NaN'].includes(text)),
        nameless_images: [...main.querySelectorAll('img')].map(i => i.getAttribute('alt') || '')
            .filter(alt => !alt.trim() || /^[0-9a-f]{12,}$/i.test(alt.trim()) || /\.(png|svg|jpe?g)$/i.test(alt.trim())),
    };
}"""
# the pages a reader of the repository sees as screenshots (screenshots/, beside the book, not in it)
SCREENSHOTS = ROOT / "screenshots"
SHOWN = ("verdicts.html", "biparo.html")


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def problems_of(browser, path: Path):
    """Open `path` as a reader would, nothing let off the machine; (the open page, {problem: what})."""
    page = browser.new_page()
    console, remote = [], []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(str(e)))

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:
            remote.append(r.request.url)
            r.abort()
    page.route("**/*", route)
    page.goto(path.as_uri(), wait_until="load")
    found = page.evaluate(CHECKS)
    dead_links = sorted({link for link in found["local_links"]
                         if not Path(unquote(urlparse(link).path)).exists()})
    problems = {k: v for k, v in {"console errors": console, "remote requests": remote,
                                  "untypeset math": found["untypeset"], "broken images": found["broken_images"],
                                  "error output in cells": found["error_outputs"], "dead links": dead_links,
                                  "Markdown tables left as text": found["raw_tables"],
                                  "tables cut off with no scroll box": found["cut_tables"],
                                  "cells reading None or nan": found["empty_cells"],
                                  "images whose alt text is a name or hash": found["nameless_images"]}.items()
                if v}
    if found["math"] and not found["mathjax"]:
        problems["MathJax"] = "not loaded"
    return page, problems


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_offline_and_cleanly(browser, name):
    page, problems = problems_of(browser, HTML / name)
    if problems:
        FAILURES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(FAILURES / f"{name}.png"), full_page=True)
    elif name in SHOWN:
        SCREENSHOTS.mkdir(exist_ok=True)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / name.replace(".html", ".png")), full_page=False)
    page.close()
    assert not problems, f"{name}: {problems} (screenshot in {FAILURES})"


def test_the_primers_formulas_are_typeset(browser):
    """The page with the most mathematics really has it typeset (a check that the check sees math)."""
    if "primer.html" not in PAGES:
        pytest.skip("no primer page in this build")
    page = browser.new_page()
    page.goto((HTML / "primer.html").as_uri(), wait_until="load")
    found = page.evaluate(CHECKS)
    page.close()
    assert found["math"] >= 5 and not found["untypeset"]


def test_an_audit_report_opens_offline_and_cleanly(browser, tmp_path):
    """report.html of `advbook audit`, written from each committed audit report of the book's audit
    page (the same `render_html` the command uses), opened with the same checks as a page."""
    from advbook import model_audit

    reports = sorted((ROOT / "data" / "results" / "audits").rglob("*.json"))
    assert reports, "no committed audit report (data/results/audits): the audit page renders none"
    for source in reports:
        path = tmp_path / f"{source.stem}.html"
        path.write_text(model_audit.render_html(json.loads(source.read_text())))
        page, problems = problems_of(browser, path)
        page.close()
        assert not problems, f"{source.name}'s report.html: {problems}"

