"""Engines: how `advbook compute` and `advbook sweep` compute a list of experiment configs.

- `serial` (the default): in this process, one experiment after the other (`get_or_compute`),
  exactly as a chapter's notebook does. Needs nothing beyond the library.
- `ray`: every missing trained model, with its missing evaluations, becomes one Ray task. A
  task asks for one GPU when the cluster has GPUs (else CPUs, with cluster CPUs / concurrent
  tasks torch threads each); independent tasks run at once. A worker needs no shared
  filesystem: it computes into a temporary results root of its own, seeded with what the
  driver's store already holds of that model (its record, weights and evaluations), and
  returns the records it wrote and the weights file; the driver writes them into the results
  store atomically, only after the task has returned. What is stored already is skipped
  before anything is submitted, a failing task is reported (one line: which point, why) while
  the others' records are kept, and a rerun computes only what is missing.

    failures = compute(configs, engine="ray", address=None)   # [] when every task succeeded

Ray is imported only inside the ray engine: the serial engine, the book and the tests of
everything else need no Ray.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import store
from .errors import ParameterError
from .errors import NotComputed
from .experiments import describe, get_or_compute  # noqa: F401  (describe: this module's API)
from .paths import data_root, results_root, results_roots

ENGINES = ("serial", "ray")
RAY_PIN = "ray==2.60.0"  # as in requirements.txt


@dataclass
class Task:
    """One trained model and the configs (its missing evaluations) computed with it."""
    mkey: str
    configs: list[dict] = field(default_factory=list)
    label: str = ""


@dataclass
class Failure:
    """A task that raised, or whose worker died: which point, and why (one line)."""
    label: str
    mkey: str
    error: str
    configs: list[dict] = field(default_factory=list)
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.label} (model {self.mkey}): {self.error}"


def compute(configs: list[dict], *, engine: str = "serial", address: str | None = None, desc: str = "",
            labels: list[str] | None = None) -> list[Failure]:
    """Compute what is missing of `configs` with `engine`; `labels` (one per config) prefix each
    point's description (a sweep's grid point). The serial engine raises as `get_or_compute`
    does; the ray engine goes on past a failing task and returns the failures."""
    if engine == "serial":
        if address is not None:
            raise ParameterError("--address needs --engine ray")
        return run_serial(configs, desc=desc)
    if engine == "ray":
        return run_ray(configs, address=address, desc=desc, labels=labels)
    raise ParameterError(f"unknown engine '{engine}'; known: {', '.join(ENGINES)}")


# ----------------------------------------------------------------------------------------
# serial
# ----------------------------------------------------------------------------------------

def run_serial(configs: list[dict], *, desc: str = "") -> list[Failure]:
    from tqdm import tqdm

    for i, config in enumerate(tqdm(configs, desc=desc, disable=None)):
        record = get_or_compute(config, progress=None, label=f"[{i + 1}/{len(configs)}]")
        print(f"model {record['key']}: {record['train_seconds']:.0f} s training, {len(record['evaluations'])} "
              f"evaluations, on {record['device']}", flush=True)
    return []


# ----------------------------------------------------------------------------------------
# serial, within a budget (advbook compute --budget): the planned queue, in order
# ----------------------------------------------------------------------------------------

class BudgetExhausted(Exception):
    """The budget's deadline came while an item was computing."""


