"""The primer: standard training vs FGSM-AT vs FGSM-RS vs PGD-AT, under one attack suite."""
from __future__ import annotations

from .. import data, masking, models
from ..defenses import DEFENSES
from ..train import SCHEDULES
from ..claims import cell_fields, image_count
from ..evaluate import sweep
from ..per_image import Suite
from . import BUDGET, CLAIMS, CPU_PRECISION, EXTRA, Chapter, CHANNELS_LAST, Parameter, baseline_row, budget, fast_path

DEFENSE_ORDER = ("standard", "fgsm", "fgsm-rs", "pgd")
LABELS = {"standard": "Standard", "fgsm": "FGSM-AT", "fgsm-rs": "FGSM-RS", "pgd": "PGD-AT"}
METRIC_LABELS = {"clean": "clean", "fgsm": "FGSM", "pgd": "PGD", "pgd-cw": "PGD (CW loss)",
                 "torchattacks-pgd": "torchattacks PGD", "autoattack": "AutoAttack",
                 "robust": "worst case", "robust (AutoAttack's images)": "worst case, AutoAttack's images"}

PARAMETERS = [
    Parameter("dataset", str, "dataset registry name", choices=tuple(data.LOADERS)),
    Parameter("model", str, "architecture", choices=tuple(models.ARCHITECTURES)),
    Parameter("width", int, "channel width of the model (0: the architecture's usual one)", 0, 512),
    Parameter("defenses", list, "training methods to compare", item_type=str, choices=tuple(DEFENSES)),
    Parameter("seeds", list, "training seeds (mean and spread are over these)", 0, 2**31 - 1, item_type=int),
    Parameter("epochs", int, "training epochs", 1, 1000),
    Parameter("batch_size", int, "training batch size", 1, 8192),
    Parameter("lr", float, "peak learning rate", 1e-6, 10.0),
    Parameter("schedule", str, "learning-rate schedule", choices=SCHEDULES),
    Parameter("augment", bool, "random crop and flip during training"),
    Parameter("train_subset", int, "training images used (0: all)", 0, 10**7),
    Parameter("eps", float, "L-inf budget in [0, 1] pixel units, for training and evaluation", 0.0, 1.0),
    Parameter("train_steps", int, "PGD steps during PGD-AT (step 2.5 eps / steps, Madry et al.)", 1, 100),
    Parameter("eval_steps", int, "PGD steps at evaluation (step 2.5 eps / steps)", 1, 1000),
    Parameter("restarts", int, "PGD random restarts at evaluation", 1, 100),
    Parameter("n_eval", int, "test images evaluated", 1, 10**6),
    Parameter("autoattack_n", int, "test images for AutoAttack (0: skip it)", 0, 10**6),
    Parameter("detail_seeds", int, "how many of the seeds also get AutoAttack and the two sweeps", 1, 100),
    Parameter("steps_sweep", list, "PGD iteration counts for the iterations sweep", 1, 10**4, item_type=int),
    Parameter("eps_factors", list, "eps sweep, as multiples of eps", 0.0, 100.0, item_type=float),
    Parameter("precision", str, "fp32, or bf16 with the fast path (a GPU, or a CPU with bf16 hardware)", choices=("fp32", "bf16")),
    CHANNELS_LAST,
]

COMMON = {"channels_last": False, "defenses": list(DEFENSE_ORDER), "schedule": "cyclic", "precision": "bf16",
          "eps_factors": [0.0, 0.5, 1.0, 2.0, 3.0]}
