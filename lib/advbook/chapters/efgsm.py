"""Chen and Lee (2020): enhanced FGSM (eFGSM) with a re-constructor, against the baselines they
compare with (Madry's PGD-AT, TRADES, Free-AT) and the one they omit (FGSM-RS).

Every method trains the same classifier (the paper's 0.2M MNIST network, our layers), so that
speed and accuracy compare like with like; the paper's own comparison mixes architectures. Our
choices where the paper is silent are the chapter's `CHOICES` and are printed in it.
"""
from __future__ import annotations

import math
from dataclasses import replace

from .. import data, masking, published, store
from ..claims import (CONFIRMED, INCONCLUSIVE, UNTESTABLE, Claim, Judgement, against, all_of, best_minus_last, cell_fields, judge,
                      paired_differences, row, shown)
from ..claims import by_seed as cells
from ..claims import diffs as paired
from ..evaluate import sweep
from ..per_image import Suite
from ..train import SCHEDULES
from . import BUDGET, CLAIMS, CPU_PRECISION, EXTRA, Chapter, CHANNELS_LAST, Parameter, baseline_row, fast_path

# training variants: label, defense, what distinguishes it
VARIANTS = {
    "standard": "Standard",
    "combined": "Ours (Combined: eFGSM + R, LS)",
    "combined-nols": "Ours without label smoothing",
    "advtrain": "AdvTrain (eFGSM only)",
    "advtrain-sigma0": "AdvTrain, sigma = 0",
    "rec": "REC (R only)",
    "fgsm": "plain FGSM",
    "fgsm-rs": "FGSM-RS",
    "free": "AdvFree (Free-AT)",
    "pgd": "Madry (PGD-AT)",
    "trades": "TRADES",
}
EFGSM_FAMILY = ("combined", "combined-nols", "advtrain", "advtrain-sigma0")


def variant_label(variant: str) -> str:
    """A variant's display name; 'combined@L' is Ours trained with lambda = L (Table 2's grid)."""
    if variant.startswith("combined@"):
        return f"Ours, lambda = {variant.split('@')[1]}"
    return VARIANTS[variant]
# the models that get the full masking checklist (AutoAttack, sweeps, transfer) on the first seed
CHECKLIST = ("combined", "advtrain", "rec", "fgsm-rs", "pgd", "trades")
# per-epoch PGD validation accuracy (the early-stopping and catastrophic-overfitting curves)
VALIDATED = ("combined", "advtrain", "advtrain-sigma0", "fgsm", "fgsm-rs", "free", "pgd", "trades")
METRIC_LABELS = {"clean": "natural", "pgd-adp": "PGD-ADP (APGD-CE)", "pgd-ce": "PGD_CE", "pgd-cw": "PGD_CW",
                 "apgd-dlr": "APGD-DLR", "fgsm": "FGSM", "autoattack": "AutoAttack",
                 "pgd-adp-aa": "APGD-CE on the AutoAttack images",
                 "robust": "robust: worst case of FGSM, PGD-ADP, PGD_CE"}

CHOICES = [
    ("I in Eq. 11", "the sign memory Gamma of Eq. 13"),
    ("Eq. 11 x Eq. 14 (double sign)", "delta_0 = clip_eps(kappa), kappa ~ N(sign(Gamma) eps, sigma^2); the printed "
                                      "kappa sign(Gamma) would add +eps to every pixel"),
    ("sigma (not given)", "eps / 2; sigma = 0 trained as an ablation"),
    ("Gamma at the start", "0 (the first epoch starts from pure noise)"),
    ("min over i != t in Eq. 12", "the runner-up class (one backward; the exact min needs K - 1)"),
    ("eps-ball after the Delta step", "projected (the paper has none, so its examples can leave the threat model)"),
    ("L_R (not given)", "pixel-mean squared error; R reads C's softmax"),
    ("label smoothing amount", "0.1"),
    ("optimizer, lr, batch, epochs", "not given: Adam (lr below) for every method, since lambda = 0.1 scales the "
                                     "classification gradient by 0.1; lr / 10 at 50 % and 75 % of training"),
    ("PGD-ADP", "APGD-CE, 100 iterations (Croce and Hein 2020)"),
    ("random start of PGD_CE / PGD_CW", "one, best iterate"),
    ("Free-AT budget", "epochs / m data epochs (rounded up), each minibatch m times: the same passes over the data "
                       "as ours where m divides the epochs; where m exceeds them (the cpu and fast profiles), one "
                       "data epoch, so m passes against our epochs"),
]

def attack_step(s: dict, steps: int) -> float:
    """The step of PGD-AT's and TRADES's attack: the profile's `attack_step` (the GPU profiles:
    Madry et al.'s and Zhang et al.'s MNIST 0.01, which the eFGSM paper does not restate), or
    2.5 eps / steps where it is 0."""
    return s["attack_step"] or 2.5 * s["eps"] / steps


def _step_text(s: dict, steps: int) -> str:
    return f"{attack_step(s, steps):.3g}" + ("" if s["attack_step"] else " (2.5 eps / steps)")