def run_queue(items: list, *, budget: float | None = None, started: float | None = None, out=None,
              recompute_stale: bool = False, retrain=None) -> list[Failure]:
    """Compute the planned items (`planning.plan`) in order in this process. With `budget`
    (seconds from `started`, a `time.monotonic()` value; default now): an item whose estimate,
    scaled by the observed/estimated ratio so far, exceeds the time left is not started (a
    later, cheaper one may be), and at the deadline the running item is interrupted: what it
    finished stays (each record is written whole; its training checkpoint, if any, resumes it
    on a rerun) and nothing half-written is left. Prints one line per item (estimated vs actual);
    returns the failures (an item that raised; the others go on). `recompute_stale`, `retrain`:
    as the plan was made (`planning.plan`), records of other library code and the models
    `retrain` names are computed again."""
    from . import planning

    out = out or sys.stdout
    started = planning.now() if started is None else started
    deadline = started + budget if budget is not None else None
    tracker, failures, done, skipped = planning.Tracker(), [], 0, []
    runnable = [it for it in items if not it.unavailable]
    print(f"computing {len(runnable)} items" + (f" within {budget:.0f} s ({deadline - planning.now():.0f} s left)"
                                               if budget is not None else ""), file=out, flush=True)
    for i, item in enumerate(items, 1):
        line = f"[{i}/{len(items)}] {item.label}"
        if item.unavailable:
            continue
        if not planning.ready(item, _stored):
            print(f"{line}: not started, it needs a model not computed yet (its own, or a transfer source)",
                  file=out, flush=True)
            skipped.append(item)
            continue
        expected = tracker.expected(item)
        left = deadline - planning.now() if deadline is not None else math.inf
        if expected > left:
            print(f"{line}: not started, estimated {expected / 60:.2f} min > {max(left, 0) / 60:.2f} min left",
                  file=out, flush=True)
            skipped.append(item)
            continue
        begun = planning.now()
        try:
            with _deadline(deadline):
                for config in item.configs:
                    get_or_compute(config, progress=None, label=f"[{i}/{len(items)}]",
                                   recompute_stale=recompute_stale, retrain=retrain)
        except BudgetExhausted:
            print(f"{line}: interrupted at the end of the budget after {planning.now() - begun:.0f} s; its finished "
                  "records are kept and a rerun computes the rest", file=out, flush=True)
            skipped += [it for it in items[i - 1:] if not it.unavailable]
            break
        except Exception as exc:  # one failing model does not end the window; reported at the end
            failures.append(Failure(item.label, item.mkey, _one_line(exc), item.configs, traceback.format_exc()))
            print(f"{line}: FAILED: {_one_line(exc)}", file=out, flush=True)
            continue
        took = planning.now() - begun
        tracker.add(item, took)
        done += 1
        print(f"{line}: estimated {item.seconds / 60:.2f} min (expected {expected / 60:.2f}), took {took / 60:.2f} min"
              + (f"; {(deadline - planning.now()) / 60:.1f} min left" if deadline is not None else ""),
              file=out, flush=True)
    elapsed = planning.now() - started
    print(f"computed {done} of {len(runnable)} items in {elapsed:.0f} s"
          + (f"; not computed: {len(skipped)} (estimated {sum(it.seconds for it in skipped) / 60:.1f} min), a rerun "
             "computes them" if skipped else ""), file=out, flush=True)
    return failures


def _stored(mkey: str) -> bool:
    """Model `mkey` is trained here: its record and its weights."""
    return store.load_model(mkey) is not None and store.weights_path(mkey).exists()


class _deadline:
    """Raise BudgetExhausted in this (the main) thread at `deadline` (a `time.monotonic()` value);
    nothing elsewhere, or with no deadline."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline
        self.previous = None

    def __enter__(self):
        import signal
        import threading

        from .planning import now

        if self.deadline is None or threading.current_thread() is not threading.main_thread():
            self.deadline = None
            return self

        def expire(signum, frame):
            raise BudgetExhausted()
        self.previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, max(self.deadline - now(), 1e-3))
        return self

    def __exit__(self, *exc):
        import signal

        if self.deadline is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous or signal.SIG_DFL)
        return False


# ----------------------------------------------------------------------------------------
# ray: the driver
# ----------------------------------------------------------------------------------------

def missing_tasks(configs: list[dict], labels: list[str] | None = None) -> tuple[list[Task], int]:
    """The tasks to run, one per model with anything missing (configs that share a model go into
    one task, so that it is trained once), and how many models are stored complete already."""
    labels = labels or [""] * len(configs)
    tasks: dict[str, Task] = {}
    complete, seen = set(), set()
    for config, prefix in zip(configs, labels):
        ckey = store.key(config)
        if ckey in seen:  # the same experiment asked twice (sweep points that share it)
            continue
        seen.add(ckey)
        mkey = store.model_key(config)
        try:
            get_or_compute(config, compute=False)
            complete.add(mkey)
            continue
        except NotComputed:
            pass
        label = f"{prefix}: {describe(config)}" if prefix else describe(config)
        task = tasks.setdefault(mkey, Task(mkey))
        task.configs.append(config)
        task.label = task.label or label
    done = len(complete - set(tasks))
    for task in tasks.values():
        if len(task.configs) > 1:
            task.label += f" (and {len(task.configs) - 1} more config(s) of this model)"
    return list(tasks.values()), done


def import_ray():
    """Ray, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ParameterError(f"--engine ray needs Ray: `pip install {RAY_PIN}` (pinned in requirements.txt), "
                             "or use --engine serial") from None
    return ray


def connect(ray, address: str | None) -> bool:
    """Connect to the cluster at `address`, or start a local Ray instance; True if this call
    connected (and the caller disconnects), False if this process was connected already."""
    if ray.is_initialized():
        return False
    import signal
    import threading

    if address:
        check_reachable(address)
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    # Ray's core worker installs its own SIGTERM handler (it would end the driver abruptly): keep
    # the CLI's, so that SIGTERM stops cleanly, as Ctrl-C does
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **quiet)
    except ConnectionError as exc:
        raise ParameterError(f"cannot reach a Ray cluster at {address!r} ({exc}); start one with "
                             "`ray start --head`, or leave --address out for a local instance") from None
    finally:
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
    return True


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """A one-line error now for a HOST:PORT (or ray://HOST:PORT) nobody answers at: `ray.init`
    itself would retry for minutes. 'auto' and other forms are left to Ray."""
    import socket

    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ParameterError(f"no Ray cluster answers at --address {address} ({exc.strerror or exc}); start one "
                             "with `ray start --head` there, or leave --address out for a local instance") from None


