"""Fixes and additions for pages opened from disk with no network.

Fixes, found by the browser test: sphinx-thebe's inline configuration script is added twice to
every page (a console error, "THEBE_JS_URL has already been declared"), and the theme's
light/dark mode starts empty on a file:// page (another console error). Scripts are
de-duplicated per page; the mode gets a default in book/_static/light-mode.js.

Addition: the library's source, one page per file under code/advbook/ with an anchor per line
(`#L-42`), so that a chapter can link the functions it calls (`reporting.source_link`) and the
book stays self-contained offline.
"""
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[2] / "lib"


def _unique_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # an inline script's filename is '' or None depending on who added it
        key = (str(getattr(script, "filename", script) or ""), getattr(script, "attributes", {}).get("body"))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _write_source_pages(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    for source in sorted((LIBRARY / "advbook").rglob("*.py")):
        relative = source.relative_to(LIBRARY).as_posix()
        formatter = HtmlFormatter(full=True, linenos="inline", lineanchors="L", anchorlinenos=True,
                                  title=f"{relative} (advbook library source)", style="default")
        target = Path(app.outdir) / "code" / f"{relative}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(highlight(source.read_text(), PythonLexer(), formatter))


def setup(app):
    app.connect("html-page-context", _unique_scripts, priority=900)
    app.connect("build-finished", _write_source_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
