"""Audit your own model: `advbook audit` (advbook.model_audit) shown on models the book trained.

The page audits three of the primer's networks on the very images the primer attacked them on
(its AutoAttack images, drawn with its test seed): its PGD-AT network (sound), the same weights
behind an input quantizer (gradients masked by construction), and its FGSM-AT network (masked by
its training: FGSM's catastrophic overfitting). Each audit's report is a record,
audits/PROFILE/NAME-HASH.json in the results store (the hash of what was audited and how),
computed where the primer's weights are and committed with the store's records, so that a clone
without weights renders the page; other settings write other files, so a rerun with other
parameters never replaces the committed ones.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from .. import model_audit, store
from ..atomic import write_atomic
from ..data import _sha256
from ..experiments import compute_allowed, load_trained, prepare_data, say
from ..paths import results_root
from ..reporting import curve_figure
from . import Chapter, Parameter
from . import primer

PARAMETERS = [
    Parameter("seed", int, "the primer's training seed of the audited networks", 0, 2**31 - 1),
    Parameter("n", int, "test images audited: the first n of the primer's test subset (its AutoAttack images "
              "when n is the primer's autoattack_n, so that its numbers can be reproduced)", 1, 10**5),
    Parameter("levels", int, "the quantizer's steps per pixel (levels + 1 values)", 1, 255),
    Parameter("attack_seeds", list, "the audit's attack seeds", 0, 2**31 - 1, item_type=int),
    Parameter("budget", int, "seconds each audit may take, the attacks that would overrun skipped and named "
              "(0: none)", 0, 10**6),
]
PROFILES = {
    # the primer's smoke networks (digits): a pipeline check, not a result; AutoAttack's Square
    # (5,000 queries) alone takes minutes on a busy CPU, so the budget skips it, and the page says
    # so; 15 s an audit keeps the page's smoke run near a minute (README), its training included
    "smoke": {"seed": 0, "n": primer.PROFILES["smoke"]["autoattack_n"], "levels": 16, "attack_seeds": [0],
              "budget": 15},
    # the primer's cpu networks (MNIST, its StdCNN, eps 0.3), on its 200 AutoAttack images
    "cpu": {"seed": 0, "n": primer.PROFILES["cpu"]["autoattack_n"], "levels": 16, "attack_seeds": [0], "budget": 0},
}


class Quantize(nn.Module):
    """Each pixel rounded to one of `levels` + 1 values: the image hardly changes, and the input
    gradient is zero everywhere (round's derivative), so a gradient attack sees nothing."""

    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels

    def forward(self, x):
        return torch.round(x * self.levels) / self.levels


@dataclass(frozen=True)
class Audited:
    """One audited network: a primer defense, as trained or behind the quantizer."""
    name: str
    defense: str
    quantized: bool
    expect: str   # what a reader should expect of it, before the numbers

    def label(self, s: dict) -> str:
        base = primer.LABELS[self.defense]
        return f"{base} behind a {s['levels']}-step quantizer" if self.quantized else base


AUDITED = (
    Audited("pgd-at", "pgd", False, "sound: trained against multi-step PGD; every attack should agree"),
    Audited("pgd-at-quantized", "pgd", True, "masked by construction: the same weights, every input gradient zero; "
                                              "the attack that would evaluate it differentiates through the rounding "
                                              "as if it were the identity (BPDA), which the audit does not run"),
    Audited("fgsm-at", "fgsm", False, "masked by its training: single-step FGSM training can overfit to FGSM "
                                      "(catastrophic overfitting) and read robust to weak attacks only"),
)


def primer_settings(s: dict) -> dict:
    return primer.CHAPTER.settings(s["profile"])


def experiments(s: dict) -> list[dict]:
    """The primer's configs of the audited networks (seed `seed`): their records hold the numbers
    the audit reproduces; `advbook compute auditing` trains them where they are missing."""
    wanted = {a.defense for a in AUDITED}
    # named this page's (a config's chapter is not part of its model's key): what is missing here is
    # computed by `advbook compute auditing`, these two networks alone
    return [{**c, "chapter": "auditing"} for c in primer.experiments(primer_settings(s))
            if c["train"]["defense"] in wanted and c["train"]["seed"] == s["seed"]]


_CONFIGS: dict[tuple, dict[str, dict]] = {}  # {(profile, seed): {defense: config}}


def _config(s: dict, defense: str) -> dict:
    """The audited network's config, built once per profile and seed, all that `experiments`
    reads of the settings (the primer's experiments take a while to build, and every report's
    name asks for them)."""
    known = (s["profile"], s["seed"])
    if known not in _CONFIGS:
        _CONFIGS[known] = {c["train"]["defense"]: c for c in experiments(s)}
    return copy.deepcopy(_CONFIGS[known][defense])


def arguments(s: dict, a: Audited) -> dict:
    """What an audit of `a` is: the model, the threat model, the images and the attack seeds."""
    config = _config(s, a.defense)
    return {"chapter": "auditing", "model": store.model_key(config), "quantizer_levels": s["levels"] if a.quantized
            else None, "dataset": config["dataset"], "norm": "linf", "eps": f"{primer_settings(s)['eps']:g}",
            "n": s["n"], "test_seed": (config.get("subset") or {}).get("seed", 0), "seeds": list(s["attack_seeds"]),
            **({"budget": s["budget"]} if s["budget"] else {})}


def report_name(s: dict, a: Audited) -> str:
    """Where the report of `a` lives, relative to a results store."""
    wanted = arguments(s, a)
    digest = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:12]
    return f"audits/{s['profile']}/{a.name}-{digest}.json"


