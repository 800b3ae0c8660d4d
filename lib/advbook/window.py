"""One GPU window, one command: `make window BUDGET=480 OUT=folder` (or `python -m advbook.window
--budget 480 --output folder`).

A window is one GPU for a few minutes with nothing kept afterwards, so everything it computes
must leave in the output folder. Within `--budget` seconds from its start, the script

1. records the environment (device, torch, Python, commit) in OUT/environment.json;
2. runs a short `advbook bench` (PreActResNet-18, our loop only, 10,240 images a timed epoch)
   into OUT when the bench folder (data/bench/) has no record of this device at this commit, so
   that the estimates use today's speed;
3. computes the queue of every chapter (`advbook compute all --budget ...`: the claims' models
   first) in the time left, keeping `--reserve` seconds for the export; its log goes to
   OUT/compute.log;
4. exports the results store into OUT/records.tar.gz (`advbook export`);

and writes OUT/window.json (each step's seconds and exit code). On a GPU the profile is `fast`;
on a CPU the same steps run with `smoke` (how its tests run). Exit code: 0 if every step
succeeded, else the first failing step's.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from . import profiles
from .paths import BENCH, PROJECT_ROOT, results_root

STARTUP_SECONDS = 15.0  # a step's start (Python, torch), where this process cannot measure its own

# the short bench of a window: our loop only, on the model the estimates scale from
GPU_BENCH = ["--models", "preact-resnet18", "--no-reference", "--images", "10240"]
CPU_BENCH = ["--models", "small-cnn", "--no-reference", "--workers", "0", "--images", "512", "--batch-size", "128"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="advbook.window", description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, required=True, help="seconds the window has, from the script's start")
    p.add_argument("--output", type=Path, required=True, help="folder for everything the window produces")
    p.add_argument("--profile", default=None, help="default: fast on a GPU, smoke on a CPU")
    p.add_argument("--reserve", type=float, default=60.0, help="seconds kept for the export (default 60)")
    p.add_argument("--bench-dir", type=Path, default=BENCH, help="where bench records are looked for (default "
                   "data/bench/)")
    p.add_argument("--no-export", action="store_true", help="skip the export (tests; a checkout without it)")
    return p


def advbook(*args: str) -> list[str]:
    """The command line of `advbook ARGS` with this checkout's library."""
    return [sys.executable, "-m", "advbook", *args]


def environment(device) -> dict:
    import torch

    from .store import environment as env
    from .store import library_commit

    out = {**env(device), "commit": library_commit(), "host": socket.gethostname(), "platform": platform.platform(),
           "cuda": torch.version.cuda, "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return out


def bench_record(folder: Path, device_name: str, commit: str) -> Path | None:
    """A bench record of this device at this commit in `folder`, if any."""
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if record.get("kind") == "bench" and not record.get("quick") and record.get("device") == device_name \
                and record.get("commit") == commit:
            return path
    return None


def run(command: list[str], log: Path | None, timeout: float | None) -> int:
    """Run a step, its output on the terminal and in `log`; its exit code, 124 if it was still
    running after `timeout` seconds (then stopped with SIGTERM, which the CLI handles as Ctrl-C)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT / "lib"),
                                                                     os.environ.get("PYTHONPATH")) if p)}
    print("$ " + " ".join(command), flush=True)
    with open(log if log else os.devnull, "w") as sink:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                   cwd=PROJECT_ROOT)
        overran = threading.Event()

        def stop():
            overran.set()
            process.terminate()
        timer = threading.Timer(timeout, stop) if timeout is not None else None
        if timer:
            timer.start()
        try:
            for line in process.stdout:
                sys.stdout.write(line)
                sink.write(line)
            code = process.wait()
        finally:
            if timer:
                timer.cancel()
            if process.poll() is None:
                process.terminate()
                process.wait()
    return 124 if overran.is_set() else code


def process_started() -> float | None:
    """When this process started, on the `time.monotonic()` clock (Linux; None elsewhere)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.monotonic() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def main(argv=None) -> int:
    from . import cli  # noqa: F401  (what a step's `advbook` imports before its own clock starts)
    from .device import default_device
    from .store import write

    started = time.monotonic()
    # a step's budget counts from its own start, after Python and the library (torch) are loaded:
    # as long as this process took to get here, when it can tell
    began = process_started() if argv is None else None
    startup = min(started - began, 60.0) if began is not None else STARTUP_SECONDS
    args = _parser().parse_args(argv)
    if not args.budget > 0 or args.reserve < 0:
        print("advbook.window: error: --budget must be positive and --reserve not negative", file=sys.stderr)
        return 2
    device = default_device()
    profile = args.profile or profiles.smallest_on("gpu" if device.type == "cuda" else "cpu")
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = environment(device)
    env.update(budget_seconds=args.budget, profile=profile, results=str(results_root()))
    write(env, out / "environment.json")
    print(f"window on {env['device']} (torch {env['torch']}, commit {env['commit']}), {args.budget:.0f} s, "
          f"profile {profile}; output {out}", flush=True)
    steps = {}

    def left() -> float:
        return args.budget - (time.monotonic() - started)

    def step(name, command, log=None, timeout=None):
        begun = time.monotonic()
        code = run(command, log, timeout)
        steps[name] = {"exit_code": code, "seconds": round(time.monotonic() - begun, 1)}
        return code

    bench = bench_record(args.bench_dir, env["device"], env["commit"])
    if bench is None:
        record = out / f"bench-{device.type}.json"
        flags = GPU_BENCH if device.type == "cuda" else CPU_BENCH
        if step("bench", advbook("bench", *flags, "--output", str(record)), out / "bench.log",
                timeout=max(left() - args.reserve, 1)) == 0:
            bench = record
    else:
        steps["bench"] = {"skipped": f"{bench} is of this device and commit"}
    compute_seconds = left() - args.reserve - startup
    if compute_seconds >= 10:
        command = advbook("compute", "all", "--profile", profile, "--budget", f"{compute_seconds:.0f}")
        if bench is not None:
            command += ["--bench", str(bench)]
        if profiles.get(profile).on_gpu and device.type != "cuda":
            command.append("--force-cpu")
        step("compute", command, out / "compute.log", timeout=compute_seconds + startup + 15)
    else:
        steps["compute"] = {"skipped": f"{compute_seconds:.0f} s left after the reserve"}
    if args.no_export:
        steps["export"] = {"skipped": "--no-export"}
    else:
        step("export", advbook("export", "--output", str(out / "records.tar.gz")), out / "export.log")
    summary = {"profile": profile, "budget_seconds": args.budget, "seconds": round(time.monotonic() - started, 1),
               "steps": steps}
    write(summary, out / "window.json")
    codes = [s.get("exit_code", 0) for s in steps.values()]
    failed = next((c for c in codes if c), 0)
    print(f"window done in {summary['seconds']:.0f} s of {args.budget:.0f}: "
          + ", ".join(f"{k} {v.get('exit_code', 'skipped')}" for k, v in steps.items()), flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
