"""Planning computations for a time budget: what each missing model costs, and in which order
the models of several chapters are computed.

GPU time comes in windows (one GPU for a few minutes, nothing kept between windows), so
`advbook compute CHAPTER... --budget SECONDS` computes the most valuable models first and never
starts one it does not expect to finish in time:

    rates = device_rates(torch.device("cuda"))           # from the latest bench record here
    queue = plan([(chapter, settings), ...], rates)      # missing work, ordered, each with its estimate
    print(plan_table(queue, rates, budget=480))          # the plan, window by window

The order: what decides a claim before the extras (each chapter declares it: `Chapter.priority`),
then the chapters in the order given, then seeds grouped (seed 0 of every variant, then seed 1,
...), so that the models a claim compares arrive together and a budget that runs out leaves
paired seeds. A model's extra evaluations (AutoAttack, sweeps) come later in the queue than its
claim-deciding ones, as a second item of the same model; a transfer source comes before the
first item that attacks with it.

The estimate of an item, in seconds, counts its training passes (the defense's attack steps and
the weight update, every epoch, with the per-epoch validation and epoch perturbations) and its
evaluations' gradient and forward passes. A pass over a batch costs the larger (GPU: the host
launches kernels while the device computes) or the sum (CPU) of
- its arithmetic, images x FLOPs per image (counted with torch's FlopCounterMode on the model
  itself) / the device's rate, from the latest bench record of this device (`advbook bench`:
  the lowest achieved training TFLOP/s of its rows; evaluation, which runs in fp32, from a
  time-to-robustness record's PGD evaluation, else half the training rate), and
- its launches, operators per pass (counted on the model) x the seconds per operator
  (`OP_SECONDS`, measured),
plus a fixed cost per model (`MODEL_SECONDS`: building it, the first epoch's autotuning, saving).
Attacks run on every image as if none succeeded early, so robust models are not underestimated.
As items finish, `Tracker` scales the estimates by the observed/estimated ratio.
"""
from __future__ import annotations

import functools
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from . import store
from .attacks import COSTS as ATTACK_COSTS
from .chapters import CLAIMS, EXTRA
from .defenses import COSTS as DEFENSE_COSTS
from .experiments import check_config, describe, stored
from .paths import BENCH

PRIORITY_NAMES = {CLAIMS: "claims", EXTRA: "extra"}

# Seconds per operator of a pass on a GPU, with the fast path (bf16 autocast, channels_last): one
# NVIDIA H200 trained PreActResNet-18 with FGSM-RS at batch 128 in 5.7 s an epoch (390 steps of
# two passes: 7.3 ms a pass, while the device computed for about 2 ms of it) and at batch 512 in
# 1.65 s (97 steps: 8.5 ms a pass), so at batch 128 the host's launches set the pace: 7.3 ms for
# the 272 operators `count_model` finds in its training pass (records of 2026-11-28 at commit
# 25c85f4, time-to-robustness-batch128-cuda.json and time-to-robustness-cuda.json).
# On a CPU, 100 us: torchattacks' AutoAttack on a small CNN took 77 to 96 us an operator on this
# project's 2-core machine, one thread, shared with other work (load average 5.7).
OP_SECONDS = {"cuda": 7.3e-3 / 272, "cpu": 100e-6}
# a model's fixed cost: building it, data to the device, saving weights and records; on a GPU also
# the first epoch's cuDNN autotuning, per operator of a training pass (PreActResNet-18's first
# epoch on the H200 took 2.2 s more than the next ones: 8 ms for each of its 272 operators)
MODEL_SECONDS = {"cuda": 1.0, "cpu": 1.0}
AUTOTUNE_SECONDS = {"cuda": 2.2 / 272, "cpu": 0.0}
# when no bench record of this device exists: below what the H200 measured (130 TFLOP/s
# training, 100 evaluating) for a GPU; for a CPU, 2 cores measured 0.05 (a narrow LeNet, PGD-10)
DEFAULT_FLOPS = {"cuda": (30e12, 15e12), "cpu": (0.02e12, 0.01e12)}
EVAL_BATCH = 500        # evaluate.correct_per_draw's batch
PERTURB_BATCH = 1000    # defenses.epoch_perturbation.input_gradients' batch


