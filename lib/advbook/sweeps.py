"""Parameter sweeps of a chapter (`advbook sweep`): a grid of settings, one executed notebook a
point, and the chapter's summary rows of every point in one CSV and one figure."""
from __future__ import annotations

import csv
import io
import itertools
import json
import time
from pathlib import Path

from .atomic import write_atomic

from .errors import ParameterError
from .paths import PROJECT_ROOT


def parse_grid(chapter, specs: list[str]) -> dict[str, list]:
    """--grid NAME=V1,V2 (a list parameter's values separated by ';') into {NAME: [values]},
    each value validated by the chapter's parameter."""
    grid = {}
    for spec in specs:
        if "=" not in spec:
            raise ParameterError(f"--grid takes NAME=V1,V2,..., got {spec!r}")
        name, values = spec.split("=", 1)
        parameter = chapter.parameter(name)
        if parameter.type is list:  # a list parameter's values are separated by ';' in a grid
            grid[name] = [parameter.parse(v) for v in values.split(";")]
        else:
            grid[name] = [parameter.parse(v) for v in values.split(",")]
    return grid


def run(chapter, profile: str, overrides: dict, grid: dict[str, list], *, output_dir: Path | None = None,
        engine: str = "serial", address: str | None = None) -> tuple[list, Path | None]:
    """Every point of `grid` (its product) under `profile` and `overrides`: one executed notebook
    a point and results.csv and results.png of the chapter's summary rows, in the sweep's folder.
    Points done already are kept; with the ray engine every point's computations run at once and
    the notebooks then only read records. Returns the failed tasks and the CSV (None if no point
    finished)."""
    from .errors import NotComputed
    from .experiments import get_or_compute
    from .notebooks import execute_notebook
    from .store import key

    def load(config):
        try:
            return get_or_compute(config, compute=False)
        except NotComputed:
            return None

    points = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    for point in points:  # validate every point before the first one runs
        chapter.settings(profile, **overrides, **point)
    label = "_".join(f"{k}-{'-'.join(map(str, v))}" for k, v in grid.items()).replace("/", "_")
    if overrides:  # the same grid under other overrides is another sweep, in another folder
        label += f"_overrides-{key(overrides)[:8]}"
    folder = output_dir or PROJECT_ROOT / "data" / "sweeps" / chapter.name / f"{profile}_{label}"
    described = {"profile": profile, "overrides": overrides, "grid": grid}
    if (folder / "grid.json").exists() and json.loads((folder / "grid.json").read_text()) != \
            json.loads(json.dumps(described)):
        raise ParameterError(f"{folder} holds a sweep with other settings ({folder / 'grid.json'}); "
                             "choose another --output-dir")
    folder.mkdir(parents=True, exist_ok=True)
    # the grid is recorded before the first point runs: an interrupted sweep resumes its own points, and
    # another sweep into this folder is refused above instead of taking them for its own
    write_atomic(folder / "grid.json", "w", lambda f: f.write(json.dumps(described, indent=1)))
    failures, failed = [], set()
    if engine == "ray":  # every point's computations at once; the notebooks then only read records
        from .engines import compute

        configs, labels = [], []
        for i, point in enumerate(points):
            if not (folder / f"point-{i:03d}.ipynb").exists():
                point_configs = chapter.experiments(chapter.settings(profile, **overrides, **point))
                configs += point_configs
                labels += [f"point {i} {point}"] * len(point_configs)
        failures = compute(configs, engine="ray", address=address, labels=labels,
                           desc=f"{chapter.name} sweep ({profile})")
        failed = {key(c) for f in failures for c in f.configs}
    rows, ran, began = [], 0, time.monotonic()
    for i, point in enumerate(points):
        notebook = folder / f"point-{i:03d}.ipynb"
        if notebook.exists():
            print(f"point {i + 1} of {len(points)} {point}: done already")
        elif failed and any(key(c) in failed for c in
                            chapter.experiments(chapter.settings(profile, **overrides, **point))):
            print(f"point {i} {point}: skipped, its computations failed (below); a rerun computes them", flush=True)
            continue
        else:
            left = len(points) - i
            eta = f", about {(time.monotonic() - began) / ran * left / 60:.1f} min left at this sweep's pace" if ran else ""
            print(f"point {i + 1} of {len(points)} {point}: running{eta}", flush=True)
            execute_notebook(chapter.name, {"profile": profile, "overrides": {**overrides, **point}}, notebook)
            ran += 1
        settings = chapter.settings(profile, **overrides, **point)
        records = [load(c) for c in chapter.experiments(settings)]
        for row in chapter.summary(settings, [r for r in records if r is not None]):
            rows.append({**{k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in point.items()},
                         **row})
    if failures and not rows:  # every point failed: nothing to collect
        return failures, None
    csv_path = folder / "results.csv"
    write_atomic(csv_path, "w", lambda f: f.write(table_csv(rows, list(grid))))
    plot(chapter, rows, list(grid)[0], folder / "results.png", f"{chapter.name} sweep ({profile} profile)")
    print(f"wrote {csv_path} and {folder / 'results.png'}")
    return failures, csv_path