PARAMETERS = [
    Parameter("dataset", str, "dataset (the paper's MNIST half; digits for smoke)", choices=tuple(data.LOADERS)),
    Parameter("variants", list, "training methods", item_type=str, choices=tuple(VARIANTS)),
    Parameter("seeds", list, "training seeds (paired across methods)", 0, 2**31 - 1, item_type=int),
    Parameter("train_subset", int, "training images (0: all)", 0, 10**7),
    Parameter("validation", int, "training images held out for the per-epoch PGD validation", 1, 10**6),
    Parameter("epochs", int, "training epochs (AdvFree: epochs / m data epochs, rounded up, each minibatch m times)",
              1, 1000),
    Parameter("batch_size", int, "training batch size", 1, 8192),
    Parameter("lr", float, "Adam learning rate", 1e-6, 1.0),
    Parameter("schedule", str, "learning-rate schedule", choices=SCHEDULES),
    Parameter("eps", float, "L-inf budget, training and evaluation (MNIST: 0.3)", 0.0, 1.0),
    Parameter("sigma", float, "eFGSM's sigma as a multiple of eps (Eq. 14)", 0.0, 4.0),
    Parameter("lam", float, "lambda of Eq. 16", 0.0, 100.0),
    Parameter("lam_grid", list, "other lambdas trained for Ours (Table 2; empty list not allowed: repeat lam)", 0.0,
              100.0, item_type=float),
    Parameter("smoothing", float, "label smoothing s", 0.0, 0.99),
    Parameter("pgd_steps", int, "PGD-AT steps (Madry: 40)", 1, 1000),
    Parameter("trades_steps", int, "TRADES inner steps (TRADES: 40)", 1, 1000),
    Parameter("attack_step", float, "step of PGD-AT's and TRADES's attack (0: 2.5 eps / steps; Madry et al. and "
              "Zhang et al. on MNIST: 0.01)", 0.0, 1.0),
    Parameter("trades_beta", float, "TRADES beta (the paper: 1 on MNIST)", 0.0, 100.0),
    Parameter("free_replay", int, "Free-AT's m (the paper: 15 on MNIST)", 1, 100),
    Parameter("free_step", float, "Free-AT's step (the paper: 0.01 on MNIST; larger steps fail to converge)", 1e-5, 1.0),
    Parameter("n_clean", int, "test images for natural accuracy", 1, 10**6),
    Parameter("n_eval", int, "test images attacked", 1, 10**6),
    Parameter("eval_steps", int, "PGD_CE / PGD_CW / APGD iterations (the paper: 100 on MNIST)", 1, 10**4),
    Parameter("eval_alpha", float, "PGD_CE / PGD_CW step (the paper: 0.01 on MNIST)", 1e-5, 1.0),
    Parameter("autoattack_n", int, "test images for AutoAttack (0: skip)", 0, 10**6),
    Parameter("detail_seeds", int, "seeds of Ours with the full checklist (the other checklist models: the first)",
              1, 100),
    Parameter("steps_sweep", list, "PGD iterations of Figure 2", 1, 10**4, item_type=int),
    Parameter("eps_sweep", list, "budgets of Figure 3 (up to 1)", 0.0, 1.0, item_type=float),
    Parameter("sweep_n", int, "test images of the two sweeps", 1, 10**6),
    Parameter("transfer_steps", int, "PGD iterations crafted on each transfer source", 1, 10**4),
    Parameter("source_model", str, "architecture of the standard-trained transfer source", choices=("small-cnn",
                                                                                                    "std-cnn")),
    Parameter("val_steps", int, "PGD iterations of the per-epoch validation (step 2.5 eps / steps)", 1, 1000),
    Parameter("precision", str, "training precision: fp32, or bf16 with the fast path (a GPU, or a CPU with bf16 hardware)", choices=("fp32", "bf16")),
    CHANNELS_LAST,
]

ALL = list(VARIANTS)
PROFILES = {
    # seconds on a CPU, digits: a pipeline check, not a reproduction
    "smoke": {"dataset": "digits", "variants": ALL, "seeds": [0], "train_subset": 0, "validation": 200, "epochs": 2,
              "batch_size": 64, "lr": 2e-3, "schedule": "piecewise", "eps": 0.2, "sigma": 0.5, "lam": 0.1,
              "lam_grid": [0.001], "smoothing": 0.1, "pgd_steps": 3, "trades_steps": 3, "attack_step": 0.0, "trades_beta": 1.0, "free_replay": 2, "free_step": 0.01,
              "n_clean": 200, "n_eval": 50, "eval_steps": 10, "eval_alpha": 0.05, "autoattack_n": 10,
              "detail_seeds": 1, "steps_sweep": [1, 2, 5, 10], "eps_sweep": [0.0, 0.1, 0.2, 0.5, 1.0],
              "sweep_n": 50, "transfer_steps": 10, "source_model": "small-cnn", "val_steps": 3, "precision": "fp32", "channels_last": False},
    # 2 CPU cores shared with two other chapters, about 20 core-minutes (measured per epoch): 5,000 MNIST
    # images, 4 epochs, PGD-AT and TRADES at 5 steps instead of 40, attacks on 100 test images
    "cpu": {"dataset": "mnist", "variants": [v for v in ALL if v != "standard"], "seeds": [0, 1, 2],
            "train_subset": 5000, "validation": 300, "epochs": 4, "batch_size": 64, "lr": 1e-3,
            "schedule": "piecewise", "eps": 0.3, "sigma": 0.5, "lam": 0.1, "lam_grid": [1.0, 0.01, 0.001],
            "smoothing": 0.1, "pgd_steps": 5,
            "trades_steps": 5, "attack_step": 0.0, "trades_beta": 1.0, "free_replay": 15, "free_step": 0.01, "n_clean": 1000, "n_eval": 100,
            "eval_steps": 100, "eval_alpha": 0.01, "autoattack_n": 40, "detail_seeds": 3,
            "steps_sweep": [1, 2, 5, 10, 20, 50, 100], "eps_sweep": [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0],
            "sweep_n": 100, "transfer_steps": 40, "source_model": "std-cnn", "val_steps": 10, "precision": CPU_PRECISION, "channels_last": True},
    # one H200, two 8-minute windows for the claims' models (about 14 minutes planned by `advbook
    # compute efgsm --profile fast --dry-run`), the other variants and checklists after: full MNIST,
    # 10 epochs in batches of 512 (a GPU step of this small network costs its kernel launches,
    # whatever the batch), the paper's baselines' 40 steps, AutoAttack on 500 images
    "fast": {"dataset": "mnist", "variants": ALL, "seeds": [0, 1, 2], "train_subset": 0, "validation": 1000,
             "epochs": 10, "batch_size": 512, "lr": 1e-3, "schedule": "piecewise", "eps": 0.3, "sigma": 0.5,
             "lam": 0.1, "lam_grid": [1.0, 0.5, 0.01, 0.001], "smoothing": 0.1, "pgd_steps": 40, "trades_steps": 40,
             "attack_step": 0.01, "trades_beta": 1.0, "free_replay": 15, "free_step": 0.01,
             "n_clean": 10000, "n_eval": 2000, "eval_steps": 100, "eval_alpha": 0.01, "autoattack_n": 500,
             "detail_seeds": 3, "steps_sweep": [1, 2, 5, 10, 20, 50, 100, 200],
             "eps_sweep": [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8, 1.0], "sweep_n": 1000,
             "transfer_steps": 100, "source_model": "std-cnn", "val_steps": 10, "precision": "bf16", "channels_last": False},
    # the paper's MNIST settings (40 epochs, m = 15; declared, not run here)
    "paper": {"dataset": "mnist", "variants": ALL, "seeds": [0, 1, 2], "train_subset": 0, "validation": 1000,
              "epochs": 40, "batch_size": 128, "lr": 1e-3, "schedule": "piecewise", "eps": 0.3, "sigma": 0.5,
              "lam": 0.1, "lam_grid": [1.0, 0.5, 0.01, 0.001], "smoothing": 0.1, "pgd_steps": 40, "trades_steps": 40, "attack_step": 0.01,
              "trades_beta": 1.0, "free_replay": 15, "free_step": 0.01, "n_clean": 10000, "n_eval": 10000, "eval_steps": 100, "eval_alpha": 0.01,
              "autoattack_n": 1000, "detail_seeds": 3, "steps_sweep": [1, 2, 5, 10, 20, 50, 100, 200],
              "eps_sweep": [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8, 1.0], "sweep_n": 1000,
              "transfer_steps": 100, "source_model": "std-cnn", "val_steps": 10, "precision": "bf16", "channels_last": False},
}


