"""One gradient-masking checklist for the whole book, with one set of stated tolerances.

An estimate of robust accuracy is believed only if the attacks behave as attacks do on a model
whose gradients are honest (Athalye et al. 2018; Carlini et al. 2019, "On Evaluating Adversarial
Robustness"). Every chapter runs the same checks on its headline models:

- **by construction** (a failure is a bug in the evaluation, never a finding): robust accuracy
  never above clean accuracy; the iterations sweep (best iterate, one fixed random start) never
  rises; the eps sweep at eps = 0 equals clean accuracy;
- **signs of masking** (a failure means an estimate we should not believe): multi-step PGD not
  above one-step FGSM by more than `TOLERANCE["pgd_over_fgsm"]` points; the eps sweep down to
  at most `TOLERANCE["largest_eps"]` points at its largest budget; AutoAttack never above
  APGD-CE or PGD (AutoAttack runs APGD-CE first, so it can only be lower), each measured on
  AutoAttack's own images (the roles `apgd` and `pgd_aa`; without `pgd_aa`, the chapter's PGD);
  and the other direction, PGD not above AutoAttack by more than `TOLERANCE["pgd_over_autoattack"]`
  points on the same images (a PGD that much weaker than AutoAttack overstates robustness: a
  number read from it is not believed), nor above APGD-CE by as much (for a chapter that runs
  APGD-CE without AutoAttack); and a claim's robust accuracy, the per-image worst case of a suite of
  attacks (`advbook.per_image`), not above AutoAttack by as much on AutoAttack's images (a worst
  case of attacks all weaker than AutoAttack is no measurement);
- **sanity checks** (`advbook.checks`, run before every evaluation): what they found on any of
  the model's evaluations, in words ("none", or "n/a" for records made before they existed).

Two numbers are compared only on the same test images: as recorded where both were measured on
them (`claims.images_of`), else on the first images both ran on, from their per-image outcomes
(`per_image.on_shared_images`: AutoAttack on the first 200 of PGD's 1,000, say, for a model that is
deterministic at test time); otherwise the check says "n/a: different images" instead of
subtracting unlike things.
"""
from __future__ import annotations

from . import per_image
from .checks import warnings
from .claims import images_of
from .per_image import Suite

TOLERANCE = {
    "construction": 1e-9,   # exact up to float printing: these hold by how the evaluation is built
    "pgd_over_fgsm": 1.0,   # points; PGD's random start can leave it a hair above FGSM on a few images
    "largest_eps": 2.0,     # points left at the sweep's largest budget
    "autoattack": 1e-9,     # AutoAttack contains APGD-CE: never above it on the same images
    "pgd_over_autoattack": 5.0,  # points; on a model with honest gradients PGD with restarts lands within a few
                                 # points of AutoAttack (RobustBench's re-evaluations), and 5 is 2.5 images of 50
}
BY_CONSTRUCTION = ("robust <= clean", "steps sweep never rises", "eps 0 = clean")
# the checks whose failure means a robust accuracy of the model is not believed
WORST_OVER_AUTOATTACK = f"worst case <= AutoAttack + {TOLERANCE['pgd_over_autoattack']:g}"
SIGNS_OF_MASKING = ("eps sweep reaches ~0", "PGD <= FGSM", "AutoAttack <= APGD-CE", "AutoAttack <= PGD",
                    f"PGD <= AutoAttack + {TOLERANCE['pgd_over_autoattack']:g}",
                    f"PGD <= APGD-CE + {TOLERANCE['pgd_over_autoattack']:g}", WORST_OVER_AUTOATTACK)
ROLES = ("clean", "fgsm", "pgd", "pgd_aa", "apgd", "autoattack", "steps_sweep", "eps_sweep")
NOT_COMPARABLE = "n/a: different images"


def _sweep(metrics: dict, name: str) -> list[tuple[float, float]]:
    return sorted((float(k), v) for k, v in (metrics.get(name) or {}).items())


