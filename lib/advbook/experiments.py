"""Experiments: a plain configuration in, a result record out, computing only what is missing.

    config = {"chapter": "primer", "profile": "smoke", "dataset": "digits",
              "subset": {"train": None, "test": 300}, "validation": None,
              "model": {"name": "small-cnn", "width": 16},
              "train": {...TrainConfig fields...},
              "evaluate": [{"name": "clean", "attack": "clean"}, {"name": "pgd", "attack": "pgd", "params": {...}}]}
    record = get_or_compute(config)

`CONFIG_FIELDS` is the config's one schema (`check_config` holds a config to it before any work);
the training part is `train.TrainConfig`, the attack specs are `evaluate`'s.

The trained model is stored once (weights and history, `store.model_path`) and each attack spec
once per model (`store.eval_path`): a chapter that adds an attack evaluates the stored models
and trains nothing. Notebooks call `get_or_compute`; `advbook compute` calls it for all of a
chapter's experiments without a notebook (on a GPU machine), and the notebook then finds them.
"""
from __future__ import annotations

import fcntl
import functools
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import torch

from . import data, defenses, models, store
from .device import default_device
from .evaluate import check_spec, evaluate_spec
from .errors import NotComputed
from .train import TrainConfig, fit




# what an evaluation is for (a chapter's `priority(config, spec)`): deciding a claim, or an extra
CLAIMS, EXTRA = 0, 1

# The experiment config: {key: (type, required, meaning)}. Only the dataset, subset, validation,
# model and train parts define the trained model (`store.model_config`); the labels name a point
# for a chapter's rows and enter no key.
CONFIG_FIELDS = {
    "dataset": (str, True, "a name in advbook.data (its offline file under $ADVBOOK_DATA)"),
    "model": (dict, True, "{'name': an architecture of advbook.models, ...its builder's arguments}"),
    "train": (dict, True, "the fields of advbook.train.TrainConfig"),
    "evaluate": (list, True, "attack specs (advbook.evaluate), names unique"),
    "subset": (dict, False, "{'train': images or None, 'test': images or None, 'seed': the draw}"),
    "validation": (int, False, "training images held out as the validation split"),
    "data_root": (str, False, "a folder holding the dataset file instead of $ADVBOOK_DATA"),
    "chapter": (str, False, "label: the chapter that asks for it"),
    "profile": (str, False, "label: the chapter's profile"),
    "variant": (str, False, "label: the training variant"),
    "arch": (str, False, "label: the architecture"),
    "table": (str, False, "label: the paper's table"),
    "configuration": (str, False, "label: the table's configuration"),
}
SUBSET_FIELDS = ("train", "test", "seed")