# the variants claims C1 to C11 compare (the transfer source and Madry's first seed serve C9)
CLAIM_VARIANTS = ("source", "combined", "combined-nols", "advtrain", "rec", "fgsm", "free", "pgd", "trades",
                  "combined@1", "combined@0.001")
CHECKLIST_SPECS = ("autoattack", "pgd-adp-aa")


def priority(config: dict, spec: dict) -> int:
    """Ours (combined) with its whole checklist (C9), and the paper's attacks on the variants the
    claims compare; the other variants and the other models' checklists are extras."""
    variant = config["variant"]
    if variant == "combined":
        return CLAIMS
    if variant not in CLAIM_VARIANTS:
        return EXTRA
    name = spec["name"]
    return EXTRA if name in CHECKLIST_SPECS or "sweep" in spec or name.startswith("transfer-") else CLAIMS


def baselines(s: dict) -> list[tuple[str, str, str, str]]:
    """Every baseline's hyperparameters in this run against the paper's (its MNIST settings, the paper
    profile), and why they differ: (baseline, this run, the paper, why)."""
    paper = PROFILES["paper"]

    def attack(x, steps):  # PGD_CE-40 and TRADES-40 (Section 4.1); the step is Madry's and Zhang's
        return f"{x[steps]} steps of {_step_text(x, x[steps])}"
    return [
        baseline_row("PGD-AT (Madry; the paper does not restate the step: Madry et al.'s)",
                     [("attack", attack(s, "pgd_steps"), attack(paper, "pgd_steps"), BUDGET)]),
        baseline_row("TRADES (the paper does not restate the step: Zhang et al.'s)",
                     [("attack", attack(s, "trades_steps"), attack(paper, "trades_steps"), BUDGET),
                      ("beta", f"{s['trades_beta']:g}", f"{paper['trades_beta']:g}", BUDGET)]),
        baseline_row("AdvFree (Free-AT)", [("m, step", f"{s['free_replay']}, {s['free_step']:g}",
                                            f"{paper['free_replay']}, {paper['free_step']:g}", BUDGET)]),
        ("FGSM-RS (Wong et al.'s MNIST code)", *["alpha 1.25 eps, start U(-eps, eps), unclipped before the "
                                                 "gradient"] * 2, ""),
        ("plain FGSM (Goodfellow et al.)", "step eps, no random start", "step eps, no random start", ""),
    ]


def defense(s: dict, variant: str) -> tuple[str, dict]:
    """The DEFENSES entry and its hyperparameters for a training variant."""
    eps, sigma = s["eps"], s["sigma"] * s["eps"]
    efgsm = {"eps": eps, "sigma": sigma, "lam": s["lam"], "smoothing": s["smoothing"]}
    if variant.startswith("combined@"):
        return "efgsm", {**efgsm, "lam": float(variant.split("@")[1])}
    return {
        "standard": ("standard", {}),
        "combined": ("efgsm", efgsm),
        "combined-nols": ("efgsm", {**efgsm, "smoothing": 0.0}),
        "advtrain": ("efgsm", {**efgsm, "reconstruct": False}),
        "advtrain-sigma0": ("efgsm", {**efgsm, "sigma": 0.0, "reconstruct": False}),
        "rec": ("rec", {"lam": s["lam"], "smoothing": s["smoothing"]}),
        "fgsm": ("fgsm", {"eps": eps}),
        "fgsm-rs": ("fgsm-rs", {"eps": eps, "alpha": 1.25 * eps}),                      # Wong et al. 2020
        "free": ("free", {"eps": eps, "step": s["free_step"]}),     # Shafahi et al. 2019; the paper's MNIST step
        "pgd": ("pgd", {"eps": eps, "alpha": attack_step(s, s["pgd_steps"]), "steps": s["pgd_steps"]}),
        "trades": ("trades", {"eps": eps, "alpha": attack_step(s, s["trades_steps"]), "steps": s["trades_steps"],
                              "beta": s["trades_beta"]}),
    }[variant]


def _base(s: dict, model: dict, train: dict) -> dict:
    return {"chapter": "efgsm", "profile": s["profile"], "dataset": s["dataset"], "validation": s["validation"],
            "subset": {"train": s["train_subset"] or None, "test": max(s["n_clean"], s["n_eval"])},
            "model": model, "train": train}


def _train(s: dict, name: str, params: dict, seed: int, epochs: int, **extra) -> dict:
    return {"defense": name, "defense_params": params, "epochs": epochs, "batch_size": s["batch_size"],
            "optimizer": "adam", "lr": s["lr"], "weight_decay": 0.0, "schedule": s["schedule"], "seed": seed,
            **extra, **fast_path(s["precision"], s["channels_last"])}


def source_config(s: dict) -> dict:
    """The standard-trained transfer source of another architecture (Table 5's Conv-4 / ResNet-56 role)."""
    config = _base(s, {"name": s["source_model"]}, _train(s, "standard", {}, 0, s["epochs"]))
    return {**config, "variant": "source", "evaluate": [{"name": "clean", "attack": "clean", "n": s["n_clean"]}]}


def model_config(s: dict, variant: str, seed: int) -> dict:
    name, params = defense(s, variant)
    reconstructs = variant in ("combined", "combined-nols", "rec") or variant.startswith("combined@")
    model = {"name": "efgsm-mnist", "options": {"reconstructor": reconstructs}}
    extra = {}
    if variant == "free":  # epochs / m data epochs (rounded up), each batch m times: see CHOICES
        extra = {"replay": s["free_replay"]}
    if variant in VALIDATED:
        extra["validation_spec"] = {"name": "val-pgd", "attack": "pgd",
                                    "params": {"eps": s["eps"], "alpha": 2.5 * s["eps"] / s["val_steps"],
                                               "steps": s["val_steps"]}}
    epochs = max(1, math.ceil(s["epochs"] / s["free_replay"])) if variant == "free" else s["epochs"]
    return {**_base(s, model, _train(s, name, params, seed, epochs, **extra)), "variant": variant}


