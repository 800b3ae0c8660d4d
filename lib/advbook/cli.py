"""`advbook` (also `python -m advbook`): list, run, sweep and compute chapters; bench.

    advbook list
    advbook run CHAPTER [--profile P] [-p NAME VALUE ...] [--if-missing] [--output PATH] [--[no-]compute]
    advbook sweep CHAPTER --grid NAME=V1,V2 [--grid ...] [--profile P] [--engine ray [--address A]]
    advbook compute CHAPTER... | all [--profile P] [-p NAME VALUE ...] [--budget SECONDS] [--dry-run]
                    [--stale] [--retrain KEY,...] [--shard K/N] [--engine ray [--address A]]
    advbook verdicts    (book/verdicts.md, every chapter's claims, from the executed notebooks)
    advbook prune [--delete]   (the store's records no page reads; see advbook.pruning)
    advbook export --output ARCHIVE [--since COMMIT | --all] [--chapter NAME --profile P] [--weights]
    advbook import ARCHIVE_OR_RECORD [...]     (see advbook.exchange)
    advbook audit (--arch NAME | --model MODULE:CALLABLE) --weights FILE --dataset NAME --eps EPS --output DIR
                  [--norm linf|l2] [--n N] [--seeds S,...] [--budget SECONDS]   (see advbook.model_audit)

Parameters are validated before anything runs; a chapter's executed notebook is replaced
only when its new run succeeds. This module parses and dispatches; executing a notebook is
`advbook.notebooks`', a sweep `advbook.sweeps`', computing `advbook.engines`'.
"""
from __future__ import annotations

import argparse
import re
import os
import sys
from pathlib import Path

from . import chapters, profiles
from .errors import ONE_LINE, ParameterError
from .engines import ENGINES
from .notebooks import execute_notebook
from .paths import BOOK, STORES, store_name