def run_ray(configs: list[dict], *, address: str | None = None, desc: str = "",
            labels: list[str] | None = None, out=None) -> list[Failure]:
    out = out or sys.stdout
    tasks, done = missing_tasks(configs, labels)
    print(f"{desc + ': ' if desc else ''}models to compute on Ray: {len(tasks)}; stored complete already: {done}",
          file=out, flush=True)
    if not tasks:
        return []
    ray = import_ray()
    connected = connect(ray, address)
    try:
        return _drive(ray, tasks, desc, out)
    finally:
        if connected:
            ray.shutdown()


def plan(resources: dict, n_tasks: int, node_cpus: int | None = None) -> tuple[dict, int]:
    """Each task's resource request and torch threads: one GPU (and one CPU) when the cluster has
    GPUs, else cluster CPUs / concurrent tasks CPUs; at least 1, and never more than the largest
    node has (`node_cpus`), so that every task fits on some node."""
    cpus = max(1, int(resources.get("CPU", 1)))
    gpus = int(resources.get("GPU", 0))
    if gpus:
        concurrent = max(1, min(n_tasks, gpus))
        return {"num_gpus": 1, "num_cpus": 1}, max(1, cpus // concurrent)
    threads = max(1, cpus // max(1, min(n_tasks, cpus)))
    if node_cpus:
        threads = max(1, min(threads, int(node_cpus)))
    return {"num_cpus": threads}, threads


def largest_node_cpus(ray) -> int | None:
    cpus = [node.get("Resources", {}).get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
    return int(max(cpus)) if cpus else None


def capacity(resources: dict, options: dict) -> int:
    """How many tasks the cluster runs at once now (nodes that join count from their arrival)."""
    if options.get("num_gpus"):
        return max(1, int(resources.get("GPU", 0)))
    return max(1, int(resources.get("CPU", 1)) // options["num_cpus"])


def _drive(ray, tasks: list[Task], desc: str, out) -> list[Failure]:
    from tqdm import tqdm

    options, threads = plan(ray.cluster_resources(), len(tasks), largest_node_cpus(ray))
    remote = ray.remote(max_retries=1, **options)(run_task)
    data_dir = str(data_root().resolve())
    driver_code = {kind: store.code_hash(kind) for kind in ("model", "eval")}
    where = f"{options.get('num_gpus', 0)} GPU and {options['num_cpus']} CPU a task, {threads} torch threads"
    print(f"Ray tasks: {len(tasks)} ({where})", file=out, flush=True)
    queue, inflight, failures, finished, warned = list(tasks), {}, [], 0, set()
    bar = tqdm(total=len(tasks), desc=desc or "ray", disable=None, file=out)
    try:
        while queue or inflight:
            if queue:
                slots = capacity(ray.cluster_resources(), options)
                while queue and len(inflight) < slots:
                    task = queue.pop(0)
                    ref = remote.remote(task.configs, seed_files(task.mkey), threads, data_dir)
                    inflight[ref] = (task, time.perf_counter())
            bar.set_postfix({"done": finished - len(failures), "running": len(inflight), "queued": len(queue),
                             "failed": len(failures)})
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                task, submitted = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # the worker died, the task was cancelled, ...
                    result = {"ok": False, "error": _one_line(exc), "traceback": str(exc), "files": []}
                written = store_files(result["files"])  # even a failed task's finished records
                finished += 1
                if result.get("code") and result["code"] != driver_code and result.get("host") not in warned:
                    warned.add(result.get("host"))
                    tqdm.write(f"warning: {result.get('host')} computes with other library code than this "
                               f"checkout's (code {result['code']} vs {driver_code}): its records show as stale",
                               file=out)
                line = f"[{finished}/{len(tasks)}] {task.label}: "
                if result["ok"]:
                    tqdm.write(line + _summary(task, written, time.perf_counter() - submitted), file=out)
                else:
                    failures.append(Failure(task.label, task.mkey, result["error"], task.configs,
                                            result.get("traceback", "")))
                    tqdm.write(line + f"FAILED: {result['error']}", file=out)
                bar.update(1)
        bar.set_postfix({"done": finished - len(failures), "running": 0, "queued": 0, "failed": len(failures)})
    except BaseException:  # Ctrl-C: nothing half-written; what is still running is abandoned
        for ref in inflight:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    return failures


def _one_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # a RayTaskError carries the task's own exception
    if isinstance(cause, BaseException):
        exc = cause
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


def _summary(task: Task, written: list[Path], seconds: float) -> str:
    records = [store.read(p) for p in written if p.suffix == ".json"]
    trained = [r for r in records if "history" in r]
    evals = [r for r in records if "spec" in r]
    devices = sorted({r["device"] for r in records if r.get("device")})
    what = f"trained in {trained[0]['train_seconds']:.0f} s" if trained else "stored already"
    return (f"model {task.mkey} {what}; new evaluation records: {len(evals)}; on {' + '.join(devices) or '?'}; "
            f"{seconds:.0f} s from submission")


def seed_files(mkey: str) -> dict[str, bytes]:
    """What the store holds of model `mkey` already (record, weights, evaluations), by path
    relative to the results root: the worker starts from it, as `get_or_compute` would here
    (the record and the weights beside it from the first store holding them, each evaluation
    from the first store holding it)."""
    files = {}
    for root in reversed(results_roots()):  # the store written last: its files win
        evals = root / "evals" / mkey
        for path in sorted(evals.glob("*.json")) if evals.is_dir() else []:
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    for rel, path in ((f"models/{mkey}.json", store.located(f"models/{mkey}.json")),
                      (f"models/{mkey}.pt", store.weights_path(mkey))):
        if path is not None and path.is_file():
            files[rel] = path.read_bytes()
    return files


def _order(rel: str) -> tuple:
    """Weights before their model record before evaluations: a record never names weights that
    are not there yet."""
    return (0 if rel.endswith(".pt") else 1 if rel.startswith("models/") else 2, rel)


def store_files(files: list[tuple[str, bytes]]) -> list[Path]:
    """Write a task's returned files into the results store, each atomically; returns their paths."""
    root = results_root().resolve()
    written = []
    for rel, content in sorted(files, key=lambda f: _order(f[0])):
        path = (root / rel).resolve()
        if not path.is_relative_to(root) or not (rel.startswith("models/") or rel.startswith("evals/")):
            raise RuntimeError(f"a Ray task returned a file outside the results store: {rel!r}")
        if path.suffix == ".json":
            store.write(json.loads(content), path)
        else:
            store.write_bytes(content, path)
        written.append(path)
    return written


# ----------------------------------------------------------------------------------------
# ray: the task (runs in a Ray worker process, which imports this module)
# ----------------------------------------------------------------------------------------

def run_task(configs: list[dict], seeded: dict[str, bytes], threads: int, data_dir: str | None) -> dict:
    """Compute `configs` (one model and its evaluations) into a temporary results root seeded
    with `seeded`; return the files written there that the driver's store lacks (new or changed),
    whether it succeeded, and the error if not. Restores the worker's environment afterwards
    (Ray reuses worker processes)."""
    import socket

    import torch

    saved_env = {k: os.environ.get(k) for k in ("ADVBOOK_RESULTS", "ADVBOOK_DATA")}
    saved_threads = torch.get_num_threads()
    result = {"ok": True, "error": None, "traceback": "", "host": socket.gethostname(),
              "code": {kind: store.code_hash(kind) for kind in ("model", "eval")}}
    remove_abandoned()
    with tempfile.TemporaryDirectory(prefix=f"advbook-ray-{os.getpid()}-") as tmp:
        root = Path(tmp)
        try:
            os.environ["ADVBOOK_RESULTS"] = tmp
            if data_dir and Path(data_dir).is_dir():  # the driver's data folder, where this node has it
                os.environ["ADVBOOK_DATA"] = data_dir
            torch.set_num_threads(threads)
            for rel, content in seeded.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(content)
            for i, config in enumerate(configs):
                get_or_compute(config, label=f"[ray {i + 1}/{len(configs)}]")
        except Exception as exc:
            result.update(ok=False, error=_one_line(exc), traceback=traceback.format_exc())
        finally:
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            torch.set_num_threads(saved_threads)
        result["files"] = new_files(root, seeded)
    return result


def remove_abandoned() -> None:
    """Remove the temporary results roots of workers that were killed (a cancelled task: Ctrl-C
    on the driver) before they could clean up; each root's name holds its worker's process id."""
    import shutil

    for folder in Path(tempfile.gettempdir()).glob("advbook-ray-*-*"):
        pid = folder.name.split("-")[2]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)  # no signal: does the process exist?
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def new_files(root: Path, seeded: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """The finished records and weights under `root` that are not in `seeded` as they are
    (locks, temporary files and training checkpoints left out)."""
    files = []
    for path in sorted(root.rglob("*")):
        name = path.name
        if not path.is_file() or name.startswith(".") or name.endswith((".lock", ".tmp", ".ckpt.pt")):
            continue
        rel = path.relative_to(root).as_posix()
        content = path.read_bytes()
        if seeded.get(rel) != content:
            files.append((rel, content))
    return files