def evaluation(s: dict, variant: str, seed_index: int, sources: dict[str, str]) -> list[dict]:
    """The paper's attacks (natural, PGD-ADP, PGD_CE, PGD_CW) and ours beyond them: FGSM (catastrophic
    overfitting), APGD-DLR, and for the checklist models AutoAttack, the sweeps of Figures 2-3 and transfer."""
    eps, n = s["eps"], s["n_eval"]
    pgd = {"eps": eps, "alpha": s["eval_alpha"], "steps": s["eval_steps"]}
    apgd = {"eps": eps, "steps": s["eval_steps"]}
    specs = [{"name": "clean", "attack": "clean", "n": s["n_clean"]},
             {"name": "fgsm", "attack": "fgsm", "params": {"eps": eps}, "n": n},
             {"name": "pgd-adp", "attack": "apgd", "params": apgd, "n": n},
             {"name": "pgd-ce", "attack": "pgd", "params": pgd, "n": n}]
    if variant in EFGSM_FAMILY + ("rec", "pgd") or variant.startswith("combined@"):
        specs.append({"name": "pgd-cw", "attack": "pgd", "params": {**pgd, "loss": "cw"}, "n": n})
    if variant in ("combined", "combined-nols"):  # scale-invariant: the label-smoothing masking probe
        specs.append({"name": "apgd-dlr", "attack": "apgd", "params": {**apgd, "loss": "dlr"}, "n": n})
    detailed = variant in CHECKLIST and (seed_index == 0 or (variant == "combined" and seed_index < s["detail_seeds"]))
    if detailed:
        if s["autoattack_n"]:
            specs += [{"name": "autoattack", "attack": "autoattack", "params": {"eps": eps}, "n": s["autoattack_n"]},
                      {"name": "pgd-adp-aa", "attack": "apgd", "params": apgd, "n": s["autoattack_n"]},
                      {"name": "pgd-ce-aa", "attack": "pgd", "params": pgd, "n": s["autoattack_n"]}]
        # clean accuracy on the attacked images too (the clean column is on n_clean): the checklist's
        # robust <= clean and eps 0 = clean compare on the same images
        specs.append({"name": "clean-attacked", "attack": "clean", "n": n})
        specs += sweep({"attack": "pgd", "params": {"eps": eps, "alpha": s["eval_alpha"]}, "n": s["sweep_n"]},
                       "steps", s["steps_sweep"])
        # Figure 3: 50 steps of 2.5 eps / 50 at every budget
        specs += sweep({"attack": "pgd", "params": {"steps": 50}, "n": s["sweep_n"]}, "eps", s["eps_sweep"],
                       scale={"alpha": 2.5 / 50})
        for label, key in sources.items():
            specs.append({"name": f"transfer-{label}", "attack": "transfer", "n": n,
                          "params": {"source": key, "eps": eps, "alpha": 2.5 * eps / s["transfer_steps"],
                                     "steps": s["transfer_steps"]}})
    return specs


def experiments(s: dict) -> list[dict]:
    """Transfer sources first (their weights must exist when a target is attacked), then every variant
    and seed."""
    source = source_config(s)
    configs = [source]
    sources = {"standard": store.model_key(source)}
    if "pgd" in s["variants"]:
        madry = model_config(s, "pgd", s["seeds"][0])
        sources["madry"] = store.model_key(madry)
        configs.append({**madry, "evaluate": evaluation(s, "pgd", 0, {"standard": sources["standard"]})})
    for variant in s["variants"]:
        for i, seed in enumerate(s["seeds"]):
            if variant == "pgd" and i == 0:
                continue
            own = {k: v for k, v in sources.items() if not (variant == "pgd" and k == "madry")}
            configs.append({**model_config(s, variant, seed), "evaluate": evaluation(s, variant, i, own)})
    if "combined" in s["variants"]:  # Table 2's grid: Ours at other lambdas, the paper's attacks only
        for lam in s["lam_grid"]:
            if lam != s["lam"]:
                for i, seed in enumerate(s["seeds"]):
                    variant = f"combined@{lam:g}"
                    configs.append({**model_config(s, variant, seed), "evaluate": evaluation(s, variant, i, {})})
    return configs


def summary(s: dict, records: list[dict]) -> list[dict]:
    """One row per trained model (the transfer source excluded): its metrics, times and per-epoch
    validation, and the accuracies the masking checklist doubts (`not_believed`, `claims`' guard 6;
    the checklist runs on the first seed, and what it doubts there every seed of the variant carries)."""
    doubted = masking.doubted_metrics(masking_checks(s, records), DOUBTED_METRICS)
    rows = []
    for r in records:
        variant = r["config"].get("variant")
        if variant not in VARIANTS and not str(variant).startswith("combined@"):
            continue
        history, replay = r["history"], r["config"]["train"].get("replay", 1)
        out = {"variant": variant_label(variant), "key": variant, "seed": r["config"]["train"]["seed"],
               "train_seconds": r["train_seconds"], "epoch_seconds": sum(h["seconds"] for h in history) / len(history),
               "data_epochs": len(history), "replay": replay, "pass_seconds": r["train_seconds"] / (len(history) * replay),
               "val_by_epoch": [h.get("val_accuracy") for h in history],
               "seconds_by_epoch": [h["seconds"] for h in history],
               "high_risk_by_epoch": [h.get("high_risk") for h in history],
               **cell_fields(r, worst=WORST)}
        out.update({k: v for k, v in r["metrics"].items() if not isinstance(v, dict)})
        out.update({k: v for k, v in r["metrics"].items() if isinstance(v, dict)})
        out["not_believed"] = doubted.get(out["variant"], {})
        rows.append(out)
    return rows


def epoch_curves(rows: list[dict], field: str) -> dict[str, dict[int, list[float]]]:
    """{variant: {epoch: [value over seeds]}} of a per-epoch field of the summary rows ("val_by_epoch",
    "high_risk_by_epoch"), for `reporting.curve_figure`; runs of a single data epoch (AdvFree here) have
    no curve."""
    curves: dict[str, dict] = {}
    for r in rows:
        for epoch, value in enumerate(r[field], start=1):
            if value is not None and r["data_epochs"] > 1:
                curves.setdefault(r["variant"], {}).setdefault(epoch, []).append(value)
    return curves


def time_to_robustness(rows: list[dict], threshold: float) -> dict[str, list[float | None]]:
    """Per variant, per seed: training seconds until the per-epoch PGD validation accuracy first reaches
    `threshold` (None: never within the run)."""
    out: dict[str, list] = {}
    for r in rows:
        if not any(v is not None for v in r["val_by_epoch"]):
            continue
        elapsed, reached = 0.0, None
        for acc, seconds in zip(r["val_by_epoch"], r["seconds_by_epoch"]):
            elapsed += seconds
            if acc is not None and acc >= threshold:
                reached = elapsed
                break
        out.setdefault(r["variant"], []).append(reached)
    return out