def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="advbook", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"advbook {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="chapters, profiles and parameters with their defaults")
    sub.add_parser("verdicts", help="write book/verdicts.md, every chapter's claims, from the executed notebooks")
    prune = sub.add_parser("prune", help="list the store's records that no chapter reads at any profile "
                                         "(--delete removes them; git keeps them in history)")
    prune.add_argument("--delete", action="store_true", help="remove them")

    def chapter_command(name, help_text, many=False):
        p = sub.add_parser(name, help=help_text)
        if many:
            p.add_argument("chapters", nargs="+", metavar="CHAPTER", help="one or more chapters, or all")
        else:
            p.add_argument("chapter")
        p.add_argument("--profile", default=profiles.DEFAULT, choices=profiles.NAMES,
                       help=f"the scale (default {profiles.DEFAULT}, which decides nothing)")
        p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       help="override a chapter parameter (lists: comma-separated)")
        p.add_argument("--data-root", type=Path, help="folder holding the offline dataset files "
                       "(default: $ADVBOOK_DATA, else data/datasets/)")
        return p

    run = chapter_command("run", "execute a chapter notebook into book/CHAPTER.ipynb")
    run.add_argument("--if-missing", action="store_true", help="do nothing if the executed notebook exists")
    run.add_argument("--output", type=Path, help="where the executed notebook goes (default book/CHAPTER.ipynb)")
    run.add_argument("--replace", action="store_true",
                     help="let a run at a smaller scale replace the book's chapter (a cpu page by a smoke run, say)")
    run.add_argument("--compute", action=argparse.BooleanOptionalAction, default=None,
                     help="compute the missing records (default: yes for the smoke and cpu profiles; for a GPU "
                          "profile the notebook renders the stored records and lists the missing ones)")
    run.add_argument("--force-cpu", action="store_true", help="allow --compute of a GPU profile with no GPU")

    def engine_options(p):
        p.add_argument("--engine", default="serial", choices=ENGINES,
                       help="serial: in this process (default); ray: one Ray task per missing model, "
                            "run at once on a local Ray instance or the cluster at --address")
        p.add_argument("--address", help="an existing Ray cluster (e.g. HEAD_IP:6379 or auto) for --engine ray; "
                       "default: start a local Ray instance")

    compute = chapter_command("compute", "compute chapters' result records without a notebook, most valuable "
                              "first (for a GPU machine or a Ray cluster)", many=True)
    engine_options(compute)
    compute.add_argument("--budget", type=float, metavar="SECONDS",
                         help="stop within this many seconds: start no model expected to overrun them, and "
                              "interrupt the running one at the end (serial engine)")
    compute.add_argument("--dry-run", action="store_true", help="print the plan (models, estimated minutes, and "
                         "with --budget the windows of that length) and compute nothing")
    compute.add_argument("--shard", metavar="K/N", help="compute the K-th of N disjoint shares of the models (by "
                         "model key; a transfer attack goes with its source), so that N processes of one thread "
                         "each share a small machine's cores: OMP_NUM_THREADS=1 ... --shard 1/2 & ... --shard 2/2 &")
    compute.add_argument("--bench", type=Path, metavar="PATH", help="estimate with this bench record (or the newest "
                         "in this folder) instead of the newest of this device in data/bench/")
    compute.add_argument("--force-cpu", action="store_true", help="allow a GPU profile (fast, paper) with no GPU")
    compute.add_argument("--stale", action="store_true", help="also compute again the records made by other library "
                         "code than this checkout's (those the provenance flags as stale); each is replaced only "
                         "when its successor is written whole")
    compute.add_argument("--retrain", metavar="KEY,...", help="also train again these stored models (their keys, "
                         "comma-separated), e.g. to time them on an idle machine; each is replaced, with its "
                         "evaluations, only when its successor is written whole")
    sweep = chapter_command("sweep", "one run per grid point, collected into a CSV and a plot")
    engine_options(sweep)
    sweep.add_argument("--grid", action="append", required=True, metavar="NAME=V1,V2",
                       help="a parameter and its values; repeat for a product grid")
    sweep.add_argument("--output-dir", type=Path, help="default data/sweeps/CHAPTER/")

    from .bench import add_arguments as bench_arguments
    bench_arguments(sub.add_parser("bench", help="training throughput against a reference loop"))

    export = sub.add_parser("export", help="pack the records a run wrote into one tar.gz, to import elsewhere",
                            description="Pack records (model, evaluation and bench records; weights with --weights) "
                            "with a manifest into one tar.gz. Default: the records git does not hold with the "
                            "same content at HEAD, i.e. the ones computed here since the last commit.")
    export.add_argument("--output", "-o", type=Path, required=True, help="the archive to write (.tar.gz)")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--since", metavar="COMMIT", help="only records not in COMMIT with the same content "
                       "(default HEAD, unless --chapter is given)")
    which.add_argument("--all", action="store_true", help="every record of the store and data/bench/")
    export.add_argument("--chapter", action="append", default=[], help="only the records of this chapter's "
                        "experiments (repeatable; performance: the bench records)")
    export.add_argument("--profile", default=profiles.DEFAULT, choices=profiles.NAMES,
                        help="the profile of --chapter's experiments")
    export.add_argument("--weights", action="store_true", help="also the selected models' weights (.pt; "
                        "about 45 MB a PreAct ResNet-18)")
    imp = sub.add_parser("import", help="check records from an export (or plain record files) and merge them "
                         "into the store, all or nothing",
                         description="Check every record (manifest, paths, schema, commit) and merge into the "
                         "store all or nothing: new records are written, identical ones skipped, conflicting "
                         "ones kept apart under conflicts/; records of other library code are imported and "
                         "reported stale. A plain JSON record goes to the path its content gives.")
    imp.add_argument("sources", nargs="+", type=Path, metavar="ARCHIVE_OR_RECORD",
                     help="a tar.gz written by `advbook export`, or a record file (.json)")
    for p in (prune, run, compute, sweep, export, imp):
        p.add_argument("--store", choices=sorted(STORES), default=None,
                       help="the results store written: local (default; data/local/, ignored by git, read before "
                            "the book's data/results/ beneath it) or book (the committed store, for a maintainer "
                            "computing or pruning the book's records); $ADVBOOK_RESULTS overrides both")
    audit = sub.add_parser("audit", help="evaluate your own checkpoint offline: attacks, worst case, masking "
                           "checklist, report.html and report.json",
                           description="Put a model's weights through the book's evaluation: clean accuracy, FGSM, "
                           "PGD with restarts, APGD-CE, AutoAttack, transfer from a surrogate, the per-image worst "
                           "case, an eps sweep and the masking checklist, on the first --n test images; a report "
                           "into --output. Nothing is written to the results store.")
    which = audit.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", metavar="NAME", help="an architecture of the library (advbook.models.ARCHITECTURES)")
    which.add_argument("--model", metavar="MODULE:CALLABLE", help="your own: CALLABLE() from MODULE, importable "
                       "from the working directory, returns the torch.nn.Module")
    audit.add_argument("--width", type=int, help="--arch's channel width (default: the architecture's own)")
    audit.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                       help="an option of --arch's architecture (the value read as JSON where it parses); repeatable")
    audit.add_argument("--weights", type=Path, required=True, help="a state dict saved with torch.save "
                       "(read with weights_only=True)")
    audit.add_argument("--dataset", required=True, help="digits, mnist or cifar10-jpeg (the CIFAR-10 JPEG q75 copy)")
    audit.add_argument("--mean", help="per-channel mean, comma-separated: a normalization put in front of the model "
                       "(default: the model normalizes [0, 1] pixels itself)")
    audit.add_argument("--std", help="per-channel std, comma-separated (with --mean)")
    audit.add_argument("--norm", default="linf", help="the threat model's norm: linf (default) or l2")
    audit.add_argument("--eps", required=True, help="the budget, a number or a fraction: 0.3, 8/255")
    audit.add_argument("--n", type=int, help="test images, the first of the test split (default 1000, or all "
                       "if fewer)")
    audit.add_argument("--test-seed", type=int, metavar="SEED", help="take the --n test images the book's records "
                       "draw with this seed instead of the first (a chapter's images: its records' 'test' seed)")
    audit.add_argument("--seeds", default="0", help="attack seeds, comma-separated (default 0)")
    audit.add_argument("--budget", type=float, metavar="SECONDS", help="skip the attacks expected not to finish "
                       "within this many seconds of the start, and stop one that overruns (at its next batch)")
    audit.add_argument("--output", type=Path, required=True, help="a new or empty folder for the report")
    audit.add_argument("--data-root", type=Path, help="folder holding the offline dataset files "
                       "(default: $ADVBOOK_DATA, else data/datasets/)")
    return parser