@dataclass(frozen=True)
class Rates:
    """How fast the device computes, and where that comes from."""
    device: str              # the device the rates describe, e.g. "NVIDIA H200"
    kind: str                # "cuda" or "cpu"
    source: str              # the bench record(s), or "defaults (no bench record of this device)"
    train_flops: float       # FLOP/s of bf16 training (the fast path)
    eval_flops: float        # FLOP/s in fp32 (evaluation, and fp32 training)
    op_seconds: float
    model_seconds: float
    autotune_seconds: float  # per operator of the model's training pass, once per trained model

    @property
    def overlap(self) -> bool:
        """On a GPU the host launches while the device computes: a pass costs the larger of the two."""
        return self.kind == "cuda"


# ----------------------------------------------------------------------------------------
# Rates from bench records
# ----------------------------------------------------------------------------------------

def _records(path: Path) -> list[dict]:
    files = [path] if path.is_file() else sorted(path.glob("*.json")) if path.is_dir() else []
    out = []
    for f in files:
        try:
            record = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and record.get("kind") in ("bench", "time-to-robustness") \
                and not record.get("quick") and record.get("device") and record.get("created"):
            out.append(record | {"file": str(f)})
    return sorted(out, key=lambda r: r["created"], reverse=True)


def _cpu_model(device_name: str) -> str | None:
    """'CPU (x86_64, 2 threads)' -> 'x86_64': a CPU record applies to the same processor at
    another thread count (scaled by the threads)."""
    m = re.match(r"CPU \((.*), (\d+) threads\)$", device_name)
    return m.group(1) if m else None


def _threads(device_name: str) -> int:
    m = re.match(r"CPU \(.*, (\d+) threads\)$", device_name)
    return int(m.group(1)) if m else 1


def _matches(record: dict, device_name: str) -> bool:
    if record["device"] == device_name:
        return True
    cpu = _cpu_model(device_name)
    return cpu is not None and _cpu_model(record["device"]) == cpu


def here(device: torch.device) -> str:
    """This device's name as records give it."""
    return store.environment(device)["device"]


def device_rates(device: torch.device, bench: Path | None = None, *, for_gpu: bool = False,
                 threads: int | None = None) -> Rates:
    """The rates of `device` from the newest bench record of it in data/bench/, or in `bench` (a
    folder or one record: then the newest record there, whatever its device). `for_gpu` on a
    machine with no GPU (a GPU profile's dry run): the newest GPU record instead. Conservative
    defaults when there is none. `threads`: a CPU's rates at that many threads rather than this
    process's (a plan that must read the same on every machine, or a record's own)."""
    if for_gpu and device.type == "cpu":
        kind, name = "cuda", None
    else:
        kind, name = device.type, here(device)
    records = _records(bench if bench is not None else BENCH)
    if bench is None:
        records = [r for r in records if (_matches(r, name) if name else not r["device"].startswith("CPU"))]
    benches = [r for r in records if r["kind"] == "bench" and r.get("rows")]
    if not benches:
        if bench is not None:
            from .errors import ParameterError  # noqa: PLC0415
            raise ParameterError(f"--bench {bench}: no bench record (advbook bench, not --quick) there")
        train, evaluation = DEFAULT_FLOPS[kind]
        name = name or "a GPU"
        return Rates(name, kind, f"defaults (no bench record of {name} in {BENCH})", train, evaluation,
                     OP_SECONDS[kind], MODEL_SECONDS[kind], AUTOTUNE_SECONDS[kind])
    record = benches[0]
    kind = "cpu" if record["device"].startswith("CPU") else "cuda"
    scale = 1.0
    if kind == "cpu":  # the same processor with fewer threads computes proportionally less
        scale = min(1.0, (threads or _threads(name or record["device"])) / max(1, record.get("threads") or 1))
    train = scale * 1e12 * min(row["achieved_tflops"] for row in record["rows"])
    evaluation, source = train / 2, Path(record["file"]).name
    ttr = [r for r in records if r["kind"] == "time-to-robustness" and r["device"] == record["device"]]
    measured = ttr and _eval_flops(ttr[0])
    if measured:
        evaluation = scale * measured
        source += f" and {Path(ttr[0]['file']).name}"
    return Rates(record["device"], kind, f"{source} ({record['device']}, {record['created'][:10]}, commit "
                 f"{record.get('commit', '?')})", train, evaluation, OP_SECONDS[kind], MODEL_SECONDS[kind],
                 AUTOTUNE_SECONDS[kind])