class _Progress(io.TextIOBase):
    """The audit's progress lines, sent where a page's progress goes (`experiments.say`: the
    terminal of `advbook run`, never the page)."""

    def __init__(self, label: str):
        self.label = label

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                say(f"audit of {self.label}: {line}")
        return len(text)


def _audit(s: dict, a: Audited) -> dict:
    """Run the audit of `a` (its weights must be here) and return the report."""
    import time

    wanted = arguments(s, a)
    network = load_trained(wanted["model"])
    model = nn.Sequential(Quantize(s["levels"]), network) if a.quantized else network
    config = _config(s, a.defense)
    dataset = prepare_data({**config, "subset": None})  # the whole test split: the audit draws its own images
    weights = store.weights_path(wanted["model"])
    described = {"model": a.label(s), "weights": f"the results store's model {wanted['model']}",
                 "weights_sha256": _sha256(weights), "parameters": sum(p.numel() for p in model.parameters()),
                 "normalization": "inside the model"}
    started = time.perf_counter()
    audit = model_audit.of_model(model, described, dataset, norm=wanted["norm"], eps_text=wanted["eps"],
                                 n=wanted["n"], test_seed=wanted["test_seed"], seeds=wanted["seeds"],
                                 budget=wanted.get("budget"), arguments=wanted)
    with contextlib.redirect_stdout(_Progress(a.label(s))):
        return model_audit.run(audit, started)


def reports(s: dict, compute: bool | None = None) -> dict[str, dict | None]:
    """{audited name: its report}: the stored one where it exists, else a fresh audit where the
    primer's weights are here and computing is allowed (`compute`, default as a page's records:
    `experiments.compute_allowed`), written whole, then kept; else None."""
    compute = compute_allowed() if compute is None else compute
    out = {}
    for a in AUDITED:
        stored = store.located(report_name(s, a))
        if stored:
            out[a.name] = json.loads(stored.read_text())
        elif compute and store.weights_path(arguments(s, a)["model"]).exists():
            report = _audit(s, a)
            text = json.dumps(report, indent=1, default=str)
            write_atomic(results_root() / report_name(s, a), "w", lambda f: f.write(text))
            out[a.name] = report
        else:
            out[a.name] = None
    return out


def provenance(s: dict, found: dict) -> str:
    """Where and how each audit ran (its report's device, commit, versions and wall time)."""
    lines = [f"- **{a.label(s)}**: {r['device']}, library commit {r['commit']}, torch {r['versions'].get('torch')}, "
             f"torchattacks {r['versions'].get('torchattacks')}, {r['wall_seconds']:.0f} s, "
             f"{r['dataset']['display_name']}, test images: {r['dataset']['images']}, attack seeds "
             f"{', '.join(map(str, r['seeds']))}"
             for a in AUDITED if (r := found.get(a.name)) is not None]
    return "**The audits' provenance** (each report a record in the results store):\n\n" + "\n".join(lines) \
        if lines else ""