def cmd_list(_args) -> int:
    for chapter in chapters.all_chapters():
        print(f"{chapter.name}: {chapter.title}")
        print(f"  profiles: {', '.join(chapter.profiles)}")
        for p in chapter.parameters:
            defaults = " | ".join(f"{prof}={chapter.profiles[prof].get(p.name)!r}" for prof in chapter.profiles)
            limits = []
            if p.choices:
                limits.append("one of " + ",".join(map(str, p.choices)))
            if p.minimum is not None:
                limits.append(f">= {p.minimum}")
            if p.maximum is not None:
                limits.append(f"<= {p.maximum}")
            kind = f"list[{p.item_type.__name__}]" if p.type is list else p.type.__name__
            print(f"  - {p.name} ({kind}{'; ' + '; '.join(limits) if limits else ''}): {p.help}")
            print(f"      {defaults}")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from .store import library_commit

    try:
        return f"{version('advbook')} (commit {library_commit()})"
    except PackageNotFoundError:
        return f"unknown (commit {library_commit()})"


def _validated(args):
    """The chapter and its validated settings, or ParameterError before any work: parameters,
    the data root, a writable results store; a warning when a GPU profile starts on a CPU."""
    from .paths import results_root, writable

    chapter = chapters.get(args.chapter)
    overrides = chapter.parse_overrides(args.param)
    settings = chapter.settings(args.profile, **overrides)
    if getattr(args, "data_root", None) is not None:
        if not args.data_root.is_dir():
            raise ParameterError(f"--data-root {args.data_root} is not a folder")
        os.environ["ADVBOOK_DATA"] = str(args.data_root.resolve())  # the notebook kernel inherits it
    writable(results_root(), "results store")
    if getattr(args, "address", None) is not None and args.engine != "ray":
        raise ParameterError("--address needs --engine ray")
    if getattr(args, "engine", "serial") == "ray":
        from .engines import import_ray
        import_ray()  # installed, or a one-line error before any work
    # compute and run refuse to train a GPU profile here (_refuse_gpu_profile_on_cpu); the rest warn
    if getattr(args, "command", None) not in ("compute", "run") and profiles.get(args.profile).on_gpu:
        import torch

        if not torch.cuda.is_available():
            print(f"advbook: warning: the '{args.profile}' profile is planned for a GPU (about 15 GPU-minutes a "
                  "chapter for fast) and no GPU is visible: on this CPU it may take hours to days. The 'cpu' "
                  "profile is planned for 2 CPU cores.", file=sys.stderr)
    return chapter, overrides, settings