def _eval_flops(record: dict) -> float | None:
    """fp32 FLOP/s of a time-to-robustness record's PGD evaluation: every image's steps x restarts
    gradient passes (2 forwards' worth each) over the seconds after training."""
    m = re.match(r"PGD-(\d+), (\d+) restarts", record.get("eval", {}).get("attack", ""))
    seconds = record.get("wall_seconds", 0) - record.get("train_seconds", 0)
    if not m or seconds <= 0 or record.get("model") is None:
        return None
    image = record.get("image_shape") or (3, 32, 32)
    forward = count_model(json.dumps({"name": record["model"]}), image[0], image[-1], 10).forward
    return record["eval"]["n"] * int(m.group(1)) * int(m.group(2)) * 2 * forward / seconds


# ----------------------------------------------------------------------------------------
# What a model costs
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelCost:
    forward: float        # FLOPs of a forward pass, per image
    training: float       # FLOPs of a forward and backward pass with weight gradients, per image
    forward_ops: int      # operators of a forward pass (no gradient)
    training_ops: int     # operators of a forward and backward pass


class OpCounter(TorchDispatchMode):
    """Counts the operators a computation dispatches (each is a kernel launch on a GPU)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


@functools.lru_cache(maxsize=None)
def count_model(model_json: str, channels: int, size: int, classes: int) -> ModelCost:
    """FLOPs and operators of one model (its config's "model" entry, as JSON), counted in one
    training step on two images on the CPU, with placeholder normalization."""
    from torch.utils.flop_counter import FlopCounterMode

    from . import models

    spec = json.loads(model_json)
    name = spec.pop("name")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = models.build(name, classes, channels, mean=(0.5,) * channels, std=(0.25,) * channels,
                             image_size=size, **spec)
        x, y = torch.rand(2, channels, size, size), torch.tensor([0, 1 % classes])
        with FlopCounterMode(display=False) as flops, OpCounter() as ops:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            forward, forward_ops = flops.get_total_flops() / 2, ops.count  # a training forward: a few more
            loss.backward()                                                # operators than an evaluation's
    return ModelCost(forward, flops.get_total_flops() / 2, forward_ops, ops.count)


@dataclass(frozen=True)
class DataShape:
    n_train: int
    n_val: int
    n_test: int
    channels: int
    size: int
    classes: int


def data_shape(config: dict) -> DataShape:
    """The sizes training and evaluation see (validation held out, subsets taken); loads the
    dataset (once a process), so raises data.DataUnavailable where it is not here."""
    key = json.dumps({k: config.get(k) for k in ("dataset", "validation", "subset", "data_root")}, sort_keys=True)
    return _data_shape(key)


@functools.lru_cache(maxsize=None)
def _data_shape(key: str) -> DataShape:
    from .experiments import prepare_data

    d = prepare_data(json.loads(key))
    return DataShape(len(d.y_train), 0 if d.y_val is None else len(d.y_val), len(d.y_test), d.in_channels,
                     d.image_size, d.num_classes)


def pass_seconds(rates: Rates, images: float, flops: float, ops: float, fp32: bool) -> float:
    """One pass over `images` images (one batch): arithmetic and launches, overlapped on a GPU."""
    arithmetic = images * flops / (rates.eval_flops if fp32 else rates.train_flops)
    launches = ops * rates.op_seconds
    return max(arithmetic, launches) if rates.overlap else arithmetic + launches


def _batches(n: int, batch: int) -> list[int]:
    """Batch sizes of one pass over n images."""
    full, rest = divmod(n, batch)
    return [batch] * full + ([rest] if rest else [])


def attack_passes(spec: dict) -> tuple[float, float, float]:
    """(gradient passes per image, forward passes per image, the attack's own operators per
    batch) of an evaluation spec: the attack's declared cost (`attacks.COSTS`) and the scoring of
    every noise draw (clean and attacked)."""
    draws = spec.get("draws", 1)
    if spec["attack"] == "clean":
        return 0.0, float(draws), 0.0
    cost = ATTACK_COSTS[spec["attack"]](spec.get("params", {}))
    forwards = draws * (2 if spec.get("require_clean", True) else 1)
    return cost.gradients, forwards + cost.forwards, cost.operators


def evaluation_seconds(spec: dict, n_test: int, cost: ModelCost, rates: Rates) -> float:
    """One spec on its `n` (default: every) test image(s), fp32."""
    gradients, forwards, own_ops = attack_passes(spec)
    n = min(spec.get("n") or n_test, n_test)
    return sum(gradients * pass_seconds(rates, b, 2 * cost.forward, cost.training_ops, fp32=True)
               + forwards * pass_seconds(rates, b, cost.forward, cost.forward_ops, fp32=True)
               + own_ops * rates.op_seconds
               for b in _batches(n, EVAL_BATCH))


def defense_passes(train: dict) -> tuple[float, float]:
    """(attack passes, training passes) per image and step of a training configuration, as its
    defense declares them (`defenses.COSTS`)."""
    cost = DEFENSE_COSTS[train.get("defense", "standard")](train.get("defense_params") or {})
    return cost.attack, cost.training


def training_seconds(config: dict, shape: DataShape, cost: ModelCost, rates: Rates) -> float:
    """Every epoch of training: the defense's passes over the training set (`replay` times), the
    epoch perturbation (Kamath et al.) and the per-epoch validation spec."""
    train = config["train"]
    batch, epochs, replay = train.get("batch_size", 128), train.get("epochs", 10), train.get("replay", 1)
    fp32 = train.get("precision", "fp32") != "bf16"
    attacks, updates = defense_passes(train)
    n = shape.n_train
    batches = [batch] * (n // batch) if train.get("drop_last") and n >= batch else _batches(n, batch)
    # an attack's pass: forward and backward to the input, about two forwards' FLOPs
    epoch = replay * sum(attacks * pass_seconds(rates, b, 2 * cost.forward, cost.training_ops, fp32)
                         + updates * pass_seconds(rates, b, cost.training, cost.training_ops, fp32)
                         for b in batches)
    perturbation = train.get("epoch_perturbation")
    if perturbation:  # one input-gradient pass over the training set (FGSM reuses it), or PGD on every image
        passes = perturbation.get("steps", 10) if perturbation.get("attack") == "pgd" else 1
        epoch += passes * sum(pass_seconds(rates, b, 2 * cost.forward, cost.training_ops, fp32)
                              for b in _batches(n, PERTURB_BATCH))
    if train.get("validation_spec") and shape.n_val:
        epoch += evaluation_seconds(train["validation_spec"], shape.n_val, cost, rates)
    return epochs * epoch


# ----------------------------------------------------------------------------------------
# The queue
# ----------------------------------------------------------------------------------------

@dataclass
class Item:
    """One unit of work: a model's training (if missing) and its missing evaluations of one priority."""
    chapter: str
    chapter_index: int
    mkey: str
    priority: int
    seed: int
    position: int
    configs: list[dict]            # each with only this item's missing specs
    trains: bool
    label: str
    arch: str = ""
    seconds: float = 0.0
    sources: set = field(default_factory=set)   # transfer sources (model keys) its evaluations need
    unavailable: str | None = None  # why it cannot be computed here (its dataset is missing)

    @property
    def specs(self) -> int:
        return sum(len(c["evaluate"]) for c in self.configs)

    def order(self) -> tuple:
        return self.priority, self.chapter_index, self.seed, self.position


def missing_models(configs: list[dict]) -> tuple[int, int, int]:
    """(models, models not trained, models trained with evaluations missing) of `configs`."""
    from .errors import NotComputed
    from .experiments import get_or_compute

    untrained, short = set(), set()
    for config in configs:
        try:
            get_or_compute(config, compute=False)
        except NotComputed:
            mkey = store.model_key(config)
            (short if store.load_model(mkey) is not None else untrained).add(mkey)
    return len({store.model_key(c) for c in configs}), len(untrained), len(short - untrained)


def config_seconds(config: dict, rates: Rates, *, trains: bool = True) -> float:
    """One experiment config on `rates`: its model trained (if `trains`) and every spec it lists."""
    shape = data_shape(config)
    cost = count_model(json.dumps(config["model"], sort_keys=True), shape.channels, shape.size, shape.classes)
    seconds = 0.0
    if trains:
        seconds += rates.model_seconds + rates.autotune_seconds * cost.training_ops
        seconds += training_seconds(config, shape, cost, rates)
    n_test = min(shape.n_test, (config.get("subset") or {}).get("test") or shape.n_test)
    return seconds + sum(evaluation_seconds(spec, n_test, cost, rates) for spec in config["evaluate"])


def _item_seconds(item: Item, rates: Rates) -> float:
    return sum(config_seconds(c, rates, trains=item.trains and i == 0) for i, c in enumerate(item.configs))


def plan(chapter_settings: list[tuple], rates: Rates, *, recompute_stale: bool = False,
         retrain=None) -> tuple[list[Item], int]:
    """The missing work of the chapters' experiments, ordered, each item with its estimate; and
    how many models are stored complete already. `chapter_settings`: [(Chapter, settings)].
    `recompute_stale`, `retrain`: records of other library code, and the models `retrain`
    names, count as missing (`experiments.stored`)."""
    from . import data

    models: dict[str, dict] = {}   # model key -> what is missing of it, by priority
    complete = set()
    for ci, (chapter, settings) in enumerate(chapter_settings):
        for position, config in enumerate(chapter.experiments(settings)):
            check_config(config)  # a malformed config fails here, before any work is planned
            mkey = store.model_key(config)
            entry = models.setdefault(mkey, {"chapter": chapter.name, "ci": ci, "position": position,
                                              "config": config, "levels": {}, "all_levels": set()})
            record, evals = stored(config, recompute_stale=recompute_stale, retrain=retrain)
            for spec in config["evaluate"]:
                level = chapter.priority(config, spec) if chapter.priority else CLAIMS
                entry["all_levels"].add(level)
                if record is None or evals[spec["name"]] is None:
                    by_config = entry["levels"].setdefault(level, {})
                    by_config.setdefault(id(config), {**config, "evaluate": []})["evaluate"].append(spec)
            entry["train"] = record is None
    items = []
    for mkey, entry in models.items():
        if not entry["levels"]:
            complete.add(mkey)
            continue
        levels = sorted(entry["levels"])
        # a stored record without its weights here is trained again (experiments._compute)
        trains = entry["train"] or not store.weights_path(mkey).exists()
        config = entry["config"]
        seed = (config.get("train") or {}).get("seed", 0)
        for i, level in enumerate(levels):
            configs = list(entry["levels"][level].values())
            label = describe(config) + (f" [{PRIORITY_NAMES.get(level, f'priority {level}')}]")
            item = Item(entry["chapter"], entry["ci"], mkey, level, seed, entry["position"], configs,
                        trains and i == 0, label, arch=config["model"]["name"])
            item.sources = {s["params"]["source"] for c in configs for s in c["evaluate"]
                            if s.get("attack") == "transfer"}
            try:
                item.seconds = _item_seconds(item, rates)
            except data.DataUnavailable as exc:
                item.unavailable = str(exc).split(":")[0]
            items.append(item)
    items.sort(key=Item.order)
    return _sources_first(items), len(complete)


def shard(items: list[Item], k: int, n: int) -> list[Item]:
    """The K-th of N disjoint shares of the queue, in its order: every item of one model in one
    share, and with it every model it attacks with as a transfer source, and theirs in turn (a
    source that attacks with a source of its own), each group by its smallest key, so that N
    processes compute the queue once between them and none waits on another's model."""
    group: dict[str, str] = {}

    def root(mkey):
        while group.setdefault(mkey, mkey) != mkey:
            mkey = group[mkey]
        return mkey

    for item in items:
        for source in item.sources:
            a, b = root(item.mkey), root(source)
            group[max(a, b)] = min(a, b)
    return [item for item in items if int(root(item.mkey), 16) % n == k - 1]


def _sources_first(items: list[Item]) -> list[Item]:
    """Move a missing transfer source's training item before the first item that attacks with it."""
    out = list(items)
    for i in range(len(out)):
        for source in sorted(out[i].sources):
            at = next((j for j, it in enumerate(out) if it.mkey == source and it.trains), None)
            if at is not None and at > i:
                out.insert(i, out.pop(at))
    return out


class Tracker:
    """Observed/estimated time of the items finished so far, per architecture and overall; an
    item's estimate is scaled by its architecture's ratio, else by the overall one (never below
    1 for an architecture not seen yet: a fast small model says little about a big one)."""

    def __init__(self):
        self.observed: dict[str, float] = {}
        self.estimated: dict[str, float] = {}

    def add(self, item: Item, seconds: float) -> None:
        if item.seconds > 0:
            self.observed[item.arch] = self.observed.get(item.arch, 0.0) + seconds
            self.estimated[item.arch] = self.estimated.get(item.arch, 0.0) + item.seconds

    def ratio(self, arch: str | None = None) -> float:
        if arch in self.observed:
            return self.observed[arch] / self.estimated[arch]
        if not self.observed:
            return 1.0
        return max(1.0, sum(self.observed.values()) / sum(self.estimated.values()))

    def expected(self, item: Item) -> float:
        return item.seconds * self.ratio(item.arch)


def ready(item: Item, stored) -> bool:
    """Whether `item` can start once the models `stored(mkey)` says are trained: an item of
    evaluations only needs its model, and a transfer attack its source."""
    return (item.trains or stored(item.mkey)) and all(stored(s) for s in item.sources)


def windows(items: list[Item], budget: float | None) -> list[int]:
    """The window (1, 2, ...) in which each item would run if every window had `budget` seconds
    and the estimates held: each window takes, in queue order, every item that still fits and is
    ready (what `engines.run_queue` does); an item over a whole window gets one of its own. 0
    for items that cannot run here."""
    out = [0] * len(items)
    pending = [i for i, it in enumerate(items) if not it.unavailable]
    trained = {it.mkey for it in items if not it.trains} - {it.mkey for it in items if it.trains}
    trained |= {s for it in items for s in it.sources} - {it.mkey for it in items if it.trains}
    window = 0
    while pending:
        window += 1
        left, rest = budget if budget else math.inf, []
        for i in pending:
            item = items[i]
            if ready(item, trained.__contains__) and (item.seconds <= left or left == budget):
                out[i], left = window, left - item.seconds
                trained.add(item.mkey)
            else:
                rest.append(i)
        if len(rest) == len(pending):  # nothing can start: what is left waits for a model never trained
            break
        pending = rest
    return out


def plan_table(items: list[Item], rates: Rates, *, complete: int = 0, budget: float | None = None) -> str:
    """The plan: one line per item (window, chapter, what, priority, estimated minutes,
    cumulative), then the totals per priority and per chapter."""
    lines = [f"plan on {rates.device}, from {rates.source}: training {rates.train_flops / 1e12:.3g} TFLOP/s, "
             f"evaluation {rates.eval_flops / 1e12:.3g} TFLOP/s, {1e6 * rates.op_seconds:.0f} us an operator, "
             f"{rates.model_seconds:.0f} s a model"]
    slots = windows(items, budget)
    head = f"{'#':>3}  {'window':>6}  {'est. min':>8}  {'cum. min':>8}  what"
    lines.append(head)
    cumulative = 0.0
    for i, (item, window) in enumerate(zip(items, slots), 1):
        if item.unavailable or not window:
            why = item.unavailable or "waits for a model no item trains"
            lines.append(f"{i:>3}  {'-':>6}  {'-':>8}  {'-':>8}  {item.label}: not computable here ({why})")
            continue
        cumulative += item.seconds
        what = f"{item.label}{'' if item.trains else ' (evaluations only)'}, {item.specs} evaluations"
        lines.append(f"{i:>3}  {window:>6}  {item.seconds / 60:>8.2f}  {cumulative / 60:>8.2f}  {what}")
    runnable = [it for it, w in zip(items, slots) if w]
    total = sum(it.seconds for it in runnable)
    lines.append(f"total: {len(runnable)} items, {total / 60:.1f} min estimated"
                 + (f", {max(slots)} window(s) of {budget / 60:g} min" if budget and runnable else "")
                 + f"; stored complete already: {complete} model(s)"
                 + (f"; not computable here: {len(items) - len(runnable)} item(s)" if len(runnable) < len(items) else ""))
    for level in sorted({it.priority for it in runnable}):
        chosen = [(it, w) for it, w in zip(items, slots) if it.priority == level and w]
        per_chapter = {}
        for it, w in chosen:
            c = per_chapter.setdefault(it.chapter, [0, 0.0, set()])
            c[0], c[1] = c[0] + 1, c[1] + it.seconds
            c[2].add(w)
        lines.append(f"  {PRIORITY_NAMES.get(level, level)}: " + "; ".join(
            f"{name} {n} items {s / 60:.1f} min" + (f" (windows {', '.join(map(str, sorted(ws)))})" if budget else "")
            for name, (n, s, ws) in per_chapter.items()))
    return "\n".join(lines)


def now() -> float:
    """The clock budgets are counted on."""
    return time.monotonic()


# ----------------------------------------------------------------------------------------
# The plan against the measurement
# ----------------------------------------------------------------------------------------
def planned_against_measured(configs: list[dict], records: list[dict], group: str = "variant") -> list[dict]:
    """Per `group` value (a chapter's variant), the planner's minutes for one model (training and
    every evaluation its config lists) against the wall minutes its records measured, mean over
    the stored models: how far the estimates on the page and in `--dry-run` can be trusted. Each
    model is planned at its own device's rates (a CPU at the threads it ran on; a GPU from the
    newest GPU bench record)."""
    by_key = {store.model_key(c): c for c in configs}
    cells: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        config = by_key.get(record.get("key"))
        if config is None or record.get("wall_seconds") is None:
            continue
        device = record.get("train_device", record.get("device", ""))
        on_cpu = device.startswith("CPU")
        rates = device_rates(torch.device("cpu"), BENCH / "bench-cpu.json", threads=_threads(device)) if on_cpu \
            else device_rates(torch.device("cpu"), for_gpu=True)
        measured = record["wall_seconds"] + sum(e["result"]["seconds"] for e in record["evaluations"].values())
        cells.setdefault(config[group], []).append((config_seconds(config, rates), measured))
    rows = []
    for value, pairs in cells.items():
        planned, measured = (sum(p[i] for p in pairs) / len(pairs) / 60 for i in (0, 1))
        rows.append({group: value, "models": len(pairs), "planned (min a model)": round(planned, 1),
                     "measured (min a model)": round(measured, 1), "measured / planned": round(measured / planned, 2)})
    return rows