def check_config(config: dict) -> None:
    """A one-line ValueError for a config that does not fit `CONFIG_FIELDS`, before any work."""
    if not isinstance(config, dict):
        raise ValueError(f"experiment config: a config is a dict, got {type(config).__name__}")
    where = config.get("chapter") or "experiment config"
    unknown = sorted(set(config) - set(CONFIG_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown config key(s) {', '.join(unknown)}; known: {', '.join(CONFIG_FIELDS)}")
    for name, (kind, required, meaning) in CONFIG_FIELDS.items():
        value = config.get(name)
        if value is None:
            if required:
                raise ValueError(f"{where}: '{name}' is missing ({meaning})")
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{where}: '{name}' must be a {kind.__name__} ({meaning}), got {value!r}")
    if not isinstance(config["model"].get("name"), str):
        raise ValueError(f"{where}: model needs a 'name' (an architecture of advbook.models)")
    extra = sorted(set(config.get("subset") or {}) - set(SUBSET_FIELDS))
    if extra:
        raise ValueError(f"{where}: unknown subset key(s) {', '.join(extra)}; known: {', '.join(SUBSET_FIELDS)}")
    try:
        TrainConfig(**config["train"])
    except TypeError as exc:  # an unknown field
        raise ValueError(f"{where}: train: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: train: {exc}") from None
    names = []
    for spec in config["evaluate"]:
        check_spec(spec)
        names.append(spec["name"])
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: attack spec names repeat: {names}")


def prepare_data(config: dict) -> data.Dataset:
    """The dataset with the config's validation split held out and its train/test subsets."""
    dataset = data.load(config["dataset"], config.get("data_root"))
    subset = config.get("subset") or {}
    if config.get("validation"):  # held out from training first, as the paper's splits are
        dataset = dataset.split_validation(config["validation"], seed=0)
    if subset.get("train") or subset.get("test"):
        dataset = dataset.subset(subset.get("train"), subset.get("test"), seed=subset.get("seed", 0))
    return dataset


def build_model(config: dict, dataset: data.Dataset) -> torch.nn.Module:
    mean, std = dataset.channel_stats()
    spec = dict(config["model"])
    name = spec.pop("name")
    return models.build(name, dataset.num_classes, dataset.in_channels, mean=mean, std=std,
                        image_size=dataset.image_size, **spec)


@functools.lru_cache(maxsize=8)
def load_trained(mkey: str) -> torch.nn.Module:
    """The stored model `mkey`, rebuilt from its record on its own data split (so that its
    normalization matches) with its stored weights, in eval mode, once per process: the only
    place a stored model is rebuilt. Building draws initial weights, so it runs under a forked
    random state and leaves the caller's stream as it was."""
    record = store.load_model(mkey)
    if record is None:
        raise ValueError(f"model {mkey} is not in the results store")
    with torch.random.fork_rng(devices=[]):
        model = build_model(record["config"], prepare_data(record["config"]))
    if not store.load_weights(model, mkey):
        raise ValueError(f"model {mkey} has a record but no weights here")
    return model.eval()


def resolved(spec: dict) -> dict:
    """`spec` with a store key it names as an attack's source model replaced by that model."""
    params = spec.get("params", {})
    if spec.get("attack") == "transfer" and isinstance(params.get("source"), str):
        return {**spec, "params": {**params, "source": load_trained(params["source"])}}
    return spec


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot, time stolen by the hypervisor
    included (Linux `/proc/stat`); None where it cannot be read."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (ticks + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OthersMeter:
    """How many CPUs other processes kept busy, on average, while this one worked: the machine's
    busy CPU time less this process's own, over the wall time. A wall time is comparable with
    another's only when this is about 0 for both (`claims.untimed`). The 1-minute load average
    cannot tell: after one model trained on every core, the next starts at a load of about the
    core count, all of it this process's own."""

    def __init__(self):
        self.busy, self.own, self.wall = _machine_busy_seconds(), time.process_time(), time.perf_counter()

    def cpus(self) -> float | None:
        busy, wall = _machine_busy_seconds(), time.perf_counter() - self.wall
        if busy is None or self.busy is None or wall <= 0:
            return None
        others = (busy - self.busy) - (time.process_time() - self.own)
        return round(max(others, 0.0) / wall, 3)


def progress_hook(cfg: TrainConfig, label: str):
    """`fit`'s before-epoch hook that says which epoch starts and when training should end, then
    runs the configuration's own hook (Kamath et al.'s epoch perturbation) if it has one."""
    inner = defenses.epoch_hook(**cfg.epoch_perturbation) if cfg.epoch_perturbation else None
    started, calls = time.perf_counter(), [0]

    def before_epoch(model, x_u8, y, generator):
        done = calls[0]
        eta = ""
        if done:
            per_epoch = (time.perf_counter() - started) / done
            eta = f", about {per_epoch * (cfg.epochs - done):.0f} s of training left at {per_epoch:.0f} s an epoch"
        say(f"{label}: epoch {done + 1} of at most {cfg.epochs}{eta}")
        calls[0] += 1
        return inner(model, x_u8, y, generator) if inner else None
    return before_epoch


def train_model(config: dict, dataset: data.Dataset, *, device, progress=None, label: str = "") -> tuple[torch.nn.Module, dict]:
    """Train the model `config` describes, store its weights and record; returns both."""
    mkey = store.model_key(config)
    started = time.perf_counter()
    # what else the machine ran: a wall time is only comparable with another's when neither model
    # shared the machine (claims.untimed)
    load_at_start, cpus, others = os.getloadavg()[0], len(os.sched_getaffinity(0)), OthersMeter()
    train_cfg = TrainConfig(**config["train"])
    torch.manual_seed(train_cfg.seed)  # the initial weights depend on the seed alone
    model = build_model(config, dataset)
    checkpoint = store.checkpoint_path(mkey)
    history = fit(model, dataset, train_cfg, checkpoint=checkpoint, device=device, progress=progress,
                  before_epoch=progress_hook(train_cfg, label))
    store.save_weights(model, mkey)
    load_trained.cache_clear()  # new weights under this key
    record = {
        "key": mkey, "config": store.model_config(config),
        "first_computed_for": {"chapter": config.get("chapter"), "profile": config.get("profile")},
        "dataset": {"name": dataset.name, "display_name": dataset.display_name, "sha256": dataset.sha256,
                    "source": store.source_name(dataset.source), "n_train": len(dataset.y_train), "n_test": len(dataset.y_test),
                    "num_classes": dataset.num_classes},
        "history": history, "train_seconds": sum(h["seconds"] for h in history),
        "wall_seconds": time.perf_counter() - started, "created": _now(),
        "load_average": round(load_at_start, 2), "cpu_count": cpus, "other_cpus": others.cpus(),
        "code": store.code_hash("model"), "code_files": store.code_manifest("model"),
        **store.environment(device, "model"),
    }
    store.write(record, store.model_path(mkey))
    checkpoint.unlink(missing_ok=True)
    return model, record


def say(message: str) -> None:
    """A progress line on the process's own stderr: in a notebook kernel run by `advbook run`
    that is the terminal, never the notebook's outputs."""
    print(message, file=sys.__stderr__, flush=True)


@contextmanager
def model_lock(mkey: str):
    """One process at a time trains and evaluates a given model; a second one waits, then finds
    the records the first one wrote."""
    path = store.model_path(mkey).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Retrain:
    """Stored models to train again although they are complete (`advbook compute --retrain`),
    e.g. to time them on an idle machine: a record of one of `keys` made before `before` (when
    the compute started, so a model it trained is not trained twice) counts as missing."""
    keys: frozenset
    before: str

    @classmethod
    def starting_now(cls, keys) -> Retrain:
        return cls(frozenset(keys), _now())


def stored(config: dict, *, recompute_stale: bool = False, retrain: Retrain | None = None) -> tuple[dict | None, dict]:
    """The stored model record of `config` and {spec name: its stored evaluation}, None where
    missing or made of other weights than the stored model's (a model trained again since: the
    evaluation names the model it scored). With `recompute_stale`, a record computed by other
    library code than this checkout's (`store.is_stale`, what the provenance flags) counts as
    missing too, and so does a model `retrain` names: it is computed again, and replaced only
    when its successor is written whole (its evaluations then follow the new weights)."""
    mkey, test = store.model_key(config), store.test_selection(config)
    model_record = store.load_model(mkey)
    if model_record is not None and recompute_stale and store.is_stale(model_record, "model"):
        model_record = None
    if model_record is not None and retrain and mkey in retrain.keys and model_record["created"] < retrain.before:
        model_record = None
    evals = {s["name"]: store.load_eval(mkey, s, test) for s in config["evaluate"]}
    for name, record in evals.items():
        if record is not None and (model_record is None or
                                   record.get("model_created", model_record["created"]) != model_record["created"]
                                   or (recompute_stale and store.is_stale(record, "eval"))):
            evals[name] = None
    return model_record, evals


def get_or_compute(config: dict, *, compute: bool = True, recompute_stale: bool = False, retrain: Retrain | None = None,
                   device=None, progress=None, label: str = "") -> dict:
    """The record of `config`: its trained model and every evaluation it lists, computing (and
    storing) only what is missing. Returns one record with the model's provenance, its history,
    `metrics` ({spec name: accuracy}; a sweep's points grouped as {NAME: {VALUE: acc}})
    and `evaluations` (each spec's own record). `recompute_stale`, `retrain`: see `stored`."""
    check_config(config)
    specs = config["evaluate"]
    mkey, test = store.model_key(config), store.test_selection(config)
    model_record, evals = stored(config, recompute_stale=recompute_stale, retrain=retrain)
    missing = [s for s in specs if evals[s["name"]] is None]
    if model_record is None or missing:
        if not compute:
            raise NotComputed(f"{config.get('chapter')}: model {mkey} or {len(missing)} of its evaluations are not "
                              f"stored; run `advbook compute {config.get('chapter')} --profile {config.get('profile')}`")
        with model_lock(mkey):  # another process may have computed them meanwhile: look again
            model_record, evals = stored(config, recompute_stale=recompute_stale, retrain=retrain)
            missing = [s for s in specs if evals[s["name"]] is None]
            if model_record is None or missing:
                model_record = _compute(config, mkey, test, model_record, evals, missing, device, progress, label)
    return combine(config, model_record, evals)


def _compute(config, mkey, test, model_record, evals, missing, device, progress, label) -> dict:
    """Train the model if needed and evaluate the missing specs, storing each record."""
    device = device or default_device()
    what = f"{label} {config.get('chapter')} {config['train']['defense']} seed {config['train']['seed']}"
    dataset = prepare_data(config)
    model = None
    if model_record is not None and missing:
        model = build_model(config, dataset)
        if not store.load_weights(model, mkey):
            model = None  # trained elsewhere, weights not here: train again (same config, same seed)
    if model is None:
        say(f"{what}: training model {mkey} ({config['train']['epochs']} epochs on {dataset.display_name})")
        model, model_record = train_model(config, dataset, device=device, progress=progress, label=what)
        # new weights: every evaluation this config lists is of the new model, so all are computed
        # again (a retraining elsewhere need not reproduce the old weights bit for bit)
        missing = list(config["evaluate"])
    model.to(device).eval()
    say(f"{what}: {len(missing)} evaluations of model {mkey}")
    for spec in missing:
        result = evaluate_spec(model, dataset, resolved(spec), device=device)
        evals[spec["name"]] = {"model": mkey, "model_created": model_record["created"], "spec": spec, "test": test,
                               "result": result, "created": _now(),
                               "code": store.code_hash("eval"), "code_files": store.code_manifest("eval"),
                               **store.environment(device, "eval")}
        store.write(evals[spec["name"]], store.eval_path(mkey, spec, test))
    return model_record


def describe(config: dict) -> str:
    """A point in words: the chapter, its dataset, the variant (or table and configuration, or
    defense) and the seed, e.g. 'primer (digits): defense pgd, seed 0'."""
    train = config.get("train") or {}
    parts = [f"{k} {config[k]}" for k in ("table", "configuration", "variant") if config.get(k) is not None]
    if not parts and train.get("defense") is not None:
        parts.append(f"defense {train['defense']}")
    if train.get("seed") is not None:
        parts.append(f"seed {train['seed']}")
    return f"{config.get('chapter')} ({config.get('dataset')}): {', '.join(parts)}"


def compute_allowed() -> bool:
    """Whether a page may compute what it misses: not where $ADVBOOK_COMPUTE is 0 (`advbook run
    --no-compute`, and a GPU profile by default)."""
    import os

    return os.environ.get("ADVBOOK_COMPUTE", "1") != "0"


def collect(configs: list[dict], priority=None, planner=None, **kwargs) -> tuple[list[dict], list[str]]:
    """The records of `configs`, computing what is missing where its data are here; returns them
    and the display names of the datasets whose missing records could not be computed (no
    offline copy, no network): a chapter renders from stored records alone and names the rest.
    With `compute` False (default: False when $ADVBOOK_COMPUTE is 0, as `advbook run` sets it
    for a GPU profile) nothing is computed: a model stored with every evaluation its chapter's
    claims read (`priority(config, spec)` is CLAIMS for them: the chapter's `Chapter.priority`;
    None: every evaluation) comes back with the evaluations stored so far, and the models left
    out or short of evaluations are listed at the top of the page (`not_computed`, with the
    `planner`'s estimate where a notebook passes `advbook.planning`)."""
    compute = kwargs.pop("compute", compute_allowed())
    records, unavailable, missing = [], [], {}
    for i, config in enumerate(configs):
        try:
            records.append(get_or_compute(config, compute=compute, label=f"[{i + 1}/{len(configs)}]", **kwargs))
            continue
        except NotComputed:
            pass
        except data.DataUnavailable:
            if config["dataset"] not in unavailable:
                unavailable.append(config["dataset"])
            continue
        mkey, specs = store.model_key(config), config["evaluate"]
        model_record, evals = stored(config)
        evals = evals if model_record else {}
        if evals and all(evals[s["name"]] for s in specs if priority is None or priority(config, s) == CLAIMS):
            records.append(combine(config, model_record, {k: v for k, v in evals.items() if v is not None}))
            n_stored = sum(v is not None for v in evals.values())
            missing[mkey] = f"{describe(config)}: {len(specs) - n_stored} of {len(specs)} evaluations (extras) missing"
        else:
            missing[mkey] = f"{describe(config)}: not computed"
    if missing:
        show(not_computed(configs, missing, priority, planner))
    return records, unavailable


def not_computed(configs: list[dict], missing: dict[str, str], priority=None, planner=None) -> str:
    """What `collect` found missing of `configs` ({model key: the model in words and what it
    lacks}), for the top of a page, in Markdown that reads as plain text too: how many models and
    the command that computes them, then one line per model. With `planner` (`advbook.planning`,
    passed in by a notebook: the planner plans whole chapters, a floor above this module), also
    its estimate of the minutes on the device the profile is sized for, the numbers of `advbook
    compute --dry-run`."""
    import types

    name, profile = configs[0].get("chapter"), configs[0].get("profile")
    estimate, lines = "", [f"- {what}" for what in missing.values()]
    if planner is not None:
        from . import profiles
        from .device import default_device

        rates = planner.device_rates(default_device(),
                                     for_gpu=profile in profiles.PROFILES and profiles.get(profile).on_gpu)
        # the planner takes chapters: these configs as one chapter's experiments
        chapter = types.SimpleNamespace(name=name, experiments=lambda _: configs, priority=priority)
        items, _ = planner.plan([(chapter, None)], rates)
        seconds, why = {}, {}
        for item in items:
            if item.unavailable:  # "dataset 'X' is not available offline", without the planner's cut-off detail
                why[item.mkey] = item.unavailable.split(" (")[0] + ": not computable here"
            seconds[item.mkey] = seconds.get(item.mkey, 0.0) + item.seconds
        runnable = [it for it in items if not it.unavailable]
        if runnable:
            claims = sum(it.seconds for it in runnable if it.priority == CLAIMS)
            estimate = (f" in {_minutes(sum(it.seconds for it in runnable))} on {rates.device} by the planner's "
                        f"estimate ({_minutes(claims)} of it for what the claims read, computed first; `--dry-run` "
                        "shows the plan)")
        lines = [f"- {what} ({why.get(mkey) or _minutes(seconds.get(mkey, 0.0))})" for mkey, what in missing.items()]
    return (f"Not computed yet: {len(missing)} of {len({store.model_key(c) for c in configs})} models lack "
            f"records; `advbook compute {name} --profile {profile}` computes them{estimate}. This page shows "
            "what is stored, and a table, figure or list with nothing stored says so:\n\n" + "\n".join(lines))


def _minutes(seconds: float) -> str:
    return f"about {seconds / 60:.1f} min" if seconds >= 6 else "under 0.1 min"


def show(markdown: str) -> None:
    """`markdown` rendered on a notebook's page, printed elsewhere (a terminal, a test)."""
    ipython = sys.modules.get("IPython")  # loaded in a notebook kernel; never imported here
    if ipython is not None and ipython.get_ipython() is not None:
        from IPython.display import Markdown, display

        display(Markdown(markdown))
    else:
        print(markdown)


def stored_records(configs: list[dict]) -> list[dict]:
    """The records of `configs` that the store holds whole (model and every evaluation), computing
    nothing and saying nothing about the others."""
    records = []
    for config in configs:
        try:
            records.append(get_or_compute(config, compute=False))
        except NotComputed:
            pass
    return records


def combine(config: dict, model_record: dict, evals: dict[str, dict]) -> dict:
    """One record for a chapter: the model's provenance and history, the evaluations' metrics
    ({spec name: accuracy}; the points of a sweep grouped as {sweep name: {str(value): accuracy}})."""
    marks = {spec["name"]: spec.get("sweep") for spec in config["evaluate"]}
    after = store.test_drawn_after(config)
    if after is not None:  # the images' identity needs it (`per_image.selection`); the stored records keep theirs
        evals = {name: {**record, "drawn_after": after} for name, record in evals.items()}
    metrics: dict = {}
    for name, record in evals.items():
        accuracy = record["result"]["accuracy"]
        if marks.get(name):
            metrics.setdefault(marks[name]["name"], {})[str(marks[name]["value"])] = accuracy
        else:
            metrics[name] = accuracy
    devices = list(dict.fromkeys([model_record["device"]] + [e["device"] for e in evals.values()]))
    # the library files that changed since this model or one of its evaluations was computed
    stale = sorted(set(store.changed_code(model_record, "model")).union(
        *(store.changed_code(e, "eval") for e in evals.values())))
    return {
        **{k: model_record[k] for k in ("key", "dataset", "history", "train_seconds", "created", "torch",
                                        "torchvision", "python", "commit")},
        "config": config, "profile": config.get("profile"), "metrics": metrics, "evaluations": evals,
        # where and under what load the model was trained (its wall times are read with these)
        "train_device": model_record["device"], "load_average": model_record.get("load_average"),
        "cpu_count": model_record.get("cpu_count"), "other_cpus": model_record.get("other_cpus"),
        "device": " + ".join(devices),
        "eval_commits": sorted({e["commit"] for e in evals.values()}),
        "wall_seconds": model_record["wall_seconds"] + sum(e["result"].get("seconds", 0) for e in evals.values()),
        "stale": stale,
    }