# a claim's robust accuracy: the per-image worst case of the attacks every variant runs on the same
# images (and, for Ours with and without label smoothing, APGD-DLR too, which no logit scaling fools)
ROBUST = Suite("FGSM, PGD-ADP and PGD_CE", ("fgsm", "pgd-adp", "pgd-ce"))
ROBUST_DLR = Suite("FGSM, PGD-ADP, PGD_CE and APGD-DLR", ("fgsm", "pgd-adp", "pgd-ce", "apgd-dlr"))
WORST = {"robust": ROBUST, "robust+dlr": ROBUST_DLR}
# the claims' metrics of each attack role of the checklist (PGD-ADP is this chapter's APGD; the
# worst cases are checked as ROBUST is, against AutoAttack: with APGD-DLR they can only be lower)
DOUBTED_METRICS = {"pgd": ("pgd-ce",), "apgd": ("pgd-adp",), "fgsm": ("fgsm",), "autoattack": ("autoattack",),
                   "worst": tuple(WORST)}
MASKING_ROLES = {"clean": "clean-attacked", "fgsm": "fgsm", "pgd": "pgd-ce", "pgd_aa": "pgd-ce-aa", "apgd": "pgd-adp-aa",
                 "autoattack": "autoattack",
                 "steps_sweep": "steps_sweep", "eps_sweep": "eps_sweep"}


def masking_checks(s: dict, records: list[dict]) -> list[dict]:
    """Per checklist model (first seed): the book's masking checklist (advbook.masking), and this chapter's
    two more: PGD_CE converged (its last two iteration counts within 2 points) and transfer weaker than
    white-box PGD-ADP."""
    out = []
    for r in records:
        m = r["metrics"]
        if "steps_sweep" not in m or r["config"]["train"]["seed"] != s["seeds"][0]:
            continue
        row_ = masking.checklist(r, MASKING_ROLES, variant_label(r["config"]["variant"]), worst=ROBUST)
        steps = [m["steps_sweep"][k] for k in sorted(m["steps_sweep"], key=int)]
        transfers = {k: v for k, v in m.items() if k.startswith("transfer-")}
        row_["converged (last two within 2 points)"] = abs(steps[-1] - steps[-2]) <= 0.02 if len(steps) > 1 else None
        row_["transfer weaker than white-box"] = (all(v > m["pgd-adp"] for v in transfers.values()) if transfers
                                                  else None)
        out.append(row_)
    return out


# the paper's table cells each of our (variant, metric) pairs stands beside: table -> [(variant, metric, row, column)]
_METRIC_ROWS = (("clean", "Natural"), ("pgd-adp", "PGD-ADP"), ("pgd-ce", "PGD_CE-100"), ("pgd-cw", "PGD_CW-100"))
PAPER_CELLS = {
    "1": [(v, m, f"MNIST / {name}", c) for v, name in (("combined", "Ours"), ("pgd", "Madry’s"), ("trades", "TRADES"),
                                                        ("free", "AdvFree"))
          for m, c in (("train_seconds", "T_train [s]"), ("pass_seconds", "T_epoch [s]"), ("clean", "natural"),
                       ("pgd-adp", "PGD-ADP"))],
    "2": [("combined", m, f"MNIST / {r}", "lambda=0.1") for m, r in _METRIC_ROWS],
    # Table 3's MNIST attacks are PGD-20; ours stay PGD-100 (the stronger), said beside the table
    "3": [("combined-nols", m, f"MNIST / {r.replace('-100', '-20')}", "lambda=0.1") for m, r in _METRIC_ROWS],
    "4": [(v, m, f"MNIST / {r}", c) for v, c in (("advtrain", "AdvTrain"), ("rec", "REC"), ("combined", "Combined"))
          for m, r in _METRIC_ROWS],
}


def paper_table(s: dict, rows: list[dict], table: str):
    """One of the paper's Tables 1-4, MNIST half, 'ours ± std (paper; ours - paper)' per cell; accuracies in
    percent, times in seconds. Free-AT's epoch time is per pass over the data (a data epoch is m passes)."""
    import pandas as pd

    from ..reporting import mean_spread

    cells = list(PAPER_CELLS[table])
    if table == "2":  # Ours at the other lambdas of the grid
        for key in dict.fromkeys(r["key"] for r in rows if r["key"].startswith("combined@")):
            cells += [(key, m, f"MNIST / {r}", f"lambda={float(key.split('@')[1])}") for m, r in _METRIC_ROWS]
    ours = []
    for variant, metric, row_, column in cells:
        scale = 1.0 if metric.endswith("seconds") else 100.0
        values = [scale * r[metric] for r in rows if r["key"] == variant and r.get(metric) is not None]
        if values:
            mean, spread = mean_spread(values)
            ours.append({"row": row_, "column": column, "mean": mean, "std": spread, "n": len(values)})
    frame = published.side_by_side(published.compare("efgsm", table, pd.DataFrame(
        ours, columns=["row", "column", "mean", "std", "n"])))
    frame = frame[[name.startswith("MNIST") for name in frame.index]]
    return frame[[c for c in frame.columns if not all(cell.startswith("nan") for cell in frame[c])]]  # CIFAR-only