PROFILES = {
    # CPU, seconds: digits and a narrow CNN; a check that the pipeline works, not a result
    "smoke": {**COMMON, "precision": "fp32", "dataset": "digits", "model": "small-cnn", "width": 16, "seeds": [0, 1, 2], "epochs": 5,
              "batch_size": 128, "lr": 0.1, "augment": False, "train_subset": 0, "eps": 0.1, "train_steps": 5,
              "eval_steps": 20, "restarts": 1, "n_eval": 200, "autoattack_n": 20, "detail_seeds": 1,
              "steps_sweep": [1, 5, 20, 50]},
    # 2 CPU cores, about 45 minutes: full MNIST, Kamath et al.'s StdCNN, the MNIST budget 0.3
    # (Madry et al.), PGD-5 training (step 0.15); AutoAttack on 200 images of every seed
    "cpu": {**COMMON, "precision": CPU_PRECISION, "channels_last": True, "dataset": "mnist", "model": "std-cnn",
            "width": 0, "seeds": [0, 1, 2],
            "epochs": 4, "batch_size": 128, "lr": 0.05, "augment": False, "train_subset": 0, "eps": 0.3,
            "train_steps": 5, "eval_steps": 20, "restarts": 1, "n_eval": 1000, "autoattack_n": 200,
            "detail_seeds": 3, "steps_sweep": [1, 2, 5, 10, 20, 50], "eps_factors": [0.0, 0.33, 0.67, 1.0, 1.5, 2.0, 3.0]},
    # one H200, two 8-minute windows for the models of the conclusions (about 11 minutes planned by
    # `advbook compute primer --profile fast --dry-run`), AutoAttack and the sweeps after: Wong et
    # al.'s (2020) 15 epochs of cyclic lr at batch 512, PGD-7 training (their PGD baseline's steps)
    "fast": {**COMMON, "dataset": "cifar10-jpeg", "model": "preact-resnet18", "width": 0, "seeds": [0, 1, 2],
             "epochs": 15, "batch_size": 512, "lr": 0.2, "augment": True, "train_subset": 0, "eps": 8 / 255,
             "train_steps": 7, "eval_steps": 20, "restarts": 1, "n_eval": 2000, "autoattack_n": 500, "detail_seeds": 3,
             "steps_sweep": [1, 2, 5, 10, 20, 50]},
    # Wong et al. (2020) settings: 15 epochs of cyclic lr; their PGD baseline's 7 steps of 2/255
    # (CIFAR10/train_pgd.py); PGD-50 with 10 restarts
    "paper": {**COMMON, "dataset": "cifar10-jpeg", "model": "preact-resnet18", "width": 0, "seeds": [0, 1, 2],
              "epochs": 15, "batch_size": 128, "lr": 0.2, "augment": True, "train_subset": 0, "eps": 8 / 255,
              "train_steps": 7, "eval_steps": 50, "restarts": 10, "n_eval": 10000, "autoattack_n": 1000, "detail_seeds": 3,
              "steps_sweep": [1, 2, 5, 10, 20, 50, 100]},
}


def priority(config: dict, spec: dict) -> int:
    """Every model's attack suite decides the page's conclusions; AutoAttack and the iteration
    and eps sweeps are extras (with APGD-CE and PGD on AutoAttack's images)."""
    return EXTRA if spec["name"] in ("autoattack", "apgd-aa", "pgd-aa") or "sweep" in spec else CLAIMS


def defense_params(name: str, eps: float, train_steps: int, dataset: str = "mnist") -> dict:
    # each dataset gets its reference code's recipe: Wong et al.'s CIFAR-10 code clips FGSM-RS's
    # random start into the image before the gradient, their MNIST code does not (attacks.fgsm's
    # clip_start); their CIFAR-10 PGD baseline (train_pgd.py) steps 2/255 at 8/255, eps / 4,
    # where Madry et al.'s MNIST rule is 2.5 eps / steps
    cifar = dataset.startswith("cifar")
    return {
        "standard": {},
        "fgsm": {"eps": eps},
        "fgsm-rs": {"eps": eps, "alpha": 1.25 * eps, **({"clip_start": True} if cifar else {})},  # Wong et al. 2020
        "pgd": {"eps": eps, "alpha": eps / 4 if cifar else 2.5 * eps / train_steps, "steps": train_steps},
    }[name]


