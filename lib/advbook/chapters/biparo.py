"""BIPARO, "Adversarial training for image classification": L-inf, L2 and FGSM training of a small
network, MAT-Rand, noise at prediction and PNI, judged against strong and EOT attacks.

Every variant is a BasicNet (the paper's own small model; see models/basicnet.py for where its
definition comes from) on CIFAR-10 (JPEG q75 copy) in the cpu profile; the fast and paper
profiles add the ResNet-20 / VGG11 / ResNet-18 models of Tables 2, 3, 5 and 6.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from .. import data, masking, per_image, published
from ..claims import (INCONCLUSIVE, Claim, Declined, Judgement, all_of, by_seed, cell_fields, epochs_minus_epochs,
                      image_count, judge, learned_need, paired_differences, row)
from ..claims import diffs as _claims_diffs
from ..claims import mean as _claims_mean
from ..evaluate import MAX_DRAWS, sweep
from ..per_image import Suite
from . import BUDGET, CLAIMS, CPU_PRECISION, EXTRA, NOT_GIVEN, Chapter, CHANNELS_LAST, Parameter, baseline_row, budget, fast_path

ARCHS = ("basicnet", "resnet20", "vgg11-bn", "resnet18-noisy")
ARCH_LABELS = {"basicnet": "BasicNet", "resnet20": "ResNet-20", "vgg11-bn": "VGG11-BN",
               "resnet18-noisy": "ResNet-18 (the paper's 'Wide Resnet18')"}
# the variants a profile can train; the suffix says what differs from "PGD-inf"
VARIANTS = ("PGD-inf", "PGD-2", "FGSM", "natural", "MAT-Rand", "PGD-inf + noise", "PNI MAT-Rand",
            "mix + early stop", "MAT-Rand + noise")
HEADLINE = ("PGD-inf", "MAT-Rand")
# C6's own models (`overfitting_epochs`): PGD-inf BasicNets trained long enough for robust overfitting
LONG_RUN = "long PGD-inf (C6)"
RANDOMIZED = ("PGD-inf + noise", "PNI MAT-Rand", "MAT-Rand + noise", "mix + early stop")
METRICS = {"clean": "natural", "pgd-linf": "L-inf PGD", "pgd-l2": "L2 PGD", "fgsm": "L-inf FGSM"}
THREATS = {"unaware": "(i) noise off for the attacker", "naive": "(ii) one draw per step",
           "eot": "(iii) EOT over m draws"}
# the robust accuracy every claim and side-by-side table reads, per threat: per image, the worst case
# over every attack of that threat the chapter ran on every model (`suites`); each attack's own
# number stays in the threat table and the masking checklist
ROBUST = {"pgd-linf": "robust L-inf", "pgd-l2": "robust L2", "fgsm": "robust FGSM"}
# a randomized model's robust accuracy is bracketed: the worst case above is its low end (the
# lowest of several shares of a few draws is biased low), EOT's own accuracy on the same images
# (`HIGH_ATTACK`, fixed in advance, so not biased low) its high end; a deterministic model's two
# are the same number
HIGH = {name: f"{name} (high end)" for name in ROBUST.values()}
HIGH_ATTACK = {"pgd-linf": "eot pgd-linf", "pgd-l2": "eot pgd-l2", "fgsm": "eot fgsm"}
# clean accuracy on the images of each worst case, to pair with it (a drop from clean)
CLEAN_ON = {name: f"clean on the images of {name}" for name in ROBUST.values()}
WORST_CASE = ("an attack's accuracy is per image the worst case over every attack of its threat run on the model "
              "(L-inf: PGD and FGSM; a randomized model's under all three threat models, bracketed by EOT's own "
              "accuracy, and decided only where both ends agree)")

PARAMETERS = [
    Parameter("dataset", str, "dataset registry name", choices=tuple(data.LOADERS)),
    Parameter("archs", list, "architectures trained (BasicNet always; the others with MAT-Rand, Table 3)",
              item_type=str, choices=ARCHS),
    Parameter("variants", list, "BasicNet training variants", item_type=str, choices=VARIANTS),
    Parameter("seeds", list, "training seeds (paired across variants)", 0, 2**31 - 1, item_type=int),
    Parameter("epochs", int, "training epochs (lr x0.1 at 1/2 and 3/4, as the paper's 20 and 30 of 40)", 1, 1000),
    Parameter("arch_epochs", int, "training epochs of the ResNets and VGG", 1, 1000),
    Parameter("overfitting_epochs", int, "epochs of C6's own PGD-inf BasicNets, the rate x0.1 at 1/2 and 3/4 "
              "(0: none; C6 then reads the PGD-inf curve of `epochs`)", 0, 1000),
    Parameter("overfitting_subset", int, "training images of C6's own models (0: all)", 0, 10**7),
    Parameter("overfitting_val", int, "held-out training images C6's own models are attacked on after every "
              "epoch (their sampling bounds the claim: with 500, only a drop of about 15 points could show)",
              1, 10**6),
    Parameter("batch_size", int, "training batch size", 1, 8192),
    Parameter("lr", float, "initial SGD learning rate (momentum 0.9, weight decay 5e-4)", 1e-6, 10.0),
    Parameter("train_subset", int, "training images used (0: all)", 0, 10**7),
    Parameter("n_val", int, "training images held out for per-epoch validation and early stopping", 1, 10**6),
    Parameter("eps", float, "L-inf budget (the paper: 0.03), training and evaluation", 0.0, 1.0),
    Parameter("alpha", float, "L-inf PGD step (the paper: 0.0075)", 0.0, 1.0),
    Parameter("eps_l2", float, "L2 budget (the paper gives none; RobustBench's 0.5)", 0.0, 100.0),
    Parameter("train_steps", int, "PGD steps in training (not given; Madry's 7)", 1, 100),
    Parameter("eval_steps", int, "PGD steps at evaluation (best iterate)", 1, 1000),
    Parameter("restarts", int, "PGD random restarts at evaluation", 1, 100),
    Parameter("eps_train", list, "other L-inf training budgets (Figure 1; 0 is natural training)", 0.0, 1.0,
              item_type=float),
    Parameter("l2_sweep", list, "L2 evaluation budgets (the sweep the paper does not give)", 0.0, 100.0,
              item_type=float),
    Parameter("eps_sweep", list, "L-inf budgets of the masking check (must reach 0 %)", 0.0, 1.0, item_type=float),
    Parameter("steps_sweep", list, "PGD iterations of the masking check", 1, 10**4, item_type=int),
    Parameter("sigma", float, "noise at prediction, pixel units (not given; = eps, Section 3.3)", 0.0, 1.0),
    Parameter("draws", int, "prediction draws a randomized model is scored with", 1, MAX_DRAWS),
    Parameter("eot", int, "draws per gradient step of the EOT attacker", 1, 1000),
    Parameter("p_natural", float, "share of natural batches in the mix (the paper: 0.05)", 0.0, 1.0),
    Parameter("n_eval", int, "test images attacked", 1, 10**6),
    Parameter("n_random", int, "test images of the randomized models (a comparison with a plain twin needs n_eval)",
              1, 10**6),
    Parameter("n_clean", int, "test images for clean accuracy (0: all; a drop from clean needs n_eval)", 0, 10**6),
    Parameter("seed_images", int, "test images each seed draws for itself, with its own training subset, both seeded "
              "by the training seed, so that the spread over seeds includes the sampling of images (0: every seed "
              "on the test split's first images)", 0, 10**6),
    Parameter("n_detail", int, "test images of the sweeps", 1, 10**6),
    Parameter("autoattack_n", int, "test images for AutoAttack (standard, or rand for random models; 0: skip)",
              0, 10**6),
    Parameter("detail_seeds", int, "how many seeds get AutoAttack and the sweeps", 1, 100),
    Parameter("precision", str, "training precision: fp32, or bf16 with the fast path (a GPU, or a CPU with bf16 hardware)", choices=("fp32", "bf16")),
    CHANNELS_LAST,
]

COMMON = {"channels_last": False, "dataset": "cifar10-jpeg", "archs": ["basicnet"], "variants": list(VARIANTS[:7]), "batch_size": 128,
          "lr": 0.01, "eps": 0.03, "alpha": 0.0075, "eps_l2": 0.5, "train_steps": 7, "eval_steps": 20,
          "restarts": 2, "eps_train": [0.0, 0.015, 0.045, 0.06], "l2_sweep": [0.25, 0.5, 1.0],
          "eps_sweep": [0.0, 0.015, 0.03, 0.06, 0.12, 0.25], "steps_sweep": [1, 5, 20, 50], "sigma": 0.03,
          "draws": 5, "eot": 10, "p_natural": 0.05, "precision": "fp32", "arch_epochs": 8, "seed_images": 0,
          "overfitting_epochs": 0, "overfitting_subset": 0, "overfitting_val": 1000}
PROFILES = {
    # CPU, seconds: 8x8 digits (BasicNet with padded convolutions); decides nothing
    "smoke": {**COMMON, "dataset": "digits", "seeds": [0, 1, 2], "epochs": 6, "lr": 0.1, "train_subset": 0,
              "n_val": 200, "eps": 0.1, "alpha": 0.025, "eps_l2": 0.5, "train_steps": 3, "eval_steps": 5,
              "restarts": 1, "eps_train": [0.0], "eps_sweep": [0.0, 0.1, 0.4], "steps_sweep": [1, 5],
              "l2_sweep": [0.5], "sigma": 0.1, "draws": 2, "eot": 2, "n_eval": 100, "n_random": 50, "n_clean": 0, "n_detail": 50,
              "autoattack_n": 0, "detail_seeds": 1},
    # 2 CPU cores, a design that can decide (issue 35): BasicNet only, 40,000 training images (on
    # 4,000, PGD training hardly ever learned; on 20,000 one PGD-inf seed in five stayed at chance:
    # `learning_by_design`), 6 epochs, 5 seeds, each seed on its own 500 test images and training
    # subset (the images' sampling is in the seeds' spread), every attack on those same images; about
    # 200 minutes of two one-thread processes
    # C6 (robust overfitting) has its own PGD-inf models: the paper's 40 epochs with its drops at 20
    # and 30, on 20,000 images (where 4 of 5 seeds learned in 6 epochs), attacked on 5,000 held-out
    # images after every epoch, scored clean only; 15 to 16 minutes each on one thread
    "cpu": {**COMMON, "precision": CPU_PRECISION, "seeds": [0, 1, 2, 3, 4], "epochs": 6, "lr": 0.05,
            "train_subset": 40000, "overfitting_epochs": 40, "overfitting_subset": 20000, "overfitting_val": 5000,
            "n_val": 500, "eps_train": [0.0, 0.015, 0.045], "n_eval": 500, "n_random": 500,
            "n_clean": 0, "n_detail": 500, "seed_images": 500, "eot": 8, "autoattack_n": 50, "detail_seeds": 1,
            "channels_last": True},
    # one H200, two 8-minute windows for the BasicNet claims' models (about 13 minutes planned by
    # `advbook compute biparo --profile fast --dry-run`); ResNet-20, VGG11 and ResNet-18 for a few
    # epochs after (see `priority`): full training set, 15 epochs in batches of 512 (a GPU step of
    # BasicNet costs its kernel launches, whatever the batch) at 4x the learning rate (linear scaling)
    "fast": {**COMMON, "archs": list(ARCHS), "variants": list(VARIANTS[:8]), "seeds": [0, 1, 2], "epochs": 15,
             "batch_size": 512, "lr": 0.04,
             "arch_epochs": 8, "train_subset": 0, "n_val": 1000, "n_eval": 2000, "n_random": 2000, "n_clean": 2000,
             "n_detail": 1000, "autoattack_n": 500, "detail_seeds": 1, "precision": "bf16"},
    # the paper's settings: 40 epochs for BasicNet (Table 1), 50 for the others (Section 3.1)
    "paper": {**COMMON, "archs": list(ARCHS), "variants": list(VARIANTS[:8]), "seeds": [0, 1, 2], "epochs": 40,
              "arch_epochs": 50, "train_subset": 0, "n_val": 1000, "n_eval": 10000, "n_random": 10000, "n_clean": 10000, "n_detail": 2000, "autoattack_n": 1000, "detail_seeds": 3, "precision": "bf16"},
}


# the other architectures' models (claims C8, C9, C11, C14 and ResNet-20's C12) need more GPU
# time than two windows hold at this scale: they come after the BasicNet models, as extras
CLAIM_VARIANTS = ("PGD-inf", "PGD-2", "FGSM", "natural", "MAT-Rand", "PGD-inf + noise", "PNI MAT-Rand")


def priority(config: dict, spec: dict) -> int:
    """The BasicNet models the claims compare (C1 to C7, C10, C12 to C15: the training variants and
    Figure 1's budgets) under the attacks and threat models the claims read; the other
    architectures, the BasicNet mix, AutoAttack and the sweeps are extras."""
    if config["arch"] != "basicnet" or spec["name"] == "autoattack" or "sweep" in spec:
        return EXTRA
    variant = config["variant"]
    return CLAIMS if variant in (*CLAIM_VARIANTS, LONG_RUN) or variant.startswith("PGD-inf eps_train=") else EXTRA


def attack_params(s: dict) -> dict:
    """The training attacks: L-inf PGD (eps, alpha given by the paper) and L2 PGD (eps_l2 our
    choice, its step eps_l2 / 4 mirroring alpha / eps = 1/4), train_steps steps each."""
    return {"linf": {"eps": s["eps"], "alpha": s["alpha"], "steps": s["train_steps"]},
            "l2": {"eps": s["eps_l2"], "alpha": s["eps_l2"] / 4, "steps": s["train_steps"]}}


def training(s: dict, variant: str, eps_train: float | None = None) -> tuple[str, dict]:
    """(defense, its parameters) of a variant."""
    a = attack_params(s)
    if eps_train is not None:  # Figure 1: L-inf PGD at another budget, step eps_train / 4
        return ("standard", {}) if eps_train == 0 else \
            ("pgd", {"eps": eps_train, "alpha": eps_train / 4, "steps": s["train_steps"]})
    if variant in ("PGD-inf", "PGD-inf + noise"):
        return "pgd", a["linf"]
    if variant == "PGD-2":
        return "pgd-norm", {**a["l2"], "norm": "l2"}
    if variant == "FGSM":
        return "fgsm", {"eps": s["eps"]}
    if variant == "natural":
        return "standard", {}
    if variant == "mix + early stop":
        return "natural-mix", {"p_natural": s["p_natural"], **a}
    return "mat-rand", a


def baselines(s: dict) -> list[tuple[str, str, str, str]]:
    """Every baseline's hyperparameters in this run against the paper's, and why they differ:
    (baseline, this run, the paper, why). The paper's values are its profile's where the paper
    gives them (eps 0.03 and step 0.0075: Sections 2.2 and 3.1; 40 epochs with the rate dropped at
    20 and 30: Table 1; 50 for the larger models: Section 3.1); what it leaves open says so."""
    p = PROFILES["paper"]
    others = [ARCH_LABELS[a] for a in s["archs"] if a != "basicnet"]
    common = [
        ("data", "the CIFAR-10 JPEG q75 copy" if s["dataset"] == "cifar10-jpeg" else s["dataset"], "CIFAR-10",
         "the copy available offline (JPEG q75)" if s["dataset"] == "cifar10-jpeg" else BUDGET),
        ("training images", f"{s['train_subset'] or 'all'} ({s['n_val']} held out)", NOT_GIVEN,
         "not given (the whole training set, presumably); ours keeps images out for per-epoch validation"
         + ("" if s["train_subset"] == p["train_subset"] else ", and fewer of them: " + BUDGET)),
        ("BasicNet epochs", f"{s['epochs']}, rate x0.1 at 1/2 and 3/4",
         f"{p['epochs']}, rate x0.1 at 1/2 and 3/4", BUDGET),
        ("initial rate", f"{s['lr']:g}", NOT_GIVEN,
         "not given for BasicNet (Section 3.1's 0.01 is for the larger models); "
         + ("we take that 0.01" if s["lr"] == p["lr"] else "a higher rate for the fewer epochs of this profile")),
        ("optimizer", f"SGD, momentum 0.9, weight decay 5e-4, batch {s['batch_size']}", NOT_GIVEN,
         "not given: the usual SGD recipe, batch 128 (the spec's choice; the GPU profiles scale it)"),
        ("other architectures", f"{', '.join(others)}, {s['arch_epochs']} epochs" if others else "not trained",
         f"{', '.join(ARCH_LABELS[a] for a in p['archs'] if a != 'basicnet')}, {p['arch_epochs']} epochs", BUDGET),
    ]
    linf, l2 = attack_params(s)["linf"], attack_params(s)["l2"]
    plinf = attack_params(p)["linf"]
    steps = ("steps", str(s["train_steps"]), NOT_GIVEN, "not given by the paper: Madry et al.'s 7")
    start = ("random start", "yes", "yes", "")
    return [
        baseline_row("every BasicNet variant", common),
        baseline_row("L-inf PGD training (PGD-inf)", [
            ("eps", budget(linf["eps"]), budget(plinf["eps"]), BUDGET),
            ("step", budget(linf["alpha"]), budget(plinf["alpha"]), BUDGET), steps, start]),
        baseline_row("L2 PGD training (PGD-2)", [
            ("eps", f"{l2['eps']:g}", NOT_GIVEN, "not given by the paper: RobustBench's 0.5 (a sweep shows more)"),
            ("step", f"{l2['alpha']:g} (eps / 4)", NOT_GIVEN, "not given: eps / 4, as L-inf's 0.0075 / 0.03"),
            steps, start]),
        baseline_row("L-inf FGSM training", [("eps", budget(s["eps"]), budget(p["eps"]), BUDGET),
                                             ("random start", "no", "no", "")]),
        baseline_row("natural training", [("adversarial examples", "none", "none", "")]),
        baseline_row("PNI (He et al.)", [
            ("noise", "PNI-W: one learned scale per layer, initial 0.25, no weight decay", NOT_GIVEN,
             "not given ('trainable Gaussian noise at each layer'): He et al.'s PNI-W")]),
        baseline_row("noise at prediction", [
            ("sigma", f"{s['sigma']:g} (pixels)", NOT_GIVEN, "not given: eps, our reading of Section 3.3's "
             "'same value'")]),
    ]


@functools.lru_cache(maxsize=8)
def _pixel_std(dataset: str, n_val: int, subset: tuple) -> tuple:
    """The per-channel pixel std the model normalizes by (that of the data it is trained on), for
    noise at prediction given in pixel units."""
    from ..experiments import prepare_data
    d = prepare_data({"dataset": dataset, "validation": n_val, "subset": dict(subset)})
    return d.channel_stats()[1]


def evaluation(s: dict, randomized: bool, detailed: bool) -> list[dict]:
    """Clean, FGSM, best-iterate PGD L-inf and L2 with restarts, the L2 eps sweep; a randomized
    model is scored over `draws` fresh draws under the three threat models; the detailed
    evaluation adds AutoAttack (`rand` for random models) and the iterations and eps sweeps."""
    # the cpu profile's records measured randomized models on fewer images than their plain twins and
    # clean accuracy on all: the claims decline those comparisons (the GPU profiles use n_eval for all)
    n = s["n_random"] if randomized else s["n_eval"]
    steps, eps, l2 = s["eval_steps"], s["eps"], s["eps_l2"]
    linf = {"eps": eps, "alpha": s["alpha"], "steps": steps, "restarts": s["restarts"]}
    l2pgd = {"norm": "l2", "eps": l2, "alpha": l2 / 4, "steps": steps, "restarts": s["restarts"]}
    attacks = {"pgd-linf": ("pgd", linf), "pgd-l2": ("pgd", l2pgd), "fgsm": ("fgsm", {"eps": eps})}
    eot = {"eot": s["eot"]} if randomized else {}
    extra = {"draws": s["draws"]} if randomized else {}
    specs = [{"name": "clean", "attack": "clean", **({"n": s["n_clean"]} if s["n_clean"] else {}), **extra}]
    specs += [{"name": k, "attack": a, "params": p, "n": n, **extra} for k, (a, p) in attacks.items()]
    if randomized:
        specs += [{"name": f"unaware {k}", "attack": a, "params": p, "n": n, **extra, "attacker_noise": False}
                  for k, (a, p) in attacks.items()]
        specs += [{"name": f"eot {k}", "attack": a, "params": {**p, **eot}, "n": n, **extra}
                  for k, (a, p) in attacks.items()]
        # the best iterate is picked on the attacker's own draws; the last iterate, scored on fresh
        # draws too, guards against a selection that luck made weaker
        specs.append({"name": "eot-last pgd-linf", "attack": "pgd",
                      "params": {**linf, **eot, "restarts": 1, "keep_best": False}, "n": n, **extra})
    specs += sweep({"attack": "pgd", "params": {**l2pgd, **eot}, "n": s["n_detail"], **extra}, "eps",
                   s["l2_sweep"], name="l2_sweep", scale={"alpha": 0.25})
    if detailed:
        if s["autoattack_n"]:
            specs.append({"name": "autoattack", "attack": "autoattack",
                          "params": {"eps": eps, "version": "rand" if randomized else "standard"},
                          "n": s["autoattack_n"], **extra})
        if not randomized:
            # one random start, so that more steps can never help the model (best iterate)
            specs += sweep({"attack": "pgd", "params": {"eps": eps, "alpha": s["alpha"]}, "n": s["n_detail"]},
                           "steps", s["steps_sweep"], name="steps_sweep")
            specs += sweep({"attack": "pgd", "params": {"steps": steps}, "n": s["n_detail"]}, "eps", s["eps_sweep"],
                           name="eps_sweep", scale={"alpha": 0.25})
    return specs


def data_subset(s: dict, seed: int) -> dict:
    """The training and test images of one seed's models: the profile's training subset and, with
    `seed_images`, a test subset drawn with the training seed (the same for every variant of that
    seed, so that comparisons stay paired)."""
    if not s["seed_images"]:
        return {"train": s["train_subset"] or None}
    return {"train": s["train_subset"] or None, "test": s["seed_images"], "seed": seed}


def model_config(s: dict, arch: str, variant: str, seed: int) -> dict:
    options = {}
    if variant == "PNI MAT-Rand":
        options["pni"] = True
    if variant in ("PGD-inf + noise", "MAT-Rand + noise", "mix + early stop"):
        options.update(predict_noise=s["sigma"],
                       pixel_std=list(_pixel_std(s["dataset"], s["n_val"], tuple(sorted(data_subset(s, seed).items())))))
    # Table 6's "17 million parameters" ResNet-18: width x1.25 (80 to 640 channels, 17.45M)
    width = {"width": 80} if arch == "resnet18-noisy" and variant == "mix + early stop" else {}
    return {"name": arch, **width, **({"options": options} if options else {})}


def experiments(s: dict) -> list[dict]:
    """Every model of the chapter: the BasicNet variants, Figure 1's training budgets, and the
    other architectures (MAT-Rand; ResNet-20 also with PNI and with L-inf PGD)."""
    runs = [("basicnet", v, None) for v in s["variants"]]
    runs += [("basicnet", f"PGD-inf eps_train={e:g}", e) for e in s["eps_train"]
             if e != s["eps"] and not (e == 0 and "natural" in s["variants"])]
    if s["overfitting_epochs"]:
        runs.append(("basicnet", LONG_RUN, None))
    for arch in s["archs"]:
        if arch != "basicnet":
            runs.append((arch, "MAT-Rand", None))
            if arch in ("resnet20", "resnet18-noisy"):
                runs.append((arch, "PGD-inf", None))
            if arch == "resnet20":
                runs.append((arch, "PNI MAT-Rand", None))
            if arch == "resnet18-noisy":  # Table 4's noise on Table 3's model; Table 6's combined recipe
                runs += [(arch, "MAT-Rand + noise", None), (arch, "mix + early stop", None)]
    configs = []
    for arch, variant, eps_train in runs:
        long = variant == LONG_RUN
        defense, params = training(s, "PGD-inf" if long else variant, eps_train)
        randomized = variant in RANDOMIZED
        for i, seed in enumerate(s["seeds"]):
            evaluate = evaluation(s, randomized, detailed=i < s["detail_seeds"] and (variant in HEADLINE or randomized))
            configs.append({
                "chapter": "biparo", "profile": s["profile"], "dataset": s["dataset"], "variant": variant,
                "arch": arch, "validation": s["overfitting_val"] if long else s["n_val"],
                "subset": data_subset({**s, "train_subset": s["overfitting_subset"]} if long else s, seed),
                "model": model_config(s, arch, variant, seed),
                "train": {"defense": defense, "defense_params": params,
                          "epochs": s["overfitting_epochs"] if long else s["epochs"] if arch == "basicnet"
                          else s["arch_epochs"],
                          "batch_size": s["batch_size"], "lr": s["lr"], "schedule": "piecewise",
                          "augment": arch != "basicnet", "seed": seed,
                          # robust accuracy on held-out training images after every epoch (Figure 2),
                          # never the test set; the attacker sees the model without its noise, and the
                          # score is one draw of the noisy model (noise on), as it predicts
                          "validation_spec": {"name": "pgd-linf-10", "attack": "pgd",
                                              "params": {"eps": s["eps"], "alpha": s["alpha"], "steps": 10},
                                              "attacker_noise": False},
                          "select_best": variant == "mix + early stop",
                          # C6's runs, the first trained after `advbook bench` timed it: channels_last
                          # in fp32 too whatever the profile says (BasicNet PGD-10 on one CPU thread:
                          # 470 -> 760 images/s, `OMP_NUM_THREADS=1 advbook bench --models basicnet
                          # --methods pgd10 --no-reference --workers 0`, 2026-12-07)
                          **fast_path(s["precision"], s["channels_last"] or long)},
                # C6's long runs are read by their curves: clean accuracy only, for the learned guard
                "evaluate": evaluate[:1] if long else evaluate,
            })
    return configs


def label(r: dict) -> str:
    """A record's row label: the variant, prefixed by the architecture when it is not BasicNet."""
    arch, variant = r["config"]["arch"], r["config"]["variant"]
    return variant if arch == "basicnet" else f"{ARCH_LABELS[arch].split(' (')[0]} {variant}"


def suites(randomized: bool) -> dict[str, Suite]:
    """{ROBUST name: the suite of attacks its per-image worst case is taken over}: L-inf, PGD and
    FGSM; L2, PGD; FGSM alone; a randomized model's under every threat model (the noise off, one
    draw per step, EOT, and EOT's last iterate), each image counting for the lowest share of draws
    any attack left it. A deterministic model has one attacker whatever the threat model, so its
    suite is the same quantity and carries the same label (the label is part of the images'
    identity: a noisy model pairs with its plain twin). The AutoAttack and the sweeps of the detail
    seeds are left out: a suite is what every compared seed and variant ran, or pairs would differ
    in their attacks; the checklist compares them with the worst case instead."""
    threats = ("", "unaware ", "eot ") if randomized else ("",)
    names = {"pgd-linf": [f"{t}{a}" for a in ("pgd-linf", "fgsm") for t in threats]
                         + (["eot-last pgd-linf"] if randomized else []),
             "pgd-l2": [f"{t}pgd-l2" for t in threats], "fgsm": [f"{t}fgsm" for t in threats]}
    labels = {"pgd-linf": "L-inf PGD and FGSM", "pgd-l2": "L2 PGD", "fgsm": "L-inf FGSM"}
    return {ROBUST[m]: Suite(f"{labels[m]}, every threat model", tuple(names[m])) for m in ROBUST}


def summary(s: dict, records: list[dict]) -> list[dict]:
    """One row per trained model: accuracies (fractions) under every attack and threat model, per
    threat the robust accuracy the claims read (`ROBUST`, the per-image worst case over `suites`,
    and `HIGH`, its high end), the per-epoch curves (training accuracy on its own adversarial
    batches, validation PGD), and the accuracies the masking checklist doubts (`not_believed`,
    `claims`' guard 6): the checklist runs on the first `detail_seeds` seeds, and what it doubts
    there it doubts for every seed of that training recipe."""
    doubted = recipe_doubts(s, records)
    rows = []
    for r in records:
        m, history = r["metrics"], r["history"]
        randomized = r["config"]["variant"] in RANDOMIZED
        worst = suites(randomized)
        out = {"variant": label(r), "arch": r["config"]["arch"], "seed": r["config"]["train"]["seed"],
               "randomized": randomized, "train_seconds": r["train_seconds"],
               "train_acc": [h["train_acc"] for h in history], "val_pgd": [h.get("val_accuracy") for h in history],
               "selected_epoch": next((h["epoch"] for h in history if h.get("selected")), None),
               **cell_fields(r, worst=worst)}
        for metric, name in ROBUST.items():
            suite = worst[name]
            high = per_image.one_attack(r, HIGH_ATTACK[metric], suite) if randomized else \
                (out[name], out["images"][name], out["outcomes"][name]) if name in out else None
            for field, found in ((HIGH[name], high), (CLEAN_ON[name], per_image.one_attack(r, "clean", suite))):
                if found is not None:
                    out[field], out["images"][field], out["outcomes"][field] = found
        for key in METRICS:
            out[key] = m.get(key)
            # the three threat models; a deterministic model has one attacker, whichever the name
            out[f"naive {key}"] = m.get(key)
            out[f"unaware {key}"] = m.get(f"unaware {key}", m.get(key)) if key != "clean" else m.get(key)
            out[f"eot {key}"] = m.get(f"eot {key}", m.get(key)) if key != "clean" else m.get(key)
        out["eot-last pgd-linf"] = m.get("eot-last pgd-linf")  # the EOT attacker's last iterate, its own number
        for eps, acc in m.get("l2_sweep", {}).items():
            out[f"l2 {float(eps):g}"] = acc
        if "autoattack" in m:
            out["autoattack"] = m["autoattack"]
        out["not_believed"] = {metric: why for metric, why in doubted.get(out["variant"], {}).items() if metric in out}
        rows.append(out)
    return rows


def recipe_doubts(s: dict, records: list[dict]) -> dict[str, dict[str, str]]:
    """{variant: {metric: why}}: the gradient attacks' accuracies, under every threat model's name,
    that the masking checklist of a seed of that variant doubts (`masking.doubted_metrics`)."""
    def names(metric):
        return (metric, *(f"{t} {metric}" for t in THREATS))
    def both_ends(metric):
        return ROBUST[metric], HIGH[ROBUST[metric]]
    return masking.doubted_metrics(masking_checks(s, records), {
        "pgd": (*names("pgd-linf"), *names("pgd-l2"), *both_ends("pgd-l2")),
        "fgsm": (*names("fgsm"), *both_ends("fgsm")), "autoattack": ("autoattack",), "worst": both_ends("pgd-linf")})


MASKING_ROLES = {"clean": "clean", "fgsm": "fgsm", "pgd": "pgd-linf", "autoattack": "autoattack",
                 "steps_sweep": "steps_sweep", "eps_sweep": "eps_sweep"}


def masking_checks(s: dict, records: list[dict]) -> list[dict]:
    """The book's masking checklist (advbook.masking) per deterministic headline model, the L-inf
    worst case the claims read checked against AutoAttack on AutoAttack's images."""
    return [masking.checklist(r, MASKING_ROLES, label(r), worst=suites(False)[ROBUST["pgd-linf"]])
            for r in records if "steps_sweep" in r["metrics"]]


def autoattack_table(records: list[dict]) -> list[dict]:
    """Per model that ran AutoAttack (`rand` with EOT for a randomized one), its accuracy beside the
    L-inf worst case the claims read, both on AutoAttack's images (the first of the suite's):
    AutoAttack runs on fewer images, and a table pairs numbers of the same images only. None where
    the worst case cannot be taken there (records without per-image outcomes, other images)."""
    out = []
    for r in records:
        aa = r["evaluations"].get("autoattack")
        if aa is None:
            continue
        n = aa["result"]["n"]
        found = per_image.worst_case(r, suites(r["config"]["variant"] in RANDOMIZED)[ROBUST["pgd-linf"]], first=n)
        same = found is not None and found[1].startswith(per_image.selection(aa) + ",")
        out.append({"model": label(r), "seed": r["config"]["train"]["seed"], "images": n,
                    "AutoAttack (%)": round(100 * r["metrics"]["autoattack"], 1),
                    "L-inf worst case on its images (%; a randomized model's low end)":
                        round(100 * found[0], 1) if same else None})
    return out


# our rows of the paper's tables: {table: (columns, {paper column: our variant})}
PAPER_TABLES = {
    "1": {"L-inf PGD training": "PGD-inf", "L2 PGD training": "PGD-2", "L-inf FGSM training": "FGSM"},
    "2": {"PGD L-inf training": "ResNet-18 PGD-inf", "MAT-Rand training": "ResNet-18 MAT-Rand"},
    "3": {"ResNet-20": "ResNet-20 MAT-Rand", "ResNet-18 (Wide Resnet18)": "ResNet-18 MAT-Rand",
          "VGG11": "VGG11-BN MAT-Rand"},
    "4": {"BasicNet": "PGD-inf", "BasicNet with noise": "PGD-inf + noise", "ResNet-18": "ResNet-18 MAT-Rand",
          "ResNet-18 with noise": "ResNet-18 MAT-Rand + noise"},
    "5": {"NoiseNet20": "ResNet-20 PNI MAT-Rand", "ResNet20": "ResNet-20 MAT-Rand"},
    "6": {"Wide Resnet18": "ResNet-18 PGD-inf", "Wider Resnet18 manual mix": "ResNet-18 mix + early stop"},
}
SMALL_SCALE = {"2": {"PGD L-inf training": "PGD-inf", "MAT-Rand training": "MAT-Rand"},
               "5": {"NoiseNet20": "PNI MAT-Rand", "ResNet20": "MAT-Rand"}}
PAPER_ROWS = {"clean": "Natural examples", "pgd-linf": "L-inf PGD attack", "pgd-l2": "L2 PGD attack",
              "fgsm": "L-inf FGSM attack"}


def paper_table(rows: list[dict], table: str):
    """The paper's Table `table` beside ours (percent, mean ± sd over seeds; the paper's number
    and ours minus it in brackets), each attack's row our robust accuracy under its threat (`ROBUST`:
    per image, the worst case over every attack of it, every threat model for a randomized model). Where the
    cpu profile has no model of the paper's, the BasicNet analogue stands in (SMALL_SCALE) and
    the page says so."""
    import pandas as pd

    from ..reporting import mean_spread

    columns = PAPER_TABLES[table]
    if table in SMALL_SCALE and not any(r["variant"] in columns.values() for r in rows):
        columns = SMALL_SCALE[table]
    # how many test images each column's attacks were measured on: columns measured on other
    # images are not comparable, and the header says so
    counts = {}
    for column, variant in columns.items():
        found = {image_count(r["images"].get(ROBUST["pgd-linf"])) for r in rows
                 if r["variant"] == variant and r.get("images")}
        counts[column] = ", ".join(str(n) for n in sorted(n for n in found if n))
    ours = []
    for column, variant in columns.items():
        for metric, name in PAPER_ROWS.items():
            key = ROBUST.get(metric, metric)
            values = [100 * v for v in _by_seed(rows, variant, key).values()]
            if values:
                mean, spread = mean_spread(values)
                ours.append({"row": name, "column": column, "mean": mean, "std": spread, "n": len(values)})
    frame = published.side_by_side(published.compare("biparo", table, pd.DataFrame(
        ours, columns=["row", "column", "mean", "std", "n"])))
    # a randomized model's cells are the low end of its robust accuracy (the threat table has both ends)
    randomized = {c for c, v in columns.items() if any(r.get("randomized") for r in rows if r["variant"] == v)}
    frame.columns = [f"{c}" + (f" ({counts[c]} attacked images)" if counts.get(c) else "")
                     + (", attacks the low end" if c in randomized else "") + ": ours (paper; ours - paper)"
                     for c in frame.columns]
    return frame, columns


def threat_table(rows: list[dict]):
    """Every randomized model under each of the three threat models, and the two ends of its robust
    accuracy the claims read: per image the worst case over all of them, and EOT alone (percent).
    EOT's last iterate, which the worst case also takes, has a row of its own (L-inf PGD only)."""
    import pandas as pd

    from ..reporting import fmt, mean_spread

    table = {}
    for variant in dict.fromkeys(r["variant"] for r in rows if r["randomized"]):
        for threat, name in THREATS.items():
            cells = {}
            for metric in ("pgd-linf", "pgd-l2", "fgsm"):
                values = list(_by_seed(rows, variant, f"{threat} {metric}").values())
                cells[METRICS[metric]] = fmt(*mean_spread(values), len(values))
            table[(variant, name)] = cells
        last = list(_by_seed(rows, variant, "eot-last pgd-linf").values())
        table[(variant, "(iii) EOT, its last iterate")] = {METRICS["pgd-linf"]: fmt(*mean_spread(last), len(last)),
                                                           METRICS["pgd-l2"]: "", METRICS["fgsm"]: ""}
        for name, read in (("per image, the worst of all (low end)", ROBUST),
                           ("EOT alone, on the same images (high end)", {m: HIGH[n] for m, n in ROBUST.items()})):
            table[(variant, name)] = {METRICS[m]: fmt(*mean_spread(values), len(values))
                                      for m, values in ((m, list(_by_seed(rows, variant, read[m]).values()))
                                                        for m in ROBUST)}
    return pd.DataFrame.from_dict(table, orient="index")


def _by_seed(rows, variant, metric):
    return by_seed(rows, metric, variant=variant)


def _diffs(rows, a, b, metric, metric_b=None):
    # the cpu profile's records measured randomized models and clean accuracy on other images than
    # the attacks on plain models: those comparisons are declined (inconclusive, with the reason)
    return _claims_diffs(rows, a, b, metric, metric_b, decline=True)


def _mean(rows, variant, metric):
    return _claims_mean(by_seed(rows, metric, variant=variant))


def _not_run(claim: Claim, why: str) -> tuple[Claim, Judgement]:
    return claim, Judgement(INCONCLUSIVE, reason=why)


def claims(s: dict, rows: list[dict]) -> list[dict]:
    """The reading's fifteen claims (001-C1 to C15), each judged by the book's rule on paired seeds
    (A - B in points; a claim of several parts holds when each does). Attacks on randomized
    models are judged at both ends of their robust accuracy (`bracketed`)."""
    evidence = Evidence(s, rows)
    return [row(*check(evidence)) for check in CLAIM_CHECKS]


def paper_gap(table: str, a: str, b: str, metric: str) -> float:
    """The paper's A - B (points) between columns `a` and `b` of its Table `table`, under `metric`."""
    return published.gap("biparo", table, (PAPER_ROWS[metric], a), (PAPER_ROWS[metric], b))


def effects(table: str, a: str, b: str, metrics=tuple(METRICS)) -> dict[str, float]:
    """{metric: the paper's A - B} for each metric of the paper's Table `table`."""
    return {m: paper_gap(table, a, b, m) for m in metrics}


@dataclass(frozen=True)
class Bracket:
    """The paired differences at the two ends of a randomized model's robust accuracy (`HIGH`)."""
    low: object
    high: object


def bracketed(claim: Claim, d) -> Judgement:
    """`judge(claim, d)`; for a `Bracket`, the verdict both ends give (with the numbers of the end
    that refutes less), or inconclusive where they disagree (the low end's numbers shown): the
    lowest share of draws any attack left an image is biased low, so a refutation of a gain (or a
    confirmation of a loss) of the randomized side must hold at the high end too, and the reverse
    at the low end."""
    if not isinstance(d, Bracket):
        return judge(claim, d)
    low, high = judge(claim, d.low), judge(claim, d.high)
    # Holm's input: the end that refutes less (the high end for a gain, the low end for a loss)
    p_refute = max(low.p_refute, high.p_refute)
    if low.verdict == high.verdict:
        return low if low.p_refute == p_refute else high
    return replace(low, p_refute=p_refute).inconclusive(
        "a randomized model's robust accuracy lies between the per-image worst case over its attacks' shares of "
        f"draws (biased low) and EOT's own accuracy, and the two ends disagree: {low.verdict} at the low end, "
        f"{high.verdict} at the high end")


class Evidence:
    """What every claim of the chapter reads: the settings and the summary rows, with the chapter's
    ways of judging several parts at once."""
    TRIO = {"PGD-inf": "pgd-linf", "PGD-2": "pgd-l2", "FGSM": "fgsm"}

    def __init__(self, s: dict, rows: list[dict]):
        self.s, self.rows = s, rows
        self.t1 = {variant: column for column, variant in PAPER_TABLES["1"].items()}  # our variant -> Table 1's column

    def diffs(self, a, b, metric, metric_b=None):
        return _diffs(self.rows, a, b, metric, metric_b)

    def robust(self, a, b, metric):
        """A - B in robust accuracy under `metric`'s threat (`ROBUST`); where either side is
        randomized at test time, the two ends of its bracket (`HIGH`), each judged."""
        low = self.diffs(a, b, ROBUST[metric])
        if not any(r.get("randomized") for r in self.rows if r["variant"] in (a, b)):
            return low
        return Bracket(low, self.diffs(a, b, HIGH[ROBUST[metric]]))

    def has(self, variant) -> bool:
        return bool(_by_seed(self.rows, variant, "clean"))

    def parts(self, claim, pairs) -> Judgement:
        """[(label, kind, the paper's effect, differences)] judged each under `claim`'s text."""
        return all_of([(lab, bracketed(Claim(claim.text, claim.paper, kind, paper_effect=eff), d))
                       for lab, kind, eff, d in pairs])

    def metric_parts(self, claim, a, b, effects_) -> Judgement:
        """A - B under each metric of `effects_` ({metric: the paper's effect}), an attack's as the
        per-image worst case over every threat model (`ROBUST`)."""
        return self.parts(claim, [(f"{METRICS[m]}", "greater" if eff > 0 else "less", eff,
                                   self.robust(a, b, m) if m in ROBUST else self.diffs(a, b, m))
                                  for m, eff in effects_.items()])

    def grid(self) -> dict[float, str]:
        """{training eps: our variant} of Figure 1's budgets trained here."""
        s = self.s
        return {0.0: "natural", s["eps"]: "PGD-inf", **{e: f"PGD-inf eps_train={e:g}" for e in s["eps_train"]
                                                        if e not in (0.0, s["eps"])}}


def c1_diagonal(e: Evidence):
    c1 = Claim("(C1) each training is most robust against its own attack (Table 1's diagonal)",
               "L-inf PGD 27.46 vs 27.22 / 24.15; L2 PGD 32.7 vs 28.86 / 25.4; FGSM 29.34 vs 27.96 / 28.41",
               definition="BasicNet; for each attack, the model trained with it above each of the other two "
                          f"(six parts, each with the paper's own margin as its effect size); {WORST_CASE}")
    return c1, e.parts(c1, [(f"{own} vs {other} under {METRICS[m]}", "greater",
                             paper_gap("1", e.t1[own], e.t1[other], m), e.diffs(own, other, ROBUST[m]))
                            for own, m in e.TRIO.items() for other in e.TRIO if other != own])


def c2_l2_natural(e: Evidence):
    c2 = Claim("(C2) L2-PGD training gives the highest natural accuracy of the three (Table 1)",
               "47.7 vs 40.7 (L-inf PGD) and 43.2 (FGSM)",
               definition="BasicNet clean test accuracy, PGD-2 above PGD-inf and above FGSM")
    return c2, e.parts(c2, [("PGD-2 vs PGD-inf", "greater", paper_gap("1", e.t1["PGD-2"], e.t1["PGD-inf"], "clean"),
                             e.diffs("PGD-2", "PGD-inf", "clean")),
                            ("PGD-2 vs FGSM", "greater", paper_gap("1", e.t1["PGD-2"], e.t1["FGSM"], "clean"),
                             e.diffs("PGD-2", "FGSM", "clean"))])


def c3_first_order(e: Evidence):
    c3 = Claim("(C3) PGD training gives good robustness against all first-order adversaries (Section 2.1)",
               "L-inf PGD 27.46 (PGD-trained) vs 24.15 (FGSM-trained); drops of 11.8 to 12.7 points from 40.7",
               definition="PGD-inf above FGSM under L-inf PGD, and PGD-inf's drop from its natural accuracy "
                          f"within 14 points under each of the three attacks; {WORST_CASE}")
    drops = [(f"drop under {METRICS[m]}", judge(Claim(c3.text, c3.paper, "within", margin=14.0),
                                               e.diffs("PGD-inf", "PGD-inf", CLEAN_ON[ROBUST[m]], ROBUST[m])))
             for m in e.TRIO.values()]
    return c3, all_of([("PGD-inf vs FGSM under L-inf PGD",
                        judge(Claim(c3.text, c3.paper, "greater",
                                    paper_effect=paper_gap("1", e.t1["PGD-inf"], e.t1["FGSM"], "pgd-linf")),
                              e.diffs("PGD-inf", "FGSM", ROBUST["pgd-linf"]))), *drops])


def c4_own_budget(e: Evidence):
    s, grid = e.s, e.grid()
    c4 = Claim(f"(C4) against L-inf PGD at eps = {s['eps']:g}, robust accuracy is highest when training at the "
               "same eps (Figure 1)", "a figure; no numbers",
               definition=f"PGD-inf (eps_train = {s['eps']:g}) above each other trained budget "
                          f"({', '.join(f'{x:g}' for x in sorted(grid) if x != s['eps'])}) under L-inf PGD; {WORST_CASE}")
    return c4, e.parts(c4, [(f"{s['eps']:g} vs {x:g}", "greater", None, e.diffs("PGD-inf", v, ROBUST["pgd-linf"]))
                            for x, v in sorted(grid.items()) if x != s["eps"]])


def c5_over_training(e: Evidence):
    grid = e.grid()
    over = [(hi, lo) for hi, lo in ((0.045, 0.015), (0.06, 0.0), (0.04, 0.02)) if hi in grid and lo in grid]
    c5 = Claim("(C5) over-training hurts less than under-training (Figure 1)", "a figure; no numbers",
               definition="under L-inf PGD at eps, the model trained at eps + d above the one trained at eps - d: "
                          f"the pairs among (0.045, 0.015), (0.06, 0), (0.04, 0.02) trained here: "
                          f"{', '.join(f'({hi:g}, {lo:g})' for hi, lo in over) or 'none'}; {WORST_CASE}")
    return c5, e.parts(c5, [(f"{hi:g} vs {lo:g}", "greater", None,
                             e.diffs(grid.get(hi, "-"), grid.get(lo, "-"), ROBUST["pgd-linf"])) for hi, lo in over])


def c6_robust_overfitting(e: Evidence):
    """Robust accuracy after the first drop against at the end, in windows fixed before any curve is
    read (the best epoch, selected on the curve, would make any curve look as if it declined);
    on C6's own long runs where the profile trains them, else on the PGD-inf variant's curve."""
    s = e.s
    variant, epochs, n_val = (LONG_RUN, s["overfitting_epochs"], s["overfitting_val"]) if s["overfitting_epochs"] \
        else ("PGD-inf", s["epochs"], s["n_val"])
    c6 = Claim("(C6) robust overfitting: robust accuracy peaks near the first learning-rate drop, then declines "
               "(Section 2.4, Figure 2)", "a figure; no numbers", kind="greater",
               definition=f"PGD-inf BasicNet{', trained for C6 alone' if variant == LONG_RUN else ''} ({epochs} "
                          f"epochs, the rate x0.1 after epochs {epochs // 2} and {3 * epochs // 4}): L-inf PGD-10 "
                          f"accuracy on {n_val} held-out training images, mean of the two epochs just after the "
                          "first drop (where the paper's curve peaks) minus mean of the last two; both windows "
                          "fixed in advance, since the best epoch would make a decline of any curve")
    if epochs < MIN_OVERFITTING_EPOCHS:
        return c6, judge(c6, Declined(f"{epochs} epochs: robust overfitting shows after tens of epochs past the "
                                      f"first drop (the paper: 40; this claim needs {MIN_OVERFITTING_EPOCHS})"))
    d = epochs_minus_epochs(e.rows, "val_pgd", n_val, *overfitting_windows(epochs), variant=variant)
    j = judge(c6, d)
    failed = d.not_learned()
    if failed:  # the guard, said even where the bounds alone leave it undecided: no seeds of this design can
        j = j.inconclusive("a compared model did not learn: " + "; ".join(failed))
    return c6, j


# C6 needs tens of epochs past the first drop, and two windows of two epochs that do not overlap
MIN_OVERFITTING_EPOCHS = 30


def overfitting_windows(epochs: int) -> tuple[range, range]:
    """C6's two windows of epochs (1-based): the two after the first drop, and the last two; they
    overlap below 8 epochs, so C6 reads them only from `MIN_OVERFITTING_EPOCHS` on."""
    drop = epochs // 2
    return range(drop + 1, drop + 3), range(epochs - 1, epochs + 1)


def c7_mat_rand(e: Evidence):
    c7 = Claim("(C7) MAT-Rand raises L2-PGD accuracy a lot and costs a little elsewhere (Table 2)",
               "ResNet-18: L2 +10.60; natural -2.69, L-inf PGD -2.92, FGSM -2.62",
               definition="MAT-Rand minus PGD-inf, same architecture (BasicNet here; the paper's ResNet-18 in the "
                          f"GPU profiles): the L2 gain decides, the costs are shown; {WORST_CASE}")
    pair = ("ResNet-18 MAT-Rand", "ResNet-18 PGD-inf") if e.has("ResNet-18 MAT-Rand") else ("MAT-Rand", "PGD-inf")
    j = e.parts(c7, [("L2 PGD", "greater", paper_gap("2", "MAT-Rand training", "PGD L-inf training", "pgd-l2"),
                      e.diffs(*pair, ROBUST["pgd-l2"]))])
    return c7, stand_in(e, j, pair[0] == "MAT-Rand", "ResNet-18")


def stand_in(e: Evidence, j: Judgement, proxy: bool, theirs: str) -> Judgement:
    """A judgement on BasicNet where the paper's claim is about another architecture (`theirs`), after
    fewer epochs than the paper's: a stand-in, so it decides nothing about the paper's claim (the
    direction of the difference may change with the architecture and the schedule), and more seeds
    of it would not either: What holds points to the profile that trains `theirs`."""
    if not proxy:
        return j
    return replace(j.inconclusive(f"BasicNet after {e.s['epochs']} epochs stands in here for the paper's {theirs} "
                                  f"after {PROFILES['paper']['arch_epochs']}: a verdict on the stand-in ("
                                  + ("here undecided as well" if j.verdict == INCONCLUSIVE else f"here {j.verdict}")
                                  + f") is not one on the paper's claim; the fast profile trains the {theirs}"),
                   stand_in=theirs)


def _architectures(e: Evidence, claim, a, b, effects_):
    if not e.has(a) or not e.has(b):
        return _not_run(claim, "these architectures are trained in the fast and paper profiles only")
    return claim, e.metric_parts(claim, a, b, effects_)


def c8_resnet18_resnet20(e: Evidence):
    c8 = Claim("(C8) ResNet-18 (11M) beats ResNet-20 (0.27M) on all four metrics (Table 3)",
               "+9.93 natural, +3.76 L-inf PGD, +5.98 L2, +7.62 FGSM",
               definition="MAT-Rand ResNet-18 minus MAT-Rand ResNet-20, each metric")
    return _architectures(e, c8, "ResNet-18 MAT-Rand", "ResNet-20 MAT-Rand",
                          effects("3", "ResNet-18 (Wide Resnet18)", "ResNet-20"))


def c9_resnet18_vgg11(e: Evidence):
    c9 = Claim("(C9) ResNet-18 is at least as good as VGG11 on all four metrics (Table 3)",
               "+4.78, +0.04, +1.54, +4.20", definition="MAT-Rand ResNet-18 minus MAT-Rand VGG11-BN, each metric "
                                                           "(VGG11 is not deeper: we do not read it as width vs depth)")
    return _architectures(e, c9, "ResNet-18 MAT-Rand", "VGG11-BN MAT-Rand",
                          effects("3", "ResNet-18 (Wide Resnet18)", "VGG11"))


def c10_noise_basicnet(e: Evidence):
    c10 = Claim("(C10) noise at prediction raises all four BasicNet metrics (Table 4)",
                "+1.51 natural, +1.07 L-inf PGD, +0.02 L2, +0.56 FGSM",
                definition=f"the same L-inf-PGD BasicNet with and without Gaussian noise (sigma {e.s['sigma']:g}) at "
                           f"prediction, scored over fresh draws; {WORST_CASE} (EOT included; each threat model's "
                           "own number is in the table above)")
    return c10, e.metric_parts(c10, "PGD-inf + noise", "PGD-inf", effects("4", "BasicNet with noise", "BasicNet"))


def c11_noise_resnet18(e: Evidence):
    c11 = Claim("(C11) noise at prediction lowers natural accuracy and slightly raises L-inf-PGD accuracy of the "
                "ResNet-18 (Table 4)", "natural -1.81, L-inf PGD +0.52",
                definition=f"MAT-Rand ResNet-18 with noise minus without; {WORST_CASE}")
    if not e.has("ResNet-18 MAT-Rand + noise"):
        return _not_run(c11, "the ResNet-18 is trained in the fast and paper profiles only")
    return c11, e.metric_parts(c11, "ResNet-18 MAT-Rand + noise", "ResNet-18 MAT-Rand",
                               effects("4", "ResNet-18 with noise", "ResNet-18", ("clean", "pgd-linf")))


def c12_pni(e: Evidence):
    c12 = Claim("(C12) PNI (NoiseNet) trades natural and FGSM accuracy for PGD robustness (Table 5)",
                "NoiseNet20 - ResNet20: natural -5.39, L-inf PGD +1.39, L2 +0.91, FGSM -4.31",
                definition="PNI-W MAT-Rand minus MAT-Rand, same architecture (BasicNet here, ResNet-20 in the GPU "
                           f"profiles); {WORST_CASE}: a robust gain that EOT removes is never confirmed")
    pni = ("ResNet-20 PNI MAT-Rand", "ResNet-20 MAT-Rand") if e.has("ResNet-20 PNI MAT-Rand") \
        else ("PNI MAT-Rand", "MAT-Rand")
    return c12, stand_in(e, e.metric_parts(c12, *pni, effects("5", "NoiseNet20", "ResNet20")), pni[0] == "PNI MAT-Rand",
                         "ResNet-20")


def c13_pni_plateau(e: Evidence):
    c13 = Claim("(C13) the PNI BasicNet reaches its plateau earlier and stays on it longer (Figure 3)",
                "a figure over 100 epochs; no numbers", "less",
                definition="the first epoch at which validation L-inf PGD accuracy reaches 90 % of its maximum, "
                           "PNI minus plain (MAT-Rand BasicNets)", unit="epochs")

    def first_plateau(r):
        curve = [v for v in r["val_pgd"] if v is not None]
        return next(i for i, v in enumerate(curve, 1) if v >= 0.9 * max(curve)) if curve and max(curve) > 0 else None
    plateau = {v: {r["seed"]: first_plateau(r) for r in e.rows if r["variant"] == v and first_plateau(r)}
               for v in ("PNI MAT-Rand", "MAT-Rand")}
    d13 = paired_differences(plateau["PNI MAT-Rand"], plateau["MAT-Rand"], 1.0)
    j13 = judge(Claim(c13.text, c13.paper, "less", unit="epochs"), d13)
    if e.s["epochs"] < 30:
        j13 = j13.inconclusive(f"{e.s['epochs']} epochs against the paper's 100: a plateau's length cannot be seen "
                               "in so short a run")
    return c13, j13


def c14_combined_recipe(e: Evidence):
    c14 = Claim("(C14) the combined recipe (wider ResNet-18, noise at prediction, 5 % natural batches, early "
                "stopping) beats the ResNet-18 on all four metrics (Table 6)", "+0.74, +2.90, +3.54, +1.27",
                definition=f"'mix + early stop' ResNet-18 x1.25 minus the L-inf-PGD ResNet-18; {WORST_CASE}")
    if not e.has("ResNet-18 mix + early stop"):
        return _not_run(c14, "the ResNet-18s are trained in the fast and paper profiles only")
    return c14, e.metric_parts(c14, "ResNet-18 mix + early stop", "ResNet-18 PGD-inf",
                               effects("6", "Wider Resnet18 manual mix", "Wide Resnet18"))


def c15_tradeoff(e: Evidence):
    c15 = Claim("(C15) robustness trades off with accuracy (Section 4)", "no numbers",
                definition="natural training above L-inf-PGD training in natural accuracy, and below it under "
                           f"L-inf PGD (the scatter of all models is above); {WORST_CASE}")
    return c15, e.parts(c15, [("natural accuracy", "greater", None, e.diffs("natural", "PGD-inf", "clean")),
                              ("L-inf PGD accuracy", "less", None, e.diffs("natural", "PGD-inf", ROBUST["pgd-linf"]))])


# the reading's claims in its order, one function each: (Claim, Judgement)
CLAIM_CHECKS = (c1_diagonal, c2_l2_natural, c3_first_order, c4_own_budget, c5_over_training, c6_robust_overfitting,
                c7_mat_rand, c8_resnet18_resnet20, c9_resnet18_vgg11, c10_noise_basicnet, c11_noise_resnet18, c12_pni,
                c13_pni_plateau, c14_combined_recipe, c15_tradeoff)


def takeaways(s: dict, rows: list[dict]) -> list[str]:
    """The page's conclusions, computed from its own numbers (means over seeds, in percent)."""
    out = []
    pct = lambda v: f"{100 * v:.1f} %"  # noqa: E731
    trio = {v: (_mean(rows, v, "clean"), *(_mean(rows, v, ROBUST[m]) for m in ("pgd-linf", "pgd-l2", "fgsm")))
            for v in ("PGD-inf", "PGD-2", "FGSM")}
    if all(None not in t for t in trio.values()):
        best = {m: max(trio, key=lambda v: trio[v][i]) for i, m in enumerate(("natural", "L-inf PGD", "L2 PGD", "FGSM"))}
        out.append("**Table 1 at this scale**: the highest natural accuracy is " + best["natural"] + "'s, and under "
                   + ", ".join(f"{m} the best model is {v}" for m, v in list(best.items())[1:])
                   + " (the paper's diagonal would be PGD-inf, PGD-2, FGSM).")
    for noisy, plain in (("PGD-inf + noise", "PGD-inf"), ("PNI MAT-Rand", "MAT-Rand")):
        a = {t: _mean(rows, noisy, f"{t} pgd-linf") for t in THREATS}
        worst = ROBUST["pgd-linf"]
        low, high, b_pgd, b_worst = (_mean(rows, noisy, worst), _mean(rows, noisy, HIGH[worst]),
                                     _mean(rows, plain, "pgd-linf"), _mean(rows, plain, worst))
        if None in (low, high, b_pgd, b_worst) or None in a.values():
            continue
        if isinstance(_diffs(rows, noisy, plain, worst), Declined):
            out.append(f"**{noisy}** and {plain} were attacked on different test images here, so their L-inf "
                       "accuracies are not compared.")
            continue
        # like with like: one attack against one attack, the worst case against the worst case
        verdict = ("Even at the low end the noisy model is ahead, by "
                   f"{100 * (low - b_worst):.1f} points; see the claims for whether the seeds can tell."
                   if low > b_worst + 0.01 else "Only the high end is ahead; see the claims."
                   if high > b_worst + 0.01 else "The gain a weaker attacker shows disappears under EOT."
                   if max(a.values()) > b_pgd + 0.01 else "No threat model shows a gain.")
        out.append(f"**{noisy}** under L-inf PGD: {pct(a['unaware'])} when the attacker ignores the noise, "
                   f"{pct(a['naive'])} against one draw per step, {pct(a['eot'])} under EOT, against {pct(b_pgd)} "
                   f"for {plain}. Its robust accuracy lies between {pct(low)} (per image, the worst case over every "
                   f"threat model and FGSM) and {pct(high)} (EOT alone), against {pct(b_worst)} for {plain} (the "
                   f"worst case of PGD and FGSM). {verdict}")
    nat, pgd = _mean(rows, "natural", "clean"), _mean(rows, "PGD-inf", "clean")
    if nat is not None and pgd is not None:
        out.append(f"**The price of robustness**: natural training reaches {pct(nat)} natural accuracy, L-inf PGD "
                   f"training {pct(pgd)}.")
    long = [r for r in rows if r["variant"] == LONG_RUN]
    if long and s["overfitting_epochs"] >= MIN_OVERFITTING_EPOCHS:
        early, late = overfitting_windows(s["overfitting_epochs"])
        drops = epochs_minus_epochs(long, "val_pgd", s["overfitting_val"], early, late)
        failed = [r["seed"] for r in long if r["clean"] is not None and 100 * r["clean"] < learned_need(r["chance"])]
        out.append(f"**Robust overfitting (C6) over {s['overfitting_epochs']} epochs**: held-out L-inf PGD accuracy "
                   f"of epochs {early.start}-{early.stop - 1} minus epochs {late.start}-{late.stop - 1} (positive: "
                   "a decline) is " + ", ".join(f"{v:+.1f} (seed {seed})" for seed, v in zip(drops.seeds(), drops))
                   + " points: " + ("a decline in every seed" if drops and all(v > 0 for v in drops)
                                    else "not a decline in every seed")
                   + (f"; seed {', '.join(map(str, sorted(failed)))} never left chance and stays in (see 'Does PGD "
                      "training learn?')" if failed else "") + ".")
    return out


# Does PGD-inf training of BasicNet leave chance within the cpu profile's budget? The runs that
# answer it, each the cpu profile's PGD-inf model in fp32 but for what is named: its 4,000
# training images at three initial learning rates; in batches of 32 at the linearly scaled rate
# (four times the updates for the same arithmetic); five times the images at its rate
# (each on the test split's first images and without channels_last, as they were run)
LEARNING_RUNS = ([{"lr": lr, "train_subset": 4000, "seed_images": 0, "channels_last": False} for lr in (0.05, 0.02, 0.01)]
                 + [{"lr": 0.0125, "train_subset": 4000, "batch_size": 32, "seed_images": 0, "channels_last": False},
                    {"lr": 0.05, "train_subset": 20000, "seed_images": 0, "channels_last": False}])


def learning_configs(seeds=(0, 1)) -> list[dict]:
    """The configs of `LEARNING_RUNS`: the cpu profile's PGD-inf BasicNet in fp32 but for what each
    run names, eps_train = eps (no Figure 1 budgets beside it)."""
    eps, out = PROFILES["cpu"]["eps"], []
    for run in LEARNING_RUNS:
        s = CHAPTER.settings("cpu", precision="fp32", variants=["PGD-inf"], eps_train=[eps], seeds=list(seeds), **run)
        out += [c for c in experiments(s)
                if c["variant"] == "PGD-inf" and c["arch"] == "basicnet" and c["train"]["defense"] == "pgd"]
    return out


def reads() -> list[dict]:
    """The configs the page reads besides its profiles' (`advbook.pruning`): the learning diagnostic's."""
    return learning_configs()


# renderings the page promises besides its profiles (`advbook.pruning` keeps their records): the
# designs the cpu profile had before, on 4,000 and on 20,000 training images (notebooks/biparo.py
# says how to render them)
RENDERINGS = {"cpu": [{"train_subset": 4000, "seeds": [0, 1, 2], "n_random": 200, "n_detail": 200, "seed_images": 0,
                       "channels_last": False},
                      {"train_subset": 20000, "channels_last": False}]}


def learning_diagnostic(seeds=(0, 1)) -> list[dict]:
    """One row per stored model of `LEARNING_RUNS` (nothing is computed; a run not in the store
    is left out): its training images, epochs, batch size, weight updates, initial learning rate, seed, the
    last epoch's adversarial training loss and accuracy, clean test accuracy, whether it learned
    by the claims' guard (`claims.learned_need`), and when and at which commit it was trained."""
    from .. import store

    rows = []
    for config in learning_configs(seeds):
        record = store.load_model(store.model_key(config))
        if record is None:
            continue
        clean = store.load_eval(record["key"], config["evaluate"][0], store.test_selection(config))
        epochs, n_train = len(record["history"]), record["dataset"]["n_train"]
        rows.append({"training images": n_train, "epochs": epochs,
                     "batch": config["train"]["batch_size"],
                     "weight updates": epochs * -(-n_train // config["train"]["batch_size"]),
                     "initial lr": config["train"]["lr"], "seed": config["train"]["seed"],
                     "adversarial train loss": round(record["history"][-1]["train_loss"], 3),
                     "adversarial train acc. (%)": round(100 * record["history"][-1]["train_acc"], 1),
                     "clean test acc. (%)": round(100 * clean["result"]["accuracy"], 1) if clean else None,
                     "learned": bool(clean) and 100 * clean["result"]["accuracy"] >= learned_need(
                         1 / record["dataset"].get("num_classes", 10)),
                     "computed": f"{record['created'][:10]}, commit {record['commit'][:7]}"})
    return rows


def learning_by_design(variants=("PGD-inf", "PGD-inf eps_train=0.045", LONG_RUN)) -> list[dict]:
    """For the cpu profile's design and each earlier one the page renders (`RENDERINGS`), how many
    seeds of the PGD-trained BasicNets learned by the claims' guard (`claims.learned_need`), with
    each seed's clean accuracy (C6's long runs with their own images and epochs): stored records
    only, a seed not in the store left out."""
    from ..experiments import stored

    found: dict[tuple[int, int, str, int], dict[int, float]] = {}
    for overrides in [{}, *RENDERINGS["cpu"]]:
        for config in experiments(CHAPTER.settings("cpu", **overrides)):
            if config["arch"] != "basicnet" or config["variant"] not in variants:
                continue
            clean = stored(config)[1][config["evaluate"][0]["name"]]  # None if missing or of other weights
            if clean:
                design = (config["subset"]["train"] or 0, config["train"]["epochs"], config["variant"],
                          config["subset"].get("test") or 0)  # designs that differ only in test images stay apart
                found.setdefault(design, {})[config["train"]["seed"]] = 100 * clean["result"]["accuracy"]
    need, batch = learned_need(1 / 10), CHAPTER.settings("cpu")["batch_size"]
    return [{"training images": images, "epochs": epochs, "weight updates": epochs * -(-images // batch),
             "training": variant, "learned": f"{sum(a >= need for a in seeds.values())} of {len(seeds)}",
             "clean test acc. by seed (%)": ", ".join(f"{seed}: {a:.1f}" for seed, a in sorted(seeds.items()))}
            for (images, epochs, variant, _), seeds in sorted(found.items())]


def overfitting_figure(s: dict, rows: list[dict]):
    """C6's own long runs (`LONG_RUN`), one line per seed (a mean would hide a seed that never
    learned): validation L-inf PGD-10 accuracy by epoch, the rate drops dotted and the two
    windows the claim compares shaded; None where the profile trains none."""
    import matplotlib.pyplot as plt

    runs = sorted((r for r in rows if r["variant"] == LONG_RUN), key=lambda r: r["seed"])
    if not runs:
        return None
    epochs = s["overfitting_epochs"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for r in runs:
        ax.plot(range(1, len(r["val_pgd"]) + 1), [None if v is None else 100 * v for v in r["val_pgd"]],
                marker=".", label=f"seed {r['seed']}")
    for drop in (epochs / 2, 3 * epochs / 4):
        ax.axvline(drop + 0.5, color="grey", linestyle=":")
    for window in overfitting_windows(epochs):
        ax.axvspan(window.start - 0.5, window.stop - 0.5, color="grey", alpha=0.15)
    ax.set(xlabel="epoch", ylabel="held-out L-inf PGD-10 accuracy (%)",
           title=f"C6's own runs: PGD-inf BasicNet, {epochs} epochs, {s['overfitting_subset'] or 'all'} images "
                 f"({s['overfitting_val']} held out)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return fig


CHAPTER = Chapter("biparo", "Adversarial training for image classification (BIPARO)", PARAMETERS, PROFILES,
                  experiments, summary, group_by="variant", plot_metrics=("clean", "pgd-linf"), priority=priority)