def reconstruction_figure(s: dict, records: list[dict]):
    """What R draws: R(one-hot k) for every class, and for a few test images x, the PGD image x', R(C(x)) and
    R(C(x')), from Ours' first seed. None when its weights are not here (they are not committed)."""
    import matplotlib.pyplot as plt
    import torch

    from .. import experiments
    from ..attacks import pgd
    from ..data import to_float
    from ..models import reconstructor_of

    record = next((r for r in records if r["config"].get("variant") == "combined"), None)
    if record is None:
        return None
    if not store.weights_path(record["key"]).exists():
        return None
    model = experiments.load_trained(record["key"])
    dataset = experiments.prepare_data(record["config"])
    reconstructor = reconstructor_of(model)
    x, y = to_float(dataset.x_test[:6]), dataset.y_test[:6]
    torch.manual_seed(0)
    x_adv = pgd(model, x, y, s["eps"], s["eval_alpha"], s["eval_steps"])
    with torch.no_grad():
        prototypes = reconstructor(torch.eye(dataset.num_classes))
        shown = [("x", x), ("PGD x'", x_adv), ("R(C(x))", reconstructor(model(x).softmax(1))),
                 ("R(C(x'))", reconstructor(model(x_adv).softmax(1)))]
        predicted = model(x_adv).argmax(1)
    fig, axes = plt.subplots(5, 10, figsize=(10, 5.4))
    for ax in axes.flat:
        ax.axis("off")
    for k in range(dataset.num_classes):
        axes[0, k].imshow(prototypes[k, 0], cmap="gray", vmin=0, vmax=1)
        axes[0, k].set_title(f"R(one-hot {k})", fontsize=9)
    for row_, (name, images) in enumerate(shown, start=1):
        for i in range(len(x)):
            axes[row_, i].imshow(images[i, 0], cmap="gray", vmin=0, vmax=1)
            label = f"{name}, y={int(y[i])}" if name == "x" else (f"{name} -> {int(predicted[i])}" if name == "PGD x'"
                                                                   else name)
            axes[row_, i].set_title(label, fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------------------------

def _cell(table: str, row: str, column: str) -> float:
    return published.cell("efgsm", table, row, column)


def _t1_gap(baseline: str) -> float:
    """Table 1, MNIST: the paper's PGD-ADP of Ours minus `baseline`'s."""
    return published.gap("efgsm", "1", ("MNIST / Ours", "PGD-ADP"), (f"MNIST / {baseline}", "PGD-ADP"))


def _t2_gap(row: str, other_lambda: str) -> float:
    """Table 2, MNIST: the paper's lambda = 0.1 minus lambda = `other_lambda` in `row`."""
    return published.gap("efgsm", "2", (f"MNIST / {row}", "lambda=0.1"), (f"MNIST / {row}", f"lambda={other_lambda}"))


# eFGSM's own catastrophic-overfitting signature (C11): the per-epoch PGD validation falls from its
# best by more than CO_DROP points
CO_DROP = 10.0


class Evidence:
    """What every claim of the chapter reads: the settings and the summary rows, paired by the
    variant's key."""

    def __init__(self, s: dict, rows: list[dict]):
        self.s, self.rows = s, rows

    def by_seed(self, key, metric):
        return cells(self.rows, metric, key=key)

    def diffs(self, a, metric_a, b, metric_b=None, scale=100.0):
        return paired(self.rows, a, b, metric_a, metric_b, key="key", scale=scale)


def not_run(claim: Claim, why: str) -> dict:
    return row(claim, Judgement(INCONCLUSIVE, reason=why))


def c1_speed(e: Evidence) -> dict:
    c1 = Claim("C1 (Table 1) Ours trains 4-5x faster than AdvFree", "5.34x on MNIST (268 s vs 1,430 s)", "greater",
               paper_effect=round(_cell("1", "MNIST / AdvFree", "T_train [s]") / _cell("1", "MNIST / Ours", "T_train [s]") - 4, 2),
               unit="(ratio - 4)",
               definition="the paper's ratio of whole training times, which follows from the budgets each method was "
                          "given; shown instead: AdvFree's seconds per pass over the data / ours, minus 4, per seed")
    free, ours = e.by_seed("free", "pass_seconds"), e.by_seed("combined", "pass_seconds")
    per_pass = shown([free[k] / ours[k] - 4 for k in sorted(set(free) & set(ours))],
                     "AdvFree's seconds per pass over the data / ours, minus 4")
    return row(c1, Judgement(UNTESTABLE, parts=(("per pass", per_pass),), reason=(
        "the ratio divides two training budgets the authors chose (AdvFree's replays and epochs against Ours' "
        "epochs, each set by hand): another choice gives another ratio, so no run decides '4-5x' as stated; the "
        "seconds per pass over the data are shown beside")))


def c2_mnist_robustness(e: Evidence) -> dict:
    s, paper = e.s, PROFILES["paper"]
    free_differs = (None if (s["free_replay"], s["free_step"]) == (paper["free_replay"], paper["free_step"]) else
                    f"AdvFree runs m = {s['free_replay']}, step {s['free_step']:g} in this profile, not the paper's "
                    f"m = {paper['free_replay']}, step {paper['free_step']:g} (the paper warns that a larger step does "
                    "not converge): a comparison with it says nothing about the paper's baseline")
    c2 = Claim("C2 (Table 1, MNIST) Ours is more robust than AdvFree and Madry, less than TRADES",
               "PGD-ADP 92.37 vs 87.62 / 88.45 / 95.41", "greater", paper_effect=_t1_gap("Madry’s"),
               definition=f"robust accuracy (the per-image worst case of {ROBUST.label}; the paper reads PGD-ADP "
                          "alone), ours - each baseline, same classifier (AdvFree's passes over the data: see the "
                          f"choices); PGD-AT and TRADES at {s['pgd_steps']} / {s['trades_steps']} steps (the paper's: 40)")
    less = Claim(c2.text, c2.paper, "less", paper_effect=_t1_gap("TRADES"), baseline="TRADES")

    def against_baseline(claim, key, why_not=None):
        """Ours - a baseline in robust accuracy (undecided where the baseline did not become robust
        at this scale: the shared guard), or undecided for `why_not`."""
        j = judge(claim, e.diffs("combined", "robust", key))
        return j.inconclusive(why_not) if why_not and j.verdict != INCONCLUSIVE else j
    return row(c2, all_of([
        ("vs AdvFree", against_baseline(Claim(c2.text, "", "greater", _t1_gap("AdvFree"), baseline="AdvFree"), "free",
                                        free_differs)),
        ("vs Madry", against_baseline(replace(c2, baseline="PGD-AT"), "pgd")),
        ("vs TRADES", against_baseline(less, "trades"))]))


def c3_cifar(e: Evidence) -> dict:
    return not_run(Claim("C3 (Table 1, CIFAR-10) Ours beats Madry and AdvFree, trails TRADES, with the best "
                         "natural accuracy", "PGD-ADP 46.06 vs 44.04 / 43.80 / 52.76"),
                   "CIFAR-10 is in the fast and paper profiles only"
                   if e.s["dataset"] != "cifar10-jpeg" else "not computed")


def c4_lambda(e: Evidence) -> dict:
    c4 = Claim("C4 (Table 2) lambda = 0.1 beats lambda = 1.0 and 0.001 on MNIST; lambda = 0.001 collapses natural "
               "accuracy", "PGD-ADP 92.37 (0.1) vs 91.24 (1.0) and 26.08 (0.001); natural 99.02 vs 53.19",
               "greater", definition="Ours at lambda = 0.1 minus Ours at another lambda, paired by seed: robust "
                                     f"accuracy (the worst case of {ROBUST.label}; the paper's PGD-ADP) vs 1.0 "
                                     "and vs 0.001, natural accuracy vs 0.001")
    grid = {float(r["key"].split("@")[1]) for r in e.rows if r["key"].startswith("combined@")}
    if not {1.0, 0.001} <= grid:
        return not_run(c4, "the lambda grid of this profile lacks 1.0 or 0.001")
    return row(c4, all_of([
        ("robust, 0.1 - 1.0", judge(Claim(c4.text, "", "greater", _t2_gap("PGD-ADP", "1.0")),
                                    e.diffs("combined", "robust", "combined@1"))),
        ("robust, 0.1 - 0.001", judge(Claim(c4.text, "", "greater", _t2_gap("PGD-ADP", "0.001")),
                                      e.diffs("combined", "robust", "combined@0.001"))),
        ("natural, 0.1 - 0.001", judge(Claim(c4.text, "", "greater", _t2_gap("Natural", "0.001")),
                                       e.diffs("combined", "clean", "combined@0.001")))]))


def c5_label_smoothing(e: Evidence) -> dict:
    c5 = Claim("C5 (Tables 2-3) label smoothing raises robust accuracy", "MNIST lambda = 0.1: PGD-ADP 92.37 vs 90.63",
               "greater", paper_effect=round(_cell("2", "MNIST / PGD-ADP", "lambda=0.1") - _cell("3", "MNIST / PGD-ADP", "lambda=0.1"), 2),
               definition=f"ours - ours without label smoothing, robust accuracy: the per-image worst case of "
                          f"{ROBUST_DLR.label} (APGD-DLR, which no logit scaling can fool, among them)")
    return row(c5, judge(c5, e.diffs("combined", "robust+dlr", "combined-nols")))


def c6a_reconstructor_alone(e: Evidence) -> dict:
    c6a = Claim("C6a (Table 4) the re-constructor alone gives no robustness", "REC PGD-ADP 0.00", "within", margin=2.0,
                definition=f"REC's robust accuracy (the worst case of {ROBUST.label}) within 2 points of 0")
    return row(c6a, judge(c6a, against(e.by_seed("rec", "robust"), 0.0)))


def c6b_reconstructor_adds(e: Evidence) -> dict:
    c6b = Claim("C6b (Table 4) the re-constructor adds robustness to eFGSM training",
                "Combined 92.37 vs AdvTrain 90.05 (PGD-ADP)", "greater",
                paper_effect=published.gap("efgsm", "4", ("MNIST / PGD-ADP", "Combined"), ("MNIST / PGD-ADP", "AdvTrain")),
                definition=f"Combined - AdvTrain, robust accuracy (the worst case of {ROBUST.label})")
    return row(c6b, judge(c6b, e.diffs("combined", "robust", "advtrain")))


def c7_delta_bound(e: Evidence) -> dict:
    paper_share = _cell("text", "MNIST / high-risk share (Delta < eps)", "percent")
    c7 = Claim("C7 (Section 4.2) the Delta estimate (Eq. 9) bounds robust accuracy without PGD: "
               f"{paper_share:g} % of MNIST is high-risk, a better bound than PGD's (Table 4)", f"{paper_share:g} %",
               definition="Ours' share of high-risk training images in its last epoch (the defense's count: "
                          "Delta < eps at eFGSM's start x^e, or x^e already misclassified), against the paper's "
                          "share and against 100 - robust accuracy, per seed")
    risk = {r["seed"]: 100 * r["high_risk_by_epoch"][-1] for r in e.rows
            if r["key"] == "combined" and r.get("high_risk_by_epoch") and r["high_risk_by_epoch"][-1] is not None}
    if not risk:
        return not_run(c7, "no record of Ours holds the estimate (`high_risk`, entered by the defense's "
                           "end_epoch into every epoch's history)")
    robust = e.by_seed("combined", "robust")
    return row(c7, Judgement(UNTESTABLE, reason=(
        "Delta (Eq. 9) is a first-order (linearised) estimate of the distance to the decision boundary, "
        "neither a lower nor an upper bound of it: the share of images it calls high-risk bounds no robust "
        "accuracy, so no measurement can confirm 'bounds' as stated; the shares are shown"), parts=(
        ("share - the paper's", shown([v - paper_share for v in risk.values()],
                                      "a share of a shorter run on fewer images (this profile) is not the "
                                      "paper's 40 epochs on all of MNIST")),
        ("share - (100 - robust accuracy)",
         shown([risk[k] - (100 - 100 * robust[k]) for k in sorted(set(risk) & set(robust))],
               "the share is taken on the training batches as training goes, robust accuracy on test images: "
               "not the same images")),
    )))


def c8_trades_efgsm(e: Evidence) -> dict:
    return not_run(Claim("C8 (Section 4.2) TRADES + eFGSM beats ours and is 6x faster than TRADES on CIFAR-10",
                         "48.05 % vs 46.06 %; 250 s vs 1,526 s an epoch"), "CIFAR-10 only; not in this profile")


def c9_no_masking(e: Evidence) -> dict:
    s = e.s
    last, before = sorted(s["steps_sweep"])[-1], sorted(s["steps_sweep"])[-2]
    c9 = Claim("C9 (Section 4.3) no gradient masking in ours: PGD converges in iterations (Fig. 2), reaches 0 % at "
               "large eps (Fig. 3), transfer is weaker than white-box (Table 5)", "Figures 2-3, Table 5", "within",
               margin=2.0,
               definition=f"(a) PGD_CE at {last} vs {before} iterations (the paper's fixed step) within 2 points; (c) "
                          "PGD at the largest eps within 2 points of 0; (d) transfer from each source above white-box "
                          "PGD-ADP; (e, ours) AutoAttack within 3 points of APGD-CE on the same images")
    biggest = str(max(s["eps_sweep"]))
    # the sweeps' points as cells of their own (each measured on the images its record names)
    points = [{**r, **{f"{group} {k}": v for group in ("steps_sweep", "eps_sweep") for k, v in r[group].items()}}
              for r in e.rows if r["key"] == "combined" and "steps_sweep" in r]
    parts = [("(a) converged", judge(c9, paired(points, "combined", "combined", f"steps_sweep {last}",
                                                f"steps_sweep {before}", key="key"))),
             ("(c) 0 % at large eps", judge(c9, against(cells(points, f"eps_sweep {biggest}", key="combined"), 0.0)))]
    weaker = Claim("transfer weaker", "", "greater")
    for label in ("standard", "madry"):
        parts.append((f"(d) transfer from {label}", judge(weaker, e.diffs("combined", f"transfer-{label}", "combined",
                                                                           "pgd-adp"))))
    aa = Claim("AA close", "", "within", margin=3.0)
    parts.append(("(e) AutoAttack", judge(aa, e.diffs("combined", "pgd-adp-aa", "combined", "autoattack"))))
    return row(c9, all_of(parts))


def c10_small_model(e: Evidence) -> dict:
    return not_run(Claim("C10 (Section 3.4) a much smaller model matches larger competitors",
                         "0.2M vs 3.3M (Madry) / 0.76M (TRADES)"),
                   "every method here trains the same 0.2M classifier (the fair comparison); the competitors' "
                   "larger models are not in this profile")


def c11_no_catastrophic_overfitting(e: Evidence) -> dict:
    c11 = Claim("C11 (Section 3.1) eFGSM avoids the catastrophic overfitting of plain FGSM",
                "qualitative", "greater",
                definition="premise: plain FGSM overfits (its FGSM accuracy exceeds its PGD-ADP accuracy, by the rule's "
                           "bound); then eFGSM (AdvTrain, no R) must not show the signature itself: its per-epoch PGD "
                           f"validation accuracy ends within {CO_DROP:g} points of its best epoch. Its final FGSM - "
                           f"PGD-ADP gap beside PGD-AT's is shown, not judged: TRADES, a multi-step method that cannot "
                           "overfit this way, shows a gap of 34 to 40 points here too, so the gap does not single out "
                           "catastrophic overfitting")
    premise = judge(Claim("FGSM overfits", "", "greater"), e.diffs("fgsm", "fgsm", "fgsm", "pgd-adp"))
    collapse = best_minus_last(e.rows, "val_by_epoch", e.s["validation"], key="advtrain")

    def gap(key):  # FGSM minus PGD-ADP accuracy per seed, on the same images
        a, b = e.by_seed(key, "fgsm"), e.by_seed(key, "pgd-adp")
        return dict(zip(sorted(set(a) & set(b)), paired_differences(a, b)))
    own, ref = gap("advtrain"), gap("pgd")
    seeds = sorted(set(own) & set(ref))
    judgement = all_of([("plain FGSM overfits", premise),
                        ("(i) eFGSM's PGD validation does not collapse",
                         judge(Claim(c11.text, "", "within", margin=CO_DROP), collapse)),
                        ("eFGSM's FGSM - PGD-ADP gap less PGD-AT's",
                         shown([own[k] - ref[k] for k in seeds], "a gap multi-step training shows too"))])
    if premise.verdict != CONFIRMED:  # nothing to avoid: the claim is neither borne out nor refuted
        judgement = judgement.inconclusive("plain FGSM did not overfit catastrophically at this scale, so there "
                                           "was nothing to avoid")
    return row(c11, judgement)


# the paper's claims in its order, one function each (our reading, Section 2.4 of the specification)
CLAIM_CHECKS = (c1_speed, c2_mnist_robustness, c3_cifar, c4_lambda, c5_label_smoothing, c6a_reconstructor_alone,
                c6b_reconstructor_adds, c7_delta_bound, c8_trades_efgsm, c9_no_masking, c10_small_model,
                c11_no_catastrophic_overfitting)


def claims(s: dict, rows: list[dict]) -> list[dict]:
    """The paper's testable claims judged by the book's rule, one function each (`CLAIM_CHECKS`)."""
    evidence = Evidence(s, rows)
    return [check(evidence) for check in CLAIM_CHECKS]


def takeaways(s: dict, rows: list[dict]) -> list[str]:
    """The page's conclusions, computed from its numbers (means over seeds, percent)."""
    def mean(key, metric):
        values = [r[metric] for r in rows if r["key"] == key and r.get(metric) is not None]
        return sum(values) / len(values) if values else None

    out = []
    ours, adv, madry = mean("combined", "robust"), mean("advtrain", "robust"), mean("pgd", "robust")
    if ours is not None and madry is not None:
        out.append(f"**Ours** keeps {100 * ours:.1f} % robust accuracy (the per-image worst case of {ROBUST.label}) "
                   f"against {100 * madry:.1f} % for **PGD-AT** "
                   f"({s['pgd_steps']} steps) on the same classifier" +
                   (f" and {100 * adv:.1f} % for eFGSM without the re-constructor." if adv is not None else "."))
    t_ours, t_free = mean("combined", "train_seconds"), mean("free", "train_seconds")
    if t_ours and t_free:
        speed = (f"ours is {t_free / t_ours:.2f}x as fast" if t_free >= t_ours else
                 f"ours takes {t_ours / t_free:.2f}x AdvFree's time")
        passes_free = round(mean("free", "data_epochs") * mean("free", "replay"))
        passes_ours = round(mean("combined", "data_epochs"))
        out.append(f"**AdvFree** trained in {t_free:.0f} s ({passes_free} passes over the data) and **ours** in "
                   f"{t_ours:.0f} s ({passes_ours} passes): {speed} (the paper: 5.34x faster, against AdvFree run "
                   "for 550 epochs on another model).")
    fgsm, fgsm_adp = mean("fgsm", "fgsm"), mean("fgsm", "pgd-adp")
    if fgsm is not None and fgsm_adp is not None:
        gap = 100 * (fgsm - fgsm_adp)
        out.append(f"**Plain FGSM** scores {100 * fgsm:.1f} % under FGSM and {100 * fgsm_adp:.1f} % under PGD-ADP"
                   + (": catastrophic overfitting." if gap > 20 else f", a gap of {gap:.1f} points."))
    zero, zero_fgsm = mean("advtrain-sigma0", "pgd-adp"), mean("advtrain-sigma0", "fgsm")
    if zero is not None and zero_fgsm is not None:
        out.append(f"**eFGSM with sigma = 0** (a deterministic start) scores {100 * zero_fgsm:.1f} % under FGSM and "
                   f"{100 * zero:.1f} % under PGD-ADP" + (": it overfits catastrophically too, so the noise in Eq. 14 "
                                                         "is what keeps eFGSM away from it here." if
                                                         zero_fgsm - zero > 0.2 else "."))
    steps = sorted(s["steps_sweep"])
    drops = [r["steps_sweep"][str(steps[-2])] - r["steps_sweep"][str(steps[-1])] for r in rows
             if r["key"] == "combined" and "steps_sweep" in r]
    ce, adp = mean("combined", "pgd-ce"), mean("combined", "pgd-adp")
    if drops and ce is not None and adp is not None:
        out.append(f"For **ours**, PGD_CE with the paper's step still loses {100 * sum(drops) / len(drops):.1f} points "
                   f"between {steps[-2]} and {steps[-1]} iterations, and APGD-CE ({100 * adp:.1f} %) is below "
                   f"PGD_CE-{s['eval_steps']} ({100 * ce:.1f} %): " +
                   ("the fixed-step PGD has not converged, so it overstates robustness; the adaptive attack is the "
                    "one to read." if ce - adp > 0.02 else "the two attacks agree."))
    rec = mean("rec", "robust")
    if rec is not None:
        out.append(f"The **re-constructor alone** keeps {100 * rec:.1f} % robust accuracy" +
                   (": no robustness, as the paper's Table 4 says." if rec < 0.05 else "."))
    return out


CHAPTER = Chapter("efgsm", "Fast and robust: eFGSM with a re-constructor (Chen and Lee 2020)", PARAMETERS, PROFILES,
                  experiments, summary, group_by="variant", plot_metrics=("clean", "robust"), priority=priority)
