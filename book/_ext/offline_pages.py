"""Two fixes for pages opened from disk with no network, found by the browser test:
sphinx-thebe's inline configuration script is added twice to every page (a console error,
"THEBE_JS_URL has already been declared"), and the theme's light/dark mode starts empty on a
file:// page (another console error). Scripts are de-duplicated per page; the mode gets a
default in book/_static/light-mode.js."""


def _unique_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # an inline script's filename is '' or None depending on who added it
        key = (str(getattr(script, "filename", script) or ""), getattr(script, "attributes", {}).get("body"))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