def _model_keys(text: str | None) -> frozenset:
    """--retrain's comma-separated model keys (16 hex digits each, as the records name them)."""
    if text is None:
        return frozenset()
    keys = [k.strip() for k in text.split(",")]
    bad = [k for k in keys if len(k) != 16 or any(c not in "0123456789abcdef" for c in k)]
    if bad:
        raise ParameterError(f"--retrain takes model keys of 16 hex digits, comma-separated; got {', '.join(bad) or text!r}")
    return frozenset(keys)


def _retrain(keys: frozenset, selected: list):
    """The `experiments.Retrain` of `keys`, each of which must be a model of the selected
    chapters' experiments; None without keys."""
    if not keys:
        return None
    from .experiments import Retrain
    from .store import model_key

    known = {model_key(c) for chapter, settings in selected for c in chapter.experiments(settings)}
    if keys - known:
        raise ParameterError(f"--retrain {', '.join(sorted(keys - known))}: not a model of "
                             f"{', '.join(chapter.name for chapter, _ in selected)} at these settings")
    return Retrain.starting_now(keys)


def _refuse_gpu_profile_on_cpu(profile: str, force: bool) -> None:
    """A GPU profile is never trained on a CPU by accident: a one-line error unless forced."""
    import torch

    if profiles.get(profile).on_gpu and not force and not torch.cuda.is_available():
        raise ParameterError(f"the '{profile}' profile is planned for a GPU and no GPU is visible (on this CPU it "
                             "would take hours to days); --force-cpu computes it anyway, and the 'cpu' profile "
                             "is planned for 2 CPU cores")



def _check_output(output: Path, profile: str, replace: bool) -> None:
    """Before any work: `output` must be a notebook path (not a folder), and a run never replaces an
    executed chapter of a larger scale unless asked (`--replace`)."""
    if output.is_dir():
        raise ParameterError(f"--output {output} is a folder: name the notebook to write, e.g. {output / 'CHAPTER.ipynb'}")
    if not output.exists() or replace:
        return
    import json

    try:
        existing = json.loads(output.read_text())["metadata"]["papermill"]["parameters"]["profile"]
    except (ValueError, KeyError, TypeError):
        return  # not an executed chapter: papermill's own run replaces it as before
    if existing in profiles.PROFILES and profiles.get(existing).rank > profiles.get(profile).rank:
        raise ParameterError(f"{output} holds the '{existing}' run, a larger scale than '{profile}': --output writes "
                             "this run elsewhere, --replace replaces it")


def cmd_run(args) -> int:
    from .planning import missing_models

    chapter, overrides, settings = _validated(args)
    output = args.output or BOOK / f"{chapter.name}.ipynb"
    if args.if_missing and output.exists():
        print(f"{output} exists; skipped (--if-missing)")
        return 0
    _check_output(output, args.profile, args.replace)
    compute = args.compute if args.compute is not None else not profiles.get(args.profile).on_gpu
    if compute:
        _refuse_gpu_profile_on_cpu(args.profile, args.force_cpu)
    configs = chapter.experiments(settings)
    models, untrained, short = missing_models(configs)
    if compute and (untrained or short):
        from .data import load

        for name, root in dict.fromkeys((c["dataset"], c.get("data_root")) for c in configs):
            load(name, root)  # a missing or corrupt file: one line naming it, before any work
    if untrained or short:
        print(f"{chapter.name} ({args.profile}): of {models} models, {untrained} not trained and {short} with "
              "evaluations missing: " + ("computing them" if compute else "not computed (--compute computes them; "
              f"on a GPU: advbook compute {chapter.name} --profile {args.profile}); the page shows what is stored"),
              flush=True)
    # the notebook kernel inherits the environment: experiments.collect computes nothing when told so
    previous = os.environ.get("ADVBOOK_COMPUTE")
    os.environ["ADVBOOK_COMPUTE"] = "1" if compute else "0"
    try:
        execute_notebook(chapter.name, {"profile": args.profile, "overrides": overrides}, output)
    finally:
        if previous is None:
            os.environ.pop("ADVBOOK_COMPUTE", None)
        else:
            os.environ["ADVBOOK_COMPUTE"] = previous
    print(f"wrote {output}")
    if output.resolve().parent == BOOK.resolve():  # the What holds page follows the book's chapters
        _write_verdicts()
    return 0


