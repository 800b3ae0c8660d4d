"""The Performance page: renders the records written by `advbook bench` (data/bench/)."""
from __future__ import annotations

import pandas as pd

from .. import profiles
from ..paths import BENCH as BENCH_DIR
from ..store import read
from . import Chapter

# the GPU targets' thresholds, read against the GPU records by gpu_bench_lines and gpu_ttr_lines
GPU_TARGETS = {
    "pgd10_epoch_seconds": 4.0,     # PGD-10 AT epoch of PreActResNet-18 over 50,000 images: at most 4 s
    "pgd10_speedup": 3.0,           # ... and at least 3x the reference loop
    "ttr_robust": 0.46,             # FGSM-RS time to robustness: at least 46 % PGD-50-10 accuracy
    "ttr_clean": 0.82,              # ... and 82 % clean accuracy
    "ttr_seconds": 90.0,            # ... within 90 s of wall time
    "pgd50_10_seconds": 30.0,       # PGD-50 with 10 restarts on the 10,000 test images: at most 30 s
}
TARGETS = [
    "On one GPU, a PGD-10 adversarial-training epoch of PreActResNet-18 over 50,000 CIFAR-10-shaped images: "
    f"at most {GPU_TARGETS['pgd10_epoch_seconds']:g} s, and at least {GPU_TARGETS['pgd10_speedup']:g}x the "
    "reference loop's images per second",
    f"On one GPU, FGSM-RS time to robustness: at least {100 * GPU_TARGETS['ttr_robust']:g} % PGD-50-10 accuracy "
    f"and {100 * GPU_TARGETS['ttr_clean']:g} % clean accuracy at eps 8/255, within {GPU_TARGETS['ttr_seconds']:g} s "
    "of wall time",
    f"On one GPU, PGD-50 with 10 restarts on the 10,000 test images: at most {GPU_TARGETS['pgd50_10_seconds']:g} s",
    "On 2 CPU cores, the MNIST StdCNN: PGD-10 adversarial training at least 2x the reference loop's images per "
    "second, standard training and FGSM-RS at least 1.5x",
]
CPU_TARGETS = {"pgd10": 2.0, "standard": 1.5, "fgsm-rs": 1.5}  # StdCNN speed-up over the reference, on a CPU


def records(kind: str) -> list[dict]:
    """Stored benchmark records of one kind ("bench" or "time-to-robustness"), newest first,
    each checked against its schema (store.CorruptRecord names the file and the field)."""
    out = []
    for path in sorted(BENCH_DIR.glob("*.json")):
        record = read(path, "bench")
        if record.get("kind") == kind:
            out.append(record | {"file": path.name})
    return sorted(out, key=lambda r: r["created"], reverse=True)


def on_gpu(record: dict) -> bool:
    return not record["device"].startswith("CPU") and not record["quick"]


def _reading(value: str, target: str, met: bool) -> str:
    return f"{value} (target {target}): " + ("**met**" if met else "**missed**")


def gpu_bench_lines(record: dict) -> list[str]:
    """The PGD-10 epoch target read against one GPU bench record."""
    lines = []
    for r in record["rows"]:
        if r["model"] != "preact-resnet18" or r["method"] != "pgd10":
            continue
        seconds, target = r["epoch_seconds_50k"], GPU_TARGETS["pgd10_epoch_seconds"]
        lines.append("PGD-10 epoch of PreActResNet-18 over 50,000 images, "
                     + _reading(f"{seconds:.1f} s", f"at most {target:g} s", seconds <= target))
        if r.get("speedup"):
            target = GPU_TARGETS["pgd10_speedup"]
            lines.append("the same against the reference loop in the same run, "
                         + _reading(f"{r['speedup']:.2f}x", f"at least {target:g}x", r["speedup"] >= target))
    return lines