def checklist(record: dict, roles: dict[str, str], label: str | None = None, worst: Suite | None = None) -> dict:
    """The checks for one model: `roles` maps each role of `ROLES` the chapter has to its metric
    name (a sweep's group name for the sweeps); `worst`, the suite whose per-image worst case the
    chapter's claims read, checked against AutoAttack on AutoAttack's images. Each check is True,
    False, or a reason it could not be made ("n/a: ...")."""
    m, images = record["metrics"], images_of(record)
    cfg = record["config"]
    out = {"model": label or cfg.get("variant") or cfg["train"]["defense"], "seed": cfg["train"]["seed"]}

    def value_of(name):
        if name and ":" in name:  # one point of a sweep, 'GROUP:VALUE'
            group, point = name.split(":", 1)
            return (m.get(group) or {}).get(point), images.get(name)
        return (m.get(name), images.get(name)) if name in m else (None, None)

    def value(role):
        return value_of(roles.get(role))

    def paired_names(a, b):
        """(value of a, value of b) on the same images: as recorded where both ran on them, else
        on the first images both ran on, from their per-image outcomes; None where they share none."""
        (va, ia), (vb, ib) = value_of(a), value_of(b)
        if va is None or vb is None:
            return None
        if ia == ib:
            return va, vb
        ea, eb = record["evaluations"].get(a), record["evaluations"].get(b)
        return per_image.on_shared_images(ea, eb) if ea and eb else None

    def paired(a, b):
        return paired_names(roles.get(a), roles.get(b))

    def at_most(a, b, tol):
        if value(a)[0] is None or value(b)[0] is None:
            return None
        pair = paired(a, b)
        return NOT_COMPARABLE if pair is None else bool(pair[0] <= pair[1] + tol)

    clean = value("clean")[0]
    if clean is not None:
        pairs = [paired(r, "clean") for r in ("fgsm", "pgd", "apgd", "autoattack") if roles.get(r)]
        same = [p for p in pairs if p is not None]
        out["robust <= clean"] = all(v <= c + TOLERANCE["construction"] for v, c in same) if same else None
    steps = _sweep(m, roles.get("steps_sweep"))
    if steps:
        values = [v for _, v in steps]
        out["steps sweep never rises"] = all(b <= a + TOLERANCE["construction"] for a, b in zip(values, values[1:]))
    eps = _sweep(m, roles.get("eps_sweep"))
    if eps:
        if eps[0][0] == 0.0 and clean is not None:
            zero = f"{roles['eps_sweep']}:{next(k for k in m[roles['eps_sweep']] if float(k) == 0.0)}"
            pair = paired_names(zero, roles["clean"])
            out["eps 0 = clean"] = (abs(pair[0] - pair[1]) <= TOLERANCE["construction"]
                                    if pair is not None else NOT_COMPARABLE)
        out[f"largest eps {eps[-1][0]:g}: accuracy (%)"] = round(100 * eps[-1][1], 1)
        out["eps sweep reaches ~0"] = bool(100 * eps[-1][1] <= TOLERANCE["largest_eps"])
    check = at_most("pgd", "fgsm", TOLERANCE["pgd_over_fgsm"] / 100)
    if check is not None:
        out["PGD <= FGSM"] = check
    # AutoAttack often runs on fewer images than the chapter's PGD: PGD on its images, where the chapter has it
    for other in ("apgd", "pgd_aa" if roles.get("pgd_aa") else "pgd"):
        check = at_most("autoattack", other, TOLERANCE["autoattack"])
        if check is not None:
            out[f"AutoAttack <= {'APGD-CE' if other == 'apgd' else 'PGD'}"] = check
    check = at_most("pgd_aa" if roles.get("pgd_aa") else "pgd", "autoattack", TOLERANCE["pgd_over_autoattack"] / 100)
    if check is not None:
        out[f"PGD <= AutoAttack + {TOLERANCE['pgd_over_autoattack']:g}"] = check
    check = at_most("pgd_aa" if roles.get("pgd_aa") else "pgd", "apgd", TOLERANCE["pgd_over_autoattack"] / 100)
    if check is not None:
        out[f"PGD <= APGD-CE + {TOLERANCE['pgd_over_autoattack']:g}"] = check
    if worst is not None and roles.get("autoattack") in m:
        out[WORST_OVER_AUTOATTACK] = _worst_over_autoattack(record, worst, roles["autoattack"])
    out["sanity checks"] = sanity_findings(record)
    return out