def cmd_compute(args) -> int:
    from . import planning
    from .device import default_device
    from .engines import compute, run_queue

    started = planning.now()  # the budget counts from here: planning takes its share
    names = list(chapters.CHAPTER_MODULES) if args.chapters == ["all"] else list(dict.fromkeys(args.chapters))
    if args.param and len(names) > 1:
        raise ParameterError("-p applies to one chapter; give one chapter with it")
    if args.budget is not None and not args.budget > 0:
        raise ParameterError(f"--budget must be a positive number of seconds, got {args.budget:g}")
    if args.budget is not None and args.engine != "serial":
        raise ParameterError("--budget needs --engine serial (one GPU: the models run one after the other)")
    if (args.stale or args.retrain) and args.engine != "serial":
        raise ParameterError("--stale and --retrain need --engine serial")
    shard = _shard(args.shard)
    if shard and args.engine != "serial":
        raise ParameterError("--shard needs --engine serial (ray shares the models out itself)")
    retrain_keys = _model_keys(args.retrain)
    if args.bench is not None and not args.bench.exists():
        raise ParameterError(f"--bench {args.bench} does not exist")
    selected = []
    for name in names:
        if args.chapters == ["all"] and args.profile not in chapters.get(name).profiles:
            continue  # `all`: the chapters that have this profile
        chapter, _, settings = _validated(argparse.Namespace(**{**vars(args), "chapter": name}))
        selected.append((chapter, settings))
    retrain = _retrain(retrain_keys, selected)
    if not args.dry_run:
        _refuse_gpu_profile_on_cpu(args.profile, args.force_cpu)
    if args.engine == "ray" and not args.dry_run:
        configs = [c for chapter, settings in selected for c in chapter.experiments(settings)]
        failures = compute(configs, engine="ray", address=args.address,
                           desc=f"{', '.join(c.name for c, _ in selected)} ({args.profile})")
        return _report_failures(failures, args.debug)
    # a GPU profile's dry run on a machine with no GPU plans for the GPU of the newest GPU bench record
    rates = planning.device_rates(default_device(), args.bench, for_gpu=profiles.get(args.profile).on_gpu)
    items, complete = planning.plan(selected, rates, recompute_stale=args.stale, retrain=retrain)
    if shard:
        items = planning.shard(items, *shard)
        print(f"shard {shard[0]} of {shard[1]}: {len(items)} items", flush=True)
    print(planning.plan_table(items, rates, complete=complete, budget=args.budget), flush=True)
    if args.dry_run:
        return 0
    return _report_failures(run_queue(items, budget=args.budget, started=started, recompute_stale=args.stale,
                                      retrain=retrain),
                            args.debug)


def _shard(text: str | None) -> tuple[int, int] | None:
    """'K/N' as (K, N), 1 <= K <= N; a ParameterError otherwise."""
    if text is None:
        return None
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not found or not 1 <= int(found.group(1)) <= int(found.group(2)):
        raise ParameterError(f"--shard takes K/N with 1 <= K <= N (e.g. 1/2), got {text!r}")
    return int(found.group(1)), int(found.group(2))


def _report_failures(failures, debug: bool = False) -> int:
    """One line per failed task (the ray engine goes on past them), with its traceback under
    --debug; exit code 1 if any."""
    for failure in failures:
        if debug and failure.traceback:
            print(failure.traceback, file=sys.stderr)
        print(f"advbook: failed: {failure}", file=sys.stderr)
    if failures:
        tasks = "1 task" if len(failures) == 1 else f"{len(failures)} tasks"
        print(f"advbook: error: {tasks} failed (above); every other record is stored, and a rerun computes only "
              "what is missing (--debug shows the tracebacks)", file=sys.stderr)
    return 1 if failures else 0


def cmd_sweep(args) -> int:
    from .sweeps import parse_grid, run

    chapter, overrides, _ = _validated(args)
    failures, _ = run(chapter, args.profile, overrides, parse_grid(chapter, args.grid), output_dir=args.output_dir,
                      engine=args.engine, address=args.address)
    return _report_failures(failures, args.debug)


def cmd_verdicts(args) -> int:
    from .audit import audit

    problems = audit()
    for problem in problems:
        print(f"advbook verdicts: {problem}", file=sys.stderr)
    if problems:
        print(f"advbook verdicts: {len(problems)} rendered verdicts do not follow from their records under the "
              "book's guards; book/verdicts.md not written", file=sys.stderr)
        return 1
    _write_verdicts()
    return 0


def _write_verdicts() -> None:
    """Write What holds (book/verdicts.md, .json, rule.md), and warn where it came out poorer."""
    from .deciding import UNPLANNED
    from .verdicts import write

    print(f"wrote {write()}")
    for why in sorted(UNPLANNED):  # a dataset missing: the page says less than it could
        print(f"advbook: warning: What holds says 'cost not planned here' where it would give minutes: {why}",
              file=sys.stderr)


