"""The Performance page: renders the records written by `advbook bench` (data/bench/)."""
from __future__ import annotations

import json

import pandas as pd

from ..paths import BENCH as BENCH_DIR
from . import Chapter

TARGETS = [
    "PGD-10 AT epoch over 50,000 CIFAR-10-shaped images, PreActResNet-18: at least 5x the reference loop, "
    "at most 8 s (on one H100)",
    "FGSM-RS time-to-robustness: at least 43 % PGD-50-10 accuracy at eps 8/255 within 120 s of wall time",
]


def records(kind: str) -> list[dict]:
    """Stored benchmark records of one kind ("bench" or "time-to-robustness"), newest first."""
    out = []
    for path in sorted(BENCH_DIR.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("kind") == kind:
            out.append(record | {"file": path.name})
    return sorted(out, key=lambda r: r["created"], reverse=True)


def throughput_table(record: dict) -> pd.DataFrame:
    rows = []
    for r in record["rows"]:
        rows.append({"model": r["model"], "method": r["method"],
                     "ours (img/s)": round(r["ours_images_per_s"]),
                     "reference (img/s)": round(r["reference_images_per_s"]) if r["reference_images_per_s"] else None,
                     "speed-up": round(r["speedup"], 2) if r["speedup"] else None,
                     "epoch of 50k (s)": round(r["epoch_seconds_50k"], 1),
                     "GFLOP/img": round(r["gflops_per_image"], 2),
                     "TFLOP/s": round(r["achieved_tflops"], 2),
                     "% of peak": round(100 * r["fraction_of_peak"], 1)})
    return pd.DataFrame(rows).set_index(["model", "method"])


def throughput_figure(record: dict):
    """Bars of images per second, ours beside the reference, per model and method (log scale)."""
    import matplotlib.pyplot as plt

    rows = record["rows"]
    labels = [f"{r['model']}\n{r['method']}" for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows)), 3.6))
    ax.bar([x - 0.2 for x in xs], [r["ours_images_per_s"] for r in rows], 0.4, label="advbook fit")
    if all(r["reference_images_per_s"] for r in rows):
        ax.bar([x + 0.2 for x in xs], [r["reference_images_per_s"] for r in rows], 0.4, label="reference loop")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("training images per second")
    ax.set_title(record["device"] + (" (quick check, small shapes)" if record["quick"] else ""))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def describe(record: dict) -> str:
    shapes = sorted({r.get("input", f"3x{record['image_size']}x{record['image_size']}") for r in record["rows"]})
    return (f"`{record['file']}`: {record['device']}, torch {record['torch']}, commit {record['commit']}, "
            f"{record['created']}; {record['images']} images ({', '.join(shapes)}) a timed epoch, "
            f"batch {record['batch_size']}, fast path {record['fast_path']}; matmul peak "
            f"{record['matmul_peak_tflops']:.1f} TFLOP/s ({record['matmul_peak_dtype']})"
            + (" — **quick CPU check with small shapes, not a speed measurement**" if record["quick"] else "")
            + (" — the cpu profiles' models, one thread, on a machine shared with other computations"
               if record["device"].startswith("CPU") and not record["quick"] else ""))


def missing(bench: list[dict], ttr: list[dict]) -> list[str]:
    """Which of the page's numbers no real GPU run has produced yet."""
    gaps = []
    if not any(r["device"] and not r["device"].startswith("CPU") and not r["quick"] for r in bench):
        gaps.append("the GPU throughput benchmark (`advbook bench` on a GPU): no record yet")
    if not any(not r["quick"] for r in ttr):
        gaps.append("the FGSM-RS time-to-robustness run (`advbook bench --time-to-robustness` on a GPU): "
                    "no record yet")
    return gaps


CHAPTER = Chapter("performance", "Performance of the training loop", [], {"smoke": {}, "fast": {}, "paper": {}},
                  lambda settings: [], None)
