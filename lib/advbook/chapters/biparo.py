"""BIPARO, "Adversarial training for image classification": L-inf, L2 and FGSM training of a small
network, MAT-Rand, noise at prediction and PNI, judged against strong and EOT attacks.

Every variant is a BasicNet (the paper's own small model; see models/basicnet.py for where its
definition comes from) on CIFAR-10 (JPEG q75 copy) in the cpu profile; the fast and paper
profiles add the ResNet-20 / VGG11 / ResNet-18 models of Tables 2, 3, 5 and 6.
"""
from __future__ import annotations

import functools
import math

from .. import data
from ..claims import INCONCLUSIVE, Claim, Judgement, all_of, judge, paired_differences, row
from ..evaluate import sweep
from ..train import SCHEDULES
from . import Chapter, Parameter, fast_path

ARCHS = ("basicnet", "resnet20", "vgg11-bn", "resnet18-noisy")
ARCH_LABELS = {"basicnet": "BasicNet", "resnet20": "ResNet-20", "vgg11-bn": "VGG11-BN",
               "resnet18-noisy": "ResNet-18 (the paper's 'Wide Resnet18')"}
# the variants a profile can train; the suffix says what differs from "PGD-inf"
VARIANTS = ("PGD-inf", "PGD-2", "FGSM", "natural", "MAT-Rand", "PGD-inf + noise", "PNI MAT-Rand",
            "mix + early stop")
HEADLINE = ("PGD-inf", "MAT-Rand")
RANDOMIZED = ("PGD-inf + noise", "PNI MAT-Rand")
METRICS = {"clean": "natural", "pgd-linf": "L-inf PGD", "pgd-l2": "L2 PGD", "fgsm": "L-inf FGSM"}
THREATS = {"unaware": "(i) noise off for the attacker", "naive": "(ii) one draw per step",
           "eot": "(iii) EOT over m draws"}

PARAMETERS = [
    Parameter("dataset", str, "dataset registry name", choices=tuple(data.LOADERS)),
    Parameter("archs", list, "architectures trained (BasicNet always; the others with MAT-Rand, Table 3)",
              item_type=str, choices=ARCHS),
    Parameter("variants", list, "BasicNet training variants", item_type=str, choices=VARIANTS),
    Parameter("seeds", list, "training seeds (paired across variants)", 0, 2**31 - 1, item_type=int),
    Parameter("epochs", int, "training epochs (lr x0.1 at 1/2 and 3/4, as the paper's 20 and 30 of 40)", 1, 1000),
    Parameter("arch_epochs", int, "training epochs of the ResNets and VGG", 1, 1000),
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
    Parameter("draws", int, "prediction draws a randomized model is scored with", 1, 1000),
    Parameter("eot", int, "draws per gradient step of the EOT attacker", 1, 1000),
    Parameter("p_natural", float, "share of natural batches in the mix (the paper: 0.05)", 0.0, 1.0),
    Parameter("n_eval", int, "test images attacked", 1, 10**6),
    Parameter("n_random", int, "test images for the randomized models' threat models", 1, 10**6),
    Parameter("n_detail", int, "test images of the sweeps", 1, 10**6),
    Parameter("autoattack_n", int, "test images for AutoAttack (standard, or rand for random models; 0: skip)",
              0, 10**6),
    Parameter("detail_seeds", int, "how many seeds get AutoAttack and the sweeps", 1, 100),
    Parameter("precision", str, "training precision: fp32, or bf16 with the GPU fast path", choices=("fp32", "bf16")),
]

COMMON = {"dataset": "cifar10-jpeg", "archs": ["basicnet"], "variants": list(VARIANTS[:7]), "batch_size": 128,
          "lr": 0.01, "eps": 0.03, "alpha": 0.0075, "eps_l2": 0.5, "train_steps": 7, "eval_steps": 20,
          "restarts": 2, "eps_train": [0.0, 0.015, 0.045, 0.06], "l2_sweep": [0.25, 0.5, 1.0],
          "eps_sweep": [0.0, 0.015, 0.03, 0.06, 0.12, 0.25], "steps_sweep": [1, 5, 20, 50], "sigma": 0.03,
          "draws": 5, "eot": 10, "p_natural": 0.05, "precision": "fp32", "arch_epochs": 8}