def cmd_prune(args) -> int:
    from . import pruning
    from .paths import results_root

    found = pruning.unused()
    root = results_root()
    print(f"{len(found.models)} model files and {len(found.evals)} evaluation records in {root} are read by no "
          f"chapter at any profile ({found.size() / 1e6:.1f} MB)")
    for path in found.paths[:20]:
        print(f"  {path.relative_to(root)}")
    if len(found.paths) > 20:
        print(f"  ... and {len(found.paths) - 20} more")
    if args.delete:
        print(f"deleted {pruning.delete(found)} files")
    elif found.paths:
        print("advbook prune --delete removes them")
    return 0


def cmd_export(args) -> int:
    from . import exchange
    from .paths import BENCH, results_root

    if args.all and args.chapter:
        raise ParameterError("--all and --chapter select differently; give one")
    since = args.since if args.since is not None else None if args.all or args.chapter else "HEAD"
    try:
        files, selection = exchange.select(results_root(), BENCH, since=since, chapters=args.chapter,
                                           profile=args.profile, weights=args.weights)
        manifest = exchange.export(args.output, files, selection)
    except exchange.Refused as exc:
        return _refused(f"nothing exported from the store {results_root()} (--store book: the book's)", exc)
    counts = {}
    for f in manifest["files"]:
        kind = exchange._kind(f["path"])
        counts[kind] = counts.get(kind, 0) + 1
    print(f"wrote {args.output}: {len(manifest['files'])} files ("
          + ", ".join(f"{n} {kind}" for kind, n in counts.items())
          + f"), {args.output.stat().st_size / 1e6:.2f} MB; selection: {selection}")
    return 0


def cmd_import(args) -> int:
    from . import exchange

    try:
        report = exchange.import_records(args.sources)
    except exchange.Refused as exc:
        return _refused("nothing imported", exc)
    for line in exchange.describe(report):
        print(line)
    return 0


def cmd_audit(args) -> int:
    import time

    from . import model_audit

    started = time.perf_counter()  # the budget counts from here: checking the model takes its share
    audit = model_audit.prepare(args)
    report = model_audit.run(audit, started)
    print(model_audit.summary(report))
    print("wrote " + ", ".join(map(str, model_audit.write_report(report, audit.output))))
    return 0


def _refused(what: str, exc) -> int:
    """One line per problem, then what was (not) done; exit code 2."""
    for line in exc.lines:
        print(f"advbook: refused: {line}", file=sys.stderr)
    print(f"advbook: error: {what} ({len(exc.lines)} problem{'s' if len(exc.lines) > 1 else ''} above)",
          file=sys.stderr)
    return 2


COMMANDS = {"list": cmd_list, "run": cmd_run, "compute": cmd_compute, "sweep": cmd_sweep, "verdicts": cmd_verdicts,
            "prune": cmd_prune, "export": cmd_export, "import": cmd_import, "audit": cmd_audit}


def _terminate(signum, frame):
    # SIGTERM ends the run as Ctrl-C does, so that every `finally` and temporary folder cleans up.
    # The notebook kernel's shutdown then sends the process group a SIGINT; ignored from here on,
    # it cannot interrupt the cleanup itself (which ended the process by SIGINT, about 1 run in 6)
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv=None) -> int:
    import signal

    args = _parser().parse_args(argv)
    if threading_main():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        if getattr(args, "store", None):
            os.environ["ADVBOOK_STORE"] = args.store  # the notebook kernel and Ray's driver inherit it
        store_name()  # a bad $ADVBOOK_STORE is one line, before any work
        if args.command == "bench":
            from .bench import main as bench_main
            return bench_main(args)
        return COMMANDS[args.command](args)
    except ONE_LINE as exc:
        if args.debug:
            raise
        print(f"advbook: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # the notebook kernel's shutdown may send the process group one more SIGINT: the cleanup
        # has run by now, so a second interrupt must not turn exit code 130 into a crash
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("advbook: interrupted; every record written so far is complete, and a rerun computes the rest",
              file=sys.stderr)
        if argv is None:  # the command line: leave now. The kernel's SIGINT may still be in flight
            # and a library (asyncio) may have put Python's handler back, which then ended the
            # process by SIGINT after this line (about 1 run in 20); everything is cleaned up by now
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