def baselines(s: dict) -> list[tuple[str, str, str, str]]:
    """The four recipes, as trained in this run against Wong et al.'s (2020) CIFAR-10 settings, and
    why they differ: (baseline, this run, the paper, why). The paper profile holds their setup
    (PreAct ResNet-18, 15 epochs of a cyclic rate up to 0.2, batch 128, crop and flip, eps 8/255)
    and FGSM-RS's step 1.25 eps from a start clipped into the image, PGD's 7 steps of 2/255 from a
    random start (their CIFAR-10 train_pgd.py's defaults). The recipes' steps in this run come from
    `defense_params`, the function that trains them."""
    p = PROFILES["paper"]

    def setup(x):
        return [("model", x["model"] + (f", width {x['width']}" if x["width"] else "")),
                ("epochs", str(x["epochs"])), ("rate", f"{x['schedule']} up to {x['lr']:g}"),
                ("batch", str(x["batch_size"])), ("augmentation", "crop and flip" if x["augment"] else "none"),
                ("eps", budget(x["eps"]))]

    def recipe(name, x):
        d = defense_params(name, x["eps"], x["train_steps"], x["dataset"])
        return {"standard": "none",
                "fgsm": f"one step of {budget(d.get('eps', 0))} (eps), no random start",
                "fgsm-rs": f"one step of {budget(d.get('alpha', 0))} (1.25 eps) from U(-eps, eps)"
                           + (", clipped into the image first" if d.get("clip_start") else ", unclipped"),
                "pgd": f"{d.get('steps')} steps of {budget(d.get('alpha', 0))} "
                       f"({'eps / 4' if x['dataset'].startswith('cifar') else '2.5 eps / steps'}), random start",
                }[name]
    theirs = {name: recipe(name, p) for name in DEFENSE_ORDER}
    why = {"fgsm-rs": "the start follows each dataset's reference code: Wong et al.'s MNIST code leaves it "
                      "unclipped, their CIFAR-10 code clips it; otherwise " + BUDGET,
           "pgd": "the step follows each dataset's reference: Madry et al.'s 2.5 eps / steps on MNIST, Wong et "
                  "al.'s CIFAR-10 code's eps / 4; otherwise " + BUDGET}
    data = ("data", "the CIFAR-10 JPEG q75 copy" if s["dataset"] == "cifar10-jpeg" else s["dataset"], "CIFAR-10",
            "the copy available offline (JPEG q75)" if s["dataset"] == "cifar10-jpeg" else BUDGET)
    return [baseline_row("every recipe", [data] + [(k, mine, theirs_, BUDGET) for (k, mine), (_, theirs_)
                                                   in zip(setup(s), setup(p))])] + [
        baseline_row(LABELS[name], [("adversarial examples", recipe(name, s), theirs[name], why.get(name, BUDGET))])
        for name in DEFENSE_ORDER]


def evaluation(s: dict, detailed: bool) -> list[dict]:
    """The attack suite at the training eps (PGD step 2.5 eps / steps, Madry et al.); the
    detailed evaluation adds AutoAttack and the iteration and eps sweeps."""
    eps, steps, n = s["eps"], s["eval_steps"], s["n_eval"]
    alpha = 2.5 * eps / steps
    pgd = {"eps": eps, "alpha": alpha, "steps": steps, "restarts": s["restarts"]}
    specs = [{"name": "clean", "attack": "clean", "n": n},
             {"name": "fgsm", "attack": "fgsm", "params": {"eps": eps}, "n": n},
             {"name": "pgd", "attack": "pgd", "params": pgd, "n": n},
             {"name": "pgd-cw", "attack": "pgd", "params": {**pgd, "loss": "cw"}, "n": n},
             {"name": "torchattacks-pgd", "attack": "torchattacks-pgd",
              "params": {"eps": eps, "alpha": alpha, "steps": steps}, "n": n}]
    if detailed:
        if s["autoattack_n"]:
            # APGD-CE and PGD on AutoAttack's images too, for the masking checklist's comparisons
            specs += [{"name": "autoattack", "attack": "autoattack", "params": {"eps": eps}, "n": s["autoattack_n"]},
                      {"name": "apgd-aa", "attack": "apgd", "params": {"eps": eps, "steps": 100}, "n": s["autoattack_n"]},
                      {"name": "pgd-aa", "attack": "pgd", "params": pgd, "n": s["autoattack_n"]}]
        # one random start, so that more steps can never help the model (best iterate)
        specs += sweep({"attack": "pgd", "params": {"eps": eps, "alpha": alpha}, "n": n}, "steps", s["steps_sweep"])
        specs += sweep({"attack": "pgd", "params": {"steps": steps, "restarts": s["restarts"]}, "n": n}, "eps",
                       [round(f * eps, 6) for f in s["eps_factors"]], scale={"alpha": 2.5 / steps})
    return specs