PROFILES = {
    # CPU, seconds: 8x8 digits (BasicNet with padded convolutions); decides nothing
    "smoke": {**COMMON, "dataset": "digits", "seeds": [0, 1, 2], "epochs": 4, "lr": 0.05, "train_subset": 0,
              "n_val": 200, "eps": 0.1, "alpha": 0.025, "eps_l2": 0.5, "train_steps": 3, "eval_steps": 5,
              "restarts": 1, "eps_train": [0.0, 0.05], "eps_sweep": [0.0, 0.1, 0.4], "steps_sweep": [1, 5],
              "l2_sweep": [0.5], "sigma": 0.1, "draws": 2, "eot": 2, "n_eval": 100, "n_random": 50, "n_detail": 50,
              "autoattack_n": 0, "detail_seeds": 1},
    # 2 CPU cores shared by three chapters, about 20 minutes of one core (measured: PGD-7 training
    # 1.5 s per 1,000 images per epoch): BasicNet only, 4,000 training images, 6 epochs, 3 seeds
    "cpu": {**COMMON, "seeds": [0, 1, 2], "epochs": 6, "lr": 0.05, "train_subset": 4000, "n_val": 500,
            "eps_train": [0.0, 0.015, 0.045], "n_eval": 500, "n_random": 200, "n_detail": 200, "eot": 8,
            "autoattack_n": 50, "detail_seeds": 1},
    # one GPU, about 15 minutes (the reading's plan): full training set, 15 epochs of BasicNet,
    # ResNet-20, VGG11 and ResNet-18 trained with MAT-Rand for a few epochs
    "fast": {**COMMON, "archs": list(ARCHS), "variants": list(VARIANTS), "seeds": [0, 1, 2], "epochs": 15,
             "arch_epochs": 8, "train_subset": 0, "n_val": 1000, "n_eval": 2000, "n_random": 1000,
             "n_detail": 1000, "autoattack_n": 500, "detail_seeds": 1, "precision": "bf16"},
    # the paper's settings: 40 epochs for BasicNet (Table 1), 50 for the others (Section 3.1)
    "paper": {**COMMON, "archs": list(ARCHS), "variants": list(VARIANTS), "seeds": [0, 1, 2], "epochs": 40,
              "arch_epochs": 50, "train_subset": 0, "n_val": 1000, "n_eval": 10000, "n_random": 2000,
              "n_detail": 2000, "autoattack_n": 1000, "detail_seeds": 3, "precision": "bf16"},
}


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


@functools.lru_cache(maxsize=8)
def _pixel_std(dataset: str, n_val: int, train_subset: int) -> tuple:
    """The per-channel pixel std the model normalizes by (that of the data it is trained on), for
    noise at prediction given in pixel units."""
    from ..experiments import prepare_data
    d = prepare_data({"dataset": dataset, "validation": n_val, "subset": {"train": train_subset or None}})
    return d.channel_stats()[1]