def missing(s: dict, found: dict) -> list[str]:
    """What is missing, each with the command that makes it."""
    return [f"{a.label(s)}: no report at this page's settings and no weights of the primer's network here "
            f"(`advbook compute auditing --profile {s['profile']}` trains it, then rerun the page)"
            for a in AUDITED if found.get(a.name) is None]


def accuracy_table(s: dict, found: dict) -> pd.DataFrame:
    """Every attack's accuracy (percent) and the per-image worst case, one column per audited network."""
    columns = {}
    for a in AUDITED:
        report = found.get(a.name)
        if report is None:
            continue
        column = {at["name"]: 100 * at["accuracy"] for at in report["attacks"]}
        column["worst case over every attack, per image"] = 100 * report["worst_case"]["accuracy"]
        columns[a.label(s)] = column
    return pd.DataFrame(columns).round(1)


def checklist_table(s: dict, found: dict) -> pd.DataFrame:
    """The masking checklist, one column per audited network: passed, FAILED or not checked."""
    word = {True: "passed", False: "FAILED", None: "not checked"}
    columns = {a.label(s): {c["name"]: word[c["passed"]] for c in found[a.name]["checklist"]}
               for a in AUDITED if found.get(a.name) is not None}
    return pd.DataFrame(columns)


def failures(s: dict, found: dict) -> list[str]:
    """Each audited network's failed checks with what the check saw, and the attacks its budget skipped."""
    lines = []
    for a in AUDITED:
        report = found.get(a.name)
        if report is None:
            continue
        failed = [c for c in report["checklist"] if c["passed"] is False]
        skipped = "".join(f" Skipped: {x['name']} ({x['reason']})." for x in report["skipped"])
        lines.append(f"**{a.label(s)}** ({a.expect}): " + ("every check made passed." if not failed else
                     "; ".join(f"*{c['name']}* failed: {c['saw']}" for c in failed) + ".") + skipped)
    return lines


# the primer's evaluations the audit runs alike (same attack, parameters, images and seed)
SAME_AS_PRIMER = {"autoattack": "autoattack", "apgd-ce": "apgd-aa"}


def reproduction(s: dict, records: list[dict], found: dict) -> pd.DataFrame:
    """The primer's own numbers beside the audit's, on the same images: the images each classified
    right (the primer's records keep the count, not which images), for every measurement the two
    ran alike."""
    rows = []
    for a in AUDITED:
        report, record = found.get(a.name), next((r for r in records if r["config"]["train"]["defense"] == a.defense),
                                                 None)
        if a.quantized or report is None or record is None:
            continue
        specs = {spec["name"]: spec for spec in record["config"]["evaluate"]}
        for key, name in SAME_AS_PRIMER.items():
            ours = next((at for at in report["attacks"] if at["key"] == key), None)
            if ours is None or name not in record["metrics"] or specs[name]["n"] != report["worst_case"]["n"]:
                continue
            n = specs[name]["n"]
            theirs, mine = round(record["metrics"][name] * n), round(ours["per_seed"][str(s["attack_seeds"][0])] * n)
            rows.append({"network": a.label(s), "measurement": ours["name"],
                         "images": f"{n}, the primer's", "primer's record": f"{theirs} of {n}",
                         "audit": f"{mine} of {n}", "the same": "yes" if theirs == mine else "NO"})
    return pd.DataFrame(rows)


def sweep_figure(s: dict, found: dict):
    """Accuracy against eps (PGD, best iterate) for every audited network: a sound model's curve
    falls to 0; a masked one's stays up."""
    curves = {}
    for a in AUDITED:
        report = found.get(a.name)
        if report is not None:
            clean = next(at["accuracy"] for at in report["attacks"] if at["key"] == "clean")
            curves[a.label(s)] = {0.0: [clean], **{p["eps"]: [p["accuracy"]] for p in report["eps_sweep"]["points"]}}
    fig = curve_figure(curves, "eps (L-inf)", "accuracy (%)", "PGD-50 accuracy against eps (dotted: the audited eps)")
    fig.axes[0].axvline(float(primer_settings(s)["eps"]), color="grey", linestyle=":", linewidth=1)
    return fig


def summary(s: dict, records: list[dict]) -> list[dict]:
    """The audited networks' rows as the primer summarizes them (its own numbers, for sweeps)."""
    return primer.summary(primer_settings(s), records)


CHAPTER = Chapter("auditing", "Audit your own model", PARAMETERS, PROFILES, experiments, summary, group_by="defense")