def experiments(s: dict) -> list[dict]:
    model = {"name": s["model"]} | ({"width": s["width"]} if s["width"] else {})
    configs = []
    for defense in s["defenses"]:
        for i, seed in enumerate(s["seeds"]):
            configs.append({
                "chapter": "primer", "profile": s["profile"], "dataset": s["dataset"],
                "subset": {"train": s["train_subset"] or None, "test": s["n_eval"]},
                "model": model,
                "train": {"defense": defense, "defense_params": defense_params(defense, s["eps"], s["train_steps"], s["dataset"]),
                          "epochs": s["epochs"], "batch_size": s["batch_size"], "lr": s["lr"],
                          "schedule": s["schedule"], "augment": s["augment"], "seed": seed,
                          **fast_path(s["precision"], s["channels_last"])},
                # the first `detail_seeds` seeds also get AutoAttack and the sweeps (the slow part on a CPU)
                "evaluate": evaluation(s, detailed=i < s["detail_seeds"]),
            })
    return configs


def suites(s: dict) -> dict[str, Suite]:
    """The per-image worst cases the page reads (`advbook.per_image`): "robust", over the attacks
    every model runs on all its test images; "robust (AutoAttack's images)", over every attack at
    the training eps on the first images, where the detailed seeds also ran AutoAttack, APGD-CE
    and the sweeps."""
    eps = s["eps"]
    every = ("fgsm", "pgd", "pgd-cw", "torchattacks-pgd")
    detail = (*every, "autoattack", "apgd-aa", "pgd-aa", *(f"steps_sweep:{k}" for k in s["steps_sweep"]),
              *([f"eps_sweep:{round(eps, 6)}"] if 1.0 in s["eps_factors"] else [])) if s["autoattack_n"] else ()
    return {"robust": Suite("FGSM, PGD, PGD-CW and torchattacks' PGD", every),
            **({AA_IMAGES: Suite(f"every attack at eps {eps:.3g} (AutoAttack among them)", detail)} if detail else {})}


AA_IMAGES = "robust (AutoAttack's images)"


def summary(s: dict, records: list[dict]) -> list[dict]:
    """One row per trained model: the headline metrics (for sweeps and tables) and the per-image
    worst cases (`suites`) where the model ran their attacks."""
    keys = ("clean", "fgsm", "pgd", "pgd-cw", "torchattacks-pgd", "autoattack", "pgd-aa")
    worst = suites(s)
    return [{"defense": LABELS[r["config"]["train"]["defense"]], "seed": r["config"]["train"]["seed"],
             **{k: r["metrics"][k] for k in keys if k in r["metrics"]},
             **cell_fields(r, worst=worst),
             "train_seconds": r["train_seconds"]} for r in records]


# the primer's metrics in the book's masking checklist (advbook.masking)
MASKING_ROLES = {"clean": "clean", "fgsm": "fgsm", "pgd": "pgd", "pgd_aa": "pgd-aa", "apgd": "apgd-aa",
                 "autoattack": "autoattack",
                 "steps_sweep": "steps_sweep", "eps_sweep": "eps_sweep"}


def masking_checks(s: dict, records: list[dict]) -> list[dict]:
    """The book's masking checklist for every trained model, the worst case on every image checked
    against AutoAttack on its images (`suites`)."""
    return [masking.checklist(r, MASKING_ROLES, LABELS[r["config"]["train"]["defense"]], worst=suites(s)["robust"])
            for r in records]


