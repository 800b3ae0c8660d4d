"""Executing a chapter's notebook: its Jupytext source through papermill into an executed
notebook for the book, replaced only when the run succeeds, with the book's clean-ups (one
parameters cell shown, computing progress dropped)."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import NotebookFailed
from .paths import NOTEBOOKS, writable


# the kernel's own log (not the notebook's output, which reaches the page) only at CRITICAL: when a
# run is interrupted, the kernel, still sending a reply as its connection closes, would print a
# traceback after our one line
QUIET_KERNEL = ["--IPKernelApp.log_level=CRITICAL"]


def execute_notebook(chapter_name: str, parameters: dict, output: Path) -> None:
    """Jupytext source -> papermill (kernel python3) -> `output`, replaced only on success.
    A failed run leaves `output` untouched and keeps the failed notebook beside it."""
    import jupytext
    import papermill

    source = NOTEBOOKS / f"{chapter_name}.py"
    if not source.exists():
        raise FileNotFoundError(f"no notebook source {source}")
    output.parent.mkdir(parents=True, exist_ok=True)
    writable(output.parent, "output folder")
    # work beside the output, so the final rename is atomic and a failed run leaves it untouched
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{chapter_name}-run-") as tmp:
        unexecuted = Path(tmp) / f"{chapter_name}.ipynb"
        jupytext.write(jupytext.read(source), unexecuted)
        executed = Path(tmp) / f"{chapter_name}.executed.ipynb"
        try:
            with _local_kernel() as kernel_config:
                papermill.execute_notebook(str(unexecuted), str(executed), parameters=parameters,
                                           kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False,
                                           config=kernel_config, extra_arguments=QUIET_KERNEL)
        except papermill.PapermillExecutionError as exc:
            failed = output.with_name(f"{output.stem}.failed.ipynb")
            if executed.exists():
                os.replace(executed, failed)
            line = str(exc.evalue).strip().splitlines()[0] if str(exc.evalue).strip() else ""
            raise NotebookFailed(f"{chapter_name}: {exc.ename}: {line} (the failed notebook is kept in {failed}; "
                                 "--debug shows the traceback)") from exc
        show_one_parameters_cell(executed)
        drop_progress_lines(executed)
        describe_figures(executed)
        os.replace(executed, output)


@contextmanager
def _local_kernel():
    """The notebook kernel's traitlets config: it talks to papermill over IPC sockets in a
    private temporary folder (mode 0700), not over TCP on localhost, which any local user
    could reach and which made ipykernel warn on every run that it is unencrypted. The folder
    is under the system's temporary root: a socket path must stay under about 100 characters."""
    from traitlets.config import Config

    folder = tempfile.mkdtemp(prefix="advbook-kernel-")
    try:
        yield Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(folder, "kernel")}})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def show_one_parameters_cell(notebook: Path) -> None:
    """One parameters cell, holding the values the run used: papermill's injected values are written
    into the notebook's own parameters cell (each line keeps its comment, a value the defaults do
    not name is added) and the injected cell goes. The page shows the parameters the run used, and
    a reader who downloads the notebook, edits that cell and runs it gets what they edited (an
    injected cell below it would silently put the run's values back); papermill still injects
    after it on a rerun."""
    import ast

    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    tags = [c.get("metadata", {}).get("tags", []) for c in nb.cells]
    injected = [i for i, t in enumerate(tags) if "injected-parameters" in t]
    defaults = [i for i, t in enumerate(tags) if "parameters" in t]
    if not injected or not defaults:
        return
    source = nb.cells[injected[0]].source
    values = {node.targets[0].id: ast.get_source_segment(source, node.value) for node in ast.parse(source).body
              if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)}
    lines = []
    for line in nb.cells[defaults[0]].source.splitlines():
        found = re.match(r"(\s*)([A-Za-z_]\w*)(\s*=\s*)(.*?)(\s*#.*)?$", line)
        if found and found.group(2) in values:
            indent, name, equals, _, comment = found.groups()
            line = f"{indent}{name}{equals}{values.pop(name)}{comment or ''}"
        lines.append(line)
    lines += [f"{name} = {value}" for name, value in values.items()]
    nb.cells[defaults[0]].source = "\n".join(lines)
    del nb.cells[injected[0]]
    nbformat.write(nb, notebook)


IMAGE_TYPES = ("image/png", "image/svg+xml", "image/jpeg")


def describe_figures(notebook: Path) -> None:
    """Every figure of the book gets an alt text in words (the book's HTML would otherwise name it by
    its hash): the section it belongs to and the prose that introduces it, from the notebook's own
    markdown, set where myst-nb reads it (cell metadata `mystnb.image.alt`); a cell's own alt text,
    if it has one, is kept."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    heading, prose = "", ""
    for cell in nb.cells:
        source = "".join(cell.get("source", ""))
        if cell.get("cell_type") == "markdown":
            lines = [line.strip() for line in source.splitlines() if line.strip()]
            titles = [line.lstrip("#").strip() for line in lines if line.startswith("#")]
            text = " ".join(line for line in lines if not line.startswith("#"))
            heading = re.sub(r"[*`$\\{}]", "", titles[-1]) if titles else heading
            prose = re.split(r"(?<=[.:])\s", re.sub(r"[*`$\\{}]", "", text), maxsplit=1)[0] if text else prose
            continue
        images = sum(any(t in o.get("data", {}) for t in IMAGE_TYPES) for o in cell.get("outputs", []))
        meta = cell.setdefault("metadata", {}).setdefault("mystnb", {}).setdefault("image", {})
        if images and "alt" not in meta:
            what = "A figure" if images == 1 else f"One of {images} figures"
            meta["alt"] = f"{what} of the section '{heading}'" + (f": {prose[:240]}" if prose else "")
        if not meta:
            del cell["metadata"]["mystnb"]["image"]
            if not cell["metadata"]["mystnb"]:
                del cell["metadata"]["mystnb"]
    nbformat.write(nb, notebook)


PROGRESS_LINE = re.compile(r"^\[\d+/\d+\] .*$\n?", re.M)


def drop_progress_lines(notebook: Path) -> None:
    """Computing progress (`experiments.say`, "[3/12] primer pgd seed 0: epoch 2 of at most 8")
    is for the terminal, but the kernel captures its stderr into the cell: the book keeps every
    other output, warnings included, and drops those lines."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                output["text"] = PROGRESS_LINE.sub("", output["text"])
                if not output["text"]:
                    continue
            kept.append(output)
        cell["outputs"] = kept
    nbformat.write(nb, notebook)