def _worst_over_autoattack(record: dict, worst: Suite, autoattack: str):
    """Whether the worst case of `worst` on AutoAttack's images is at most AutoAttack's accuracy
    there plus the tolerance; n/a for records without per-image outcomes, or where AutoAttack ran
    on other images than the suite's first ones."""
    evaluation = record["evaluations"][autoattack]
    found = per_image.worst_case(record, worst, first=evaluation["result"]["n"])
    if found is None:
        return "n/a: per-image outcomes not recorded"
    accuracy, images, _ = found
    if not images.startswith(per_image.selection(evaluation) + ","):
        return NOT_COMPARABLE
    return bool(accuracy <= record["metrics"][autoattack] + TOLERANCE["pgd_over_autoattack"] / 100)


def sanity_findings(record: dict) -> str:
    """What `checks.sanity_checks` found on any of the record's evaluations, each finding once:
    "none", or "n/a: not recorded" when no evaluation carries checks (records made before them)."""
    found = [e["result"]["checks"] for e in record["evaluations"].values() if e["result"].get("checks")]
    if not found:
        return "n/a: not recorded"
    return "; ".join(dict.fromkeys(w for checks in found for w in warnings(checks))) or "none"


def flagged(rows: list[dict]) -> str:
    """The page's sentence under a checklist: every model a sign of masking flags, named with the
    check, or that none is."""
    found = violations(rows, SIGNS_OF_MASKING)
    if not found:
        return "**No sign of gradient masking** in any model of the checklist."
    return ("**Not believed** (a sign of gradient masking or of an attack that did not converge; its robust "
            "accuracy reads as an upper bound): " + "; ".join(found) + ".")


def violations(rows: list[dict], kinds=BY_CONSTRUCTION) -> list[str]:
    """'MODEL seed S: CHECK' for every check of `kinds` that failed (False, not n/a)."""
    return [f"{r['model']} seed {r['seed']}: {k}" for r in rows for k in kinds if r.get(k) is False]


# which attack's numbers each sign of masking puts in doubt: a sweep that never reaches ~0 doubts
# every gradient attack on the model; an attack weaker than another on the same images doubts the weaker
DOUBTED = {"eps sweep reaches ~0": ("fgsm", "pgd", "apgd", "autoattack", "worst"), "PGD <= FGSM": ("pgd",),
           "AutoAttack <= APGD-CE": ("autoattack",), "AutoAttack <= PGD": ("autoattack",),
           f"PGD <= AutoAttack + {TOLERANCE['pgd_over_autoattack']:g}": ("pgd",),
           f"PGD <= APGD-CE + {TOLERANCE['pgd_over_autoattack']:g}": ("pgd",), WORST_OVER_AUTOATTACK: ("worst",)}


def doubts(row: dict, attack: str) -> str | None:
    """Why a model's accuracy under `attack` (a role: "fgsm", "pgd", "apgd", "autoattack", or "worst"
    for the per-image worst case a chapter's claims read) is not believed, from its checklist row:
    the signs of masking it failed that doubt that attack, or None
    (`claims`' guard 6 reads it)."""
    failed = [k for k in SIGNS_OF_MASKING if row.get(k) is False and attack in DOUBTED[k]]
    if not failed:
        return None
    left = next((f" ({v} % left at eps {k.split()[2].rstrip(':')})" for k, v in row.items()
                 if k.startswith("largest eps")), "") if "eps sweep reaches ~0" in failed else ""
    return ", ".join(f"{k} failed" for k in failed) + left


def doubted_metrics(checks: list[dict], metrics: dict[str, tuple[str, ...]]) -> dict[str, dict[str, str]]:
    """{model label: {metric: why}} for `claims`' guard 6: for each checklist row (`checklist`), the
    chapter's metrics of each attack role it doubts (`metrics`: role -> their names). Every seed of a
    training recipe shares its label, so what the checklist doubts on the seeds it ran on (a chapter's
    detail seeds), every seed of that recipe carries: a recipe that masks on one seed is not believed
    on another that nobody checked."""
    out: dict[str, dict[str, str]] = {}
    for check in checks:
        for name, why in [(name, doubts(check, role)) for role, names in metrics.items() for name in names]:
            if why:
                out.setdefault(check["model"], {}).setdefault(
                    name, f"{why} (the checklist of {check['model']} seed {check['seed']}, which holds for every "
                          "seed of that recipe)")
    return out