REFERENCE_ARMS = {"reference": "Wong et al.'s loop", "ours": "advbook.train.fit",
                  "reference-fit-streams": "their loop, fit's random draws",
                  "reference-fit-exact": "their loop, fit's draws and rounding",
                  "ours-clip-start": "advbook.train.fit, start clipped first (the old library)"}


def fgsm_rs_reference():
    """The committed records of Wong et al.'s MNIST FGSM-RS recipe (`python -m advbook.reference_mnist`,
    data/reference/reference-fgsm-rs-mnist*.json): per arm, PGD-50 with 10 restarts per seed and clean
    accuracy, in percent; None where no record is here."""
    import pandas as pd

    from ..reference_runs import read_records

    runs, provenance = read_records("reference-fgsm-rs-mnist*.json")
    if not runs:
        return None
    seeds = sorted({r["seed"] for r in runs})
    rows = {}
    for arm, label in REFERENCE_ARMS.items():
        mine = {r["seed"]: r for r in runs if r["arm"] == arm}
        if mine:
            rows[label] = {**{f"PGD-50-10, seed {k}": (f"{100 * mine[k]['pgd']:.1f}" if k in mine else "")
                              for k in seeds},
                           "clean (mean)": f"{100 * sum(r['clean'] for r in mine.values()) / len(mine):.1f}"}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.attrs["provenance"] = "; ".join(provenance)
    return frame


# a seed whose FGSM accuracy exceeds its PGD accuracy by more than this (points) overfit
# catastrophically: a model that did not scores about as well under PGD as under FGSM
SEED_OVERFIT_GAP = 20.0


def takeaways(s: dict, rows: list[dict]) -> list[str]:
    """The page's conclusions, computed from its own numbers (means over seeds, in percent), so
    that a rerun with other settings can never contradict its own text."""
    def mean(defense, metric):
        values = [r[metric] for r in rows if r["defense"] == LABELS[defense] and r.get(metric) is not None]
        return 100 * sum(values) / len(values) if values else None

    def images_for(metric):
        """The images a metric was measured on (the same for every model of the page)."""
        counts = {image_count((r.get("images") or {}).get(metric)) for r in rows if r.get(metric) is not None}
        return "/".join(str(c) for c in sorted(counts, key=str))

    def overfit_seeds(defense):
        """' It overfits catastrophically on seed S (F % under FGSM, P % under PGD)...' for the
        seeds of `defense` whose FGSM accuracy exceeds their PGD accuracy by over
        `SEED_OVERFIT_GAP` points; a mean over seeds hides such a seed."""
        runs = [r for r in rows if r["defense"] == LABELS[defense] and r.get("fgsm") is not None
                and r.get("pgd") is not None]
        hit = [r for r in runs if 100 * (r["fgsm"] - r["pgd"]) > SEED_OVERFIT_GAP]
        if not hit:
            return ""
        which = "; ".join(f"seed {r['seed']}: {100 * r['fgsm']:.1f} % under FGSM, {100 * r['pgd']:.1f} % under PGD"
                          for r in sorted(hit, key=lambda r: r["seed"]))
        return (f" It overfits catastrophically on {len(hit)} of {len(runs)} seeds ({which})"
                + (": whether a run of this recipe overfits can hang on its seed, so read its seeds, not only their "
                   "mean." if len(hit) < len(runs) else "."))

    out = []
    clean, robust = mean("standard", "clean"), mean("standard", "robust")
    if clean is not None and robust is not None:
        out.append(f"**Standard training** reaches {clean:.1f} % clean accuracy and {robust:.1f} % robust accuracy "
                   f"at eps = {s['eps']:.3g} (per image, the worst case of {suites(s)['robust'].label}): "
                   + ("no robustness to speak of." if robust < 0.2 * clean else
                      "some robustness at this budget, without being trained for it."))
    fgsm, pgd = mean("fgsm", "fgsm"), mean("fgsm", "pgd")
    if fgsm is not None and pgd is not None:
        gap = fgsm - pgd
        out.append(f"**FGSM-AT** scores {fgsm:.1f} % under FGSM and {pgd:.1f} % under PGD, a gap of {gap:.1f} points"
                   + (": the model looks robust to one gradient step and is not, the symptom of catastrophic "
                      "overfitting (Wong et al. 2020)." if gap > 10 else ": no sign of catastrophic overfitting in the "
                      "mean.") + overfit_seeds("fgsm"))
    # the strongest reading both recipes have: every attack, AutoAttack's too, on AutoAttack's images
    worst = next((k for k in (AA_IMAGES, "robust") if mean("fgsm-rs", k) is not None and mean("pgd", k) is not None),
                 None)
    if worst is not None:
        rs, madry = mean("fgsm-rs", worst), mean("pgd", worst)
        out.append(f"**FGSM-RS** keeps {rs:.1f} % robust accuracy against {madry:.1f} % for **PGD-AT**, "
                   + ("within 3 points: Wong et al.'s claim that a random start makes FGSM training competitive "
                      "holds in this run" if abs(rs - madry) <= 3 else
                      f"{rs - madry:+.1f} points: the two recipes differ at this scale")
                   + f" (robust accuracy per image, the worst case of {suites(s)[worst].label}, on the same "
                   f"{images_for(worst)} images)." + overfit_seeds("fgsm-rs"))
    aa, pgd_there = mean("pgd", "autoattack"), mean("pgd", "pgd-aa")
    if aa is not None and pgd_there is not None:
        out.append(f"For **PGD-AT**, AutoAttack gives {aa:.1f} % against PGD's {pgd_there:.1f} % on the same "
                   f"{images_for('autoattack')} images"
                   + (": PGD's estimate is close to the strongest attack we have." if pgd_there - aa <= 5 else
                      ": PGD overestimates robustness here; read the AutoAttack column."))
    return out