def evaluation(s: dict, randomized: bool, detailed: bool) -> list[dict]:
    """Clean, FGSM, best-iterate PGD L-inf and L2 with restarts, the L2 eps sweep; a randomized
    model is scored over `draws` fresh draws under the three threat models; the detailed
    evaluation adds AutoAttack (`rand` for random models) and the iterations and eps sweeps."""
    n = s["n_random"] if randomized else s["n_eval"]
    steps, eps, l2 = s["eval_steps"], s["eps"], s["eps_l2"]
    linf = {"attack": "pgd", "eps": eps, "alpha": s["alpha"], "steps": steps, "restarts": s["restarts"]}
    l2pgd = {"attack": "pgd", "norm": "l2", "eps": l2, "alpha": l2 / 4, "steps": steps, "restarts": s["restarts"]}
    fgsm = {"attack": "fgsm", "eps": eps}
    attacks = {"pgd-linf": linf, "pgd-l2": l2pgd, "fgsm": fgsm}
    extra = {"draws": s["draws"]} if randomized else {}
    specs = [{"name": "clean", "attack": "clean", **extra}]
    specs += [{"name": k, "n": n, **v, **extra} for k, v in attacks.items()]
    if randomized:
        specs += [{"name": f"unaware {k}", "n": n, **v, **extra, "attacker_noise": False} for k, v in attacks.items()]
        specs += [{"name": f"eot {k}", "n": n, **v, **extra, "eot": s["eot"]} for k, v in attacks.items()]
    specs += sweep({**l2pgd, "n": s["n_detail"], **extra, **({"eot": s["eot"]} if randomized else {})}, "eps",
                   s["l2_sweep"], name="l2_sweep", scale={"alpha": 0.25})
    if detailed:
        if s["autoattack_n"]:
            specs.append({"name": "autoattack", "attack": "autoattack", "n": s["autoattack_n"], "eps": eps,
                          "version": "rand" if randomized else "standard", **extra})
        if not randomized:
            # one random start, so that more steps can never help the model (best iterate)
            specs += sweep({"attack": "pgd", "n": s["n_detail"], "eps": eps, "alpha": s["alpha"]}, "steps",
                           s["steps_sweep"], name="steps_sweep")
            specs += sweep({"attack": "pgd", "n": s["n_detail"], "steps": steps}, "eps", s["eps_sweep"],
                           name="eps_sweep", scale={"alpha": 0.25})
    return specs


def model_config(s: dict, arch: str, variant: str) -> dict:
    options = {}
    if variant == "PNI MAT-Rand":
        options["pni"] = True
    if variant in ("PGD-inf + noise", "mix + early stop"):
        options.update(predict_noise=s["sigma"],
                       pixel_std=list(_pixel_std(s["dataset"], s["n_val"], s["train_subset"])))
    return {"name": arch, **({"options": options} if options else {})}


def experiments(s: dict) -> list[dict]:
    """Every model of the chapter: the BasicNet variants, Figure 1's training budgets, and the
    other architectures (MAT-Rand; ResNet-20 also with PNI and with L-inf PGD)."""
    runs = [("basicnet", v, None) for v in s["variants"]]
    runs += [("basicnet", f"PGD-inf eps_train={e:g}", e) for e in s["eps_train"]
             if e != s["eps"] and not (e == 0 and "natural" in s["variants"])]
    for arch in s["archs"]:
        if arch != "basicnet":
            runs.append((arch, "MAT-Rand", None))
            if arch in ("resnet20", "resnet18-noisy"):
                runs.append((arch, "PGD-inf", None))
            if arch == "resnet20":
                runs.append((arch, "PNI MAT-Rand", None))
            if arch == "resnet18-noisy":
                runs.append((arch, "PGD-inf + noise", None))
    configs = []
    for arch, variant, eps_train in runs:
        defense, params = training(s, variant, eps_train)
        randomized = variant in RANDOMIZED or variant == "mix + early stop"
        for i, seed in enumerate(s["seeds"]):
            configs.append({
                "chapter": "biparo", "profile": s["profile"], "dataset": s["dataset"], "variant": variant,
                "arch": arch, "validation": s["n_val"],
                "subset": {"train": s["train_subset"] or None},
                "model": model_config(s, arch, variant),
                "train": {"defense": defense, "defense_params": params,
                          "epochs": s["epochs"] if arch == "basicnet" else s["arch_epochs"],
                          "batch_size": s["batch_size"], "lr": s["lr"], "schedule": "piecewise",
                          "augment": arch != "basicnet", "seed": seed,
                          # robust accuracy on held-out training images after every epoch (Figure 2),
                          # with the noise off, so that selection is not noisy; never the test set
                          "validation_spec": {"name": "pgd-linf-10", "attack": "pgd", "eps": s["eps"],
                                              "alpha": s["alpha"], "steps": 10, "attacker_noise": False},
                          "select_best": variant == "mix + early stop",
                          **fast_path(s["precision"])},
                "evaluate": evaluation(s, randomized, detailed=i < s["detail_seeds"] and
                                       (variant in HEADLINE or randomized)),
            })
    return configs


CHAPTER = Chapter("biparo", "Adversarial training for image classification (BIPARO)", PARAMETERS, PROFILES,
                  experiments, None, group_by="variant", plot_metrics=("clean", "pgd-linf"))