# what a summary row carries for the claims' guards, not a result
GUARD_FIELDS = ("images", "model_clean", "chance", "learned_floor", "timing", "model_key")


def table_csv(rows: list[dict], grid_names: list[str]) -> str:
    """The sweep's rows as CSV, one per point and seed: the grid's values first, then every plain
    result, accuracies (fractions) in percent with two decimals and named so, times to 0.1 s;
    per-epoch curves and the guards' fields are left to the notebooks."""
    def cell(name, value):
        if isinstance(value, float) and "second" in name:
            return f"{name} (s)", round(value, 1)
        if isinstance(value, float) and 0.0 <= value <= 1.0:
            return f"{name} (%)", round(100 * value, 2)
        return name, value

    table = [dict((k, v) if k in grid_names else cell(k, v) for k, v in r.items()
                  if k not in GUARD_FIELDS and not isinstance(v, (list, dict))) for r in rows]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(dict.fromkeys([*grid_names, *(k for r in table for k in r)])))
    writer.writeheader()
    writer.writerows(table)
    return out.getvalue()


def plot(chapter, rows: list[dict], x_name: str, path: Path, title: str) -> None:
    """Each of the chapter's headline metrics against the first grid parameter: one line per
    variant (the chapter's `group_by`) and metric, one panel per dataset when there are several."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .reporting import curve_figure

    metrics = [m for m in chapter.plot_metrics if any(m in r for r in rows)]
    panels = list(dict.fromkeys(r.get("dataset", "") for r in rows)) or [""]
    order = list(dict.fromkeys(r[x_name] for r in rows))
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in order)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4), squeeze=False)
    groups = list(dict.fromkeys(r.get(chapter.group_by, "") for r in rows))
    colours = {g: plt.cm.tab10(i % 10) for i, g in enumerate(groups)}   # one colour a variant,
    styles = dict(zip(metrics, ("-", "--", ":", "-.")))                   # one line style a metric
    for ax, panel in zip(axes[0], panels):
        curves, looks = {}, {}
        for row in rows:
            if row.get("dataset", "") != panel:
                continue
            for metric in metrics:
                if row.get(metric) is None:
                    continue
                x = row[x_name] if numeric else order.index(row[x_name])
                group = row.get(chapter.group_by, "")
                label = f"{group}: {metric}" if group else metric
                curves.setdefault(label, {}).setdefault(x, []).append(row[metric])
                looks[label] = {"color": colours[group], "linestyle": styles.get(metric, "-")}
        curve_figure(curves, x_name, "accuracy (%), mean over seeds", panel if len(panels) > 1 else "", ax=ax,
                     xticklabels=None if numeric else [str(v) for v in order], looks=looks)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