def gpu_ttr_lines(record: dict) -> list[str]:
    """The time-to-robustness and PGD-50-10 targets read against one GPU record. The record
    times training and the whole run: evaluation is the difference, the clean pass included
    (one forward pass an image, against PGD-50-10's 500 forward and backward passes)."""
    t = GPU_TARGETS
    batch = record["train"].get("batch_size")
    lines = [f"FGSM-RS, {record['train'].get('epochs')} epochs at batch {batch}, then "
             f"{record['eval']['attack']} on {record['eval']['n']:,} test images: "
             + _reading(f"clean {100 * record['clean_acc']:.2f} %", f"at least {100 * t['ttr_clean']:g} %",
                        record["clean_acc"] >= t["ttr_clean"]) + "; "
             + _reading(f"robust {100 * record['robust_acc']:.2f} %", f"at least {100 * t['ttr_robust']:g} %",
                        record["robust_acc"] >= t["ttr_robust"]) + "; "
             + _reading(f"{record['wall_seconds']:.0f} s wall", f"at most {t['ttr_seconds']:g} s",
                        record["wall_seconds"] <= t["ttr_seconds"])]
    if record["eval"]["attack"] == "PGD-50, 10 restarts" and record["eval"]["n"] == 10_000:
        seconds = record["wall_seconds"] - record["train_seconds"]
        lines.append("PGD-50-10 on the 10,000 test images, "
                     + _reading(f"{seconds:.0f} s of evaluation, the clean pass included",
                                f"at most {t['pgd50_10_seconds']:g} s", seconds <= t["pgd50_10_seconds"]))
    return lines


def gpu_target_lines(bench: list[dict], ttr: list[dict]) -> list[str]:
    """Every GPU target read against every GPU record, each line naming the record, its
    device and commit."""
    lines = []
    for record in [r for r in bench + ttr if on_gpu(r)]:
        read_against = gpu_bench_lines(record) if record["kind"] == "bench" else gpu_ttr_lines(record)
        lines += [f"`{record['file']}` ({record['device']}, commit {record['commit']}): {line}"
                  for line in read_against]
    return lines


def throughput_table(record: dict) -> pd.DataFrame:
    rows = []
    for r in record["rows"]:
        per_trick = {f"ours, {name} only (img/s)": round(v) for name, v in r.get("ours_by_trick_images_per_s", {}).items()}
        per_core = {} if not r.get("ours_per_core_images_per_s") else {
            f"ours, {r['workers']} at once (img/s)": round(r["ours_per_core_images_per_s"]),
            f"reference, {r['workers']} at once (img/s)": round(r["reference_per_core_images_per_s"] or 0) or None,
            "machine speed-up": round(r["machine_speedup"], 2) if r.get("machine_speedup") else None}
        rows.append({"model": r["model"], "method": r["method"], **per_trick,
                     "ours (img/s)": round(r["ours_images_per_s"]),
                     "reference (img/s)": round(r["reference_images_per_s"]) if r["reference_images_per_s"] else None,
                     "speed-up": round(r["speedup"], 2) if r["speedup"] else None, **per_core,
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
    ax.set_xticks(list(xs), labels, fontsize=9)
    ax.set_yscale("log")
    ax.set_ylabel("training images per second")
    ax.set_title(record["device"] + (" (quick check, small shapes)" if record["quick"] else ""))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def speedup_figure(record: dict):
    """A CPU record's speed-ups over the reference loop, one trick added at a time: our loop
    alone (fp32), with channels_last, the fast path (bf16 too), and the fast path with one
    training per core (the machine's rate). Bars above the line at 1 beat the reference."""
    import matplotlib.pyplot as plt

    rows = [r for r in record["rows"] if r.get("reference_images_per_s")]
    names = {"fp32": "our loop alone (fp32)", "channels_last": "+ channels_last"}
    series = {names.get(name, name): [r["ours_by_trick_images_per_s"].get(name) for r in rows]
              for name in rows[0].get("ours_by_trick_images_per_s", {})}
    series[f"fast path ({record['fast_path'].get('precision', 'fp32')}, channels_last)"] = [r["ours_images_per_s"] for r in rows]
    if rows[0].get("ours_per_core_images_per_s"):
        series[f"fast path, {rows[0]['workers']} at once"] = [r["ours_per_core_images_per_s"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows)), 3.6))
    width = 0.8 / len(series)
    for i, (label, speeds) in enumerate(series.items()):
        ax.bar([x + (i - (len(series) - 1) / 2) * width for x in range(len(rows))],
               [v / r["reference_images_per_s"] if v else 0 for v, r in zip(speeds, rows)], width, label=label)
    ax.axhline(1, color="black", lw=1)
    ax.set_xticks(range(len(rows)), [f"{r['model']}\n{r['method']}" for r in rows], fontsize=9)
    ax.set_ylabel("images per second / reference loop's")
    ax.set_title(f"{record['device']}: each trick's speed-up")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def describe(record: dict) -> str:
    shapes = sorted({r.get("input", f"3x{record['image_size']}x{record['image_size']}") for r in record["rows"]})
    return (f"`{record['file']}`: {record['device']}, torch {record['torch']}, commit {record['commit']}, "
            f"{record['created']}; {record['images']} images ({', '.join(shapes)}) a timed epoch, "
            f"batch {record['batch_size']}, fast path {record['fast_path']}; matmul peak "
            f"{record['matmul_peak_tflops']:.1f} TFLOP/s ({record['matmul_peak_dtype']})"
            + (" — **quick CPU check with small shapes, not a speed measurement**" if record["quick"] else "")
            + (f" — the cpu profiles' models, {record['threads']} thread{'s' if record['threads'] > 1 else ''}"
               + (f"; also {record['workers']} trainings at once, one process and one thread each"
                  if record.get("workers") else "")
               + (f"; load average {record['load_average_at_start']:.2f} at the start"
                  if record.get("load_average_at_start") is not None else "")
               if record["device"].startswith("CPU") and not record["quick"] else ""))