CHAPTER = Chapter("primer", "Primer: adversarial training in four recipes", PARAMETERS, PROFILES,
                  experiments, summary, group_by="defense",
                  plot_metrics=("clean", "robust", "autoattack"), priority=priority)


def fgsm_rs_reference_cifar():
    """The committed records of Wong et al.'s CIFAR-10 FGSM-RS loop beside fit and the arms that
    switch one difference each (`python -m advbook.reference_cifar`,
    data/reference/reference-fgsm-rs-cifar10*.json): per arm, clean and PGD-50-10 accuracy in
    percent (mean ± std over seeds) and the paired difference to the reference arm on the same
    seeds (mean ± standard error, with n); None where no record is here."""
    import math
    import statistics

    import pandas as pd

    from ..reference_cifar import ARM_LABELS
    from ..reference_runs import read_records

    runs, provenance = read_records("reference-fgsm-rs-cifar10*.json")
    if not runs:
        return None

    def spread(values, error=False):  # percent; std over seeds, or the standard error of a paired mean
        if len(values) < 2:
            return f"{100 * values[0]:{'+' if error else ''}.1f}"
        scale = math.sqrt(len(values)) if error else 1.0
        return f"{100 * statistics.mean(values):{'+' if error else ''}.1f} ± {100 * statistics.stdev(values) / scale:.1f}"

    reference = {r["seed"]: r for r in runs if r["arm"] == "reference"}
    rows = {}
    for arm, label in ARM_LABELS.items():
        mine = [r for r in runs if r["arm"] == arm]
        if not mine:
            continue
        row = {"seeds": len(mine), "clean": spread([r["clean"] for r in mine]),
               "PGD-50-10": spread([r["pgd"] for r in mine])}
        for metric, name in (("clean", "clean − reference"), ("pgd", "PGD − reference")):
            diffs = [r[metric] - reference[r["seed"]][metric] for r in mine if r["seed"] in reference]
            row[name] = f"{spread(diffs, error=True)} (n={len(diffs)})" if diffs and arm != "reference" else ""
        rows[label] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.attrs["provenance"] = "; ".join(provenance)
    return frame