def fp32_trick_lines(record: dict) -> list[str]:
    """What each fp32 trick a CPU record timed buys over our loop in plain fp32 (the way the cpu
    profiles train), per model, as the range over the training methods timed with it."""
    gains: dict[str, dict[str, dict[str, float]]] = {}
    for r in record["rows"]:
        tricks = r.get("ours_by_trick_images_per_s") or {}
        for name, speed in tricks.items():
            if name != "fp32" and speed and tricks.get("fp32"):
                gains.setdefault(name, {}).setdefault(r["model"], {})[r["method"]] = speed / tricks["fp32"]
    return [f"{name} alone over plain fp32: "
            + "; ".join(f"{model} {min(g.values()):.2f}x to {max(g.values()):.2f}x ({', '.join(g)})"
                        for model, g in by_model.items())
            for name, by_model in gains.items()]


def cpu_target_lines(record: dict) -> list[str]:
    """The CPU targets, read against one CPU record: met or not, one training and the machine's rate,
    for the record's fast path and, where the record timed it, the way the cpu profiles train today
    (in `profiles`' cpu precision, fp32: the fast path's bf16 is not what they run)."""
    lines = []
    today = profiles.get("cpu").precision
    for r in record["rows"]:
        if r["model"] != "std-cnn" or r["method"] not in CPU_TARGETS or not r.get("speedup"):
            continue
        target = CPU_TARGETS[r["method"]]
        machine = r.get("machine_speedup")
        lines.append(f"StdCNN {r['method']}: {r['speedup']:.2f}x in one training"
                     + (f", {machine:.2f}x as the machine's rate with {r['workers']} at once" if machine else "")
                     + f" (target {target:g}x): " + ("**met**" if r["speedup"] >= target else "**not met** in one training"
                                                     + (", met as the machine's rate" if machine and machine >= target else "")))
        plain = (r.get("ours_by_trick_images_per_s") or {}).get(today)
        if plain and record["fast_path"].get("precision") != today:
            speedup = plain / r["reference_images_per_s"]
            lines.append(f"StdCNN {r['method']} as the cpu profiles train today ({today}, no trick): {speedup:.2f}x "
                         f"in one training (target {target:g}x): " + ("**met**" if speedup >= target else "**missed**"))
    return lines


def missing(bench: list[dict], ttr: list[dict]) -> list[str]:
    """Which of the page's numbers no real GPU run has produced yet."""
    gaps = []
    if not any(on_gpu(r) for r in bench):
        gaps.append("the GPU throughput benchmark (`advbook bench` on a GPU): no record yet")
    if not any(on_gpu(r) for r in ttr):
        gaps.append("the FGSM-RS time-to-robustness run (`advbook bench --time-to-robustness` on a GPU): "
                    "no record yet")
    return gaps


CHAPTER = Chapter("performance", "Performance of the training loop", [], {"smoke": {}, "fast": {}, "paper": {}},
                  lambda settings: [], None)
