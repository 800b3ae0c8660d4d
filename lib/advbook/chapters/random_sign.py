"""Moderate random-sign perturbations in input and hidden space (Di, Yu and Tian).

R-models train with g(x) = x + eps * x ⊙ l(x), l(x) = +-sgn(x) with probability p / 1 - p, on
the input and on hidden activations; the baselines are the same network trained plainly (base)
and with Goodfellow et al.'s mixed FGSM objective. The paper reports clean and benign-disturbance
accuracy only; this chapter adds the adversarial evaluation its title implies.
"""
from __future__ import annotations


from .. import masking, published
from ..claims import (CONFIRMED, INCONCLUSIVE, NOT_CONFIRMED, Claim, Judgement, after_short_run, all_of, by_seed,
                      cell_fields, diffs, judge, mean, row, untestable, untimed)
from ..evaluate import sweep
from ..per_image import Suite
from ..models.random_sign import PLACEMENTS
from ..train import SCHEDULES
from . import BUDGET, CLAIMS, CPU_PRECISION, EXTRA, NOT_GIVEN, Chapter, CHANNELS_LAST, Parameter, baseline_row, budget, fast_path

# the disturbances that mean something for each kind of image (digits are not flip-invariant
# and MNIST has no colour: Section 3.1.4 of our reading)
DISTURBANCE_LABELS = {"random-crop": "Ran-Crop", "hflip": "Ran-Hflip", "grayscale": "Ran-GrayScale",
                      "color-jitter": "Ran-Color", "five-crop": "Random Five Crop"}
HEADLINE = ("base", "R", "FGSM")

# the paper's testable rows: LeNet on MNIST (digits stands in for it in the smoke profile) and a
# wide ResNet with dropout, crop and flip and random erasing on CIFAR-10
BLOCKS = {"digits": "lenet5", "mnist": "lenet5", "cifar10-jpeg": "wrn"}
DATASET_LABELS = {"digits": "digits (smoke)", "mnist": "MNIST", "cifar10-jpeg": "CIFAR-10 (JPEG q75 copy)"}

PARAMETERS = [
    Parameter("datasets", list, "datasets, each with its model: LeNet-5 on digits or MNIST, a WRN on CIFAR-10",
              item_type=str, choices=tuple(BLOCKS)),
    Parameter("seeds", list, "training seeds (paired across variants)", 0, 2**31 - 1, item_type=int),
    Parameter("epochs", int, "training epochs", 1, 1000),
    Parameter("batch_size", int, "training batch size", 1, 8192),
    Parameter("lr", float, "peak SGD learning rate (momentum 0.9, weight decay 5e-4)", 1e-6, 10.0),
    Parameter("schedule", str, "learning-rate schedule", choices=SCHEDULES),
    Parameter("dropout", float, "LeNet-5's dropout after each hidden FC layer", 0.0, 0.95),
    Parameter("eps", float, "the R-model's eps (the paper gives none; it requires eps < 1)", 0.0, 0.99),
    Parameter("p", float, "probability that l(x) = sgn(x) (the paper: 0.5)", 0.0, 1.0),
    Parameter("placement", str, "where g goes: the input, hidden activations, or both", choices=tuple(PLACEMENTS)),
    Parameter("eps_ablation", list, "other eps values trained (placement as above)", 0.0, 0.99, item_type=float),
    Parameter("placement_ablation", list, "other placements trained (eps as above)", item_type=str,
              choices=tuple(PLACEMENTS)),
    Parameter("gaussian", bool, "also train with Gaussian multiplicative noise of the same variance"),
    Parameter("fgsm_eps", float, "eps of the FGSM baseline (Goodfellow et al. on MNIST: 0.25)", 0.0, 1.0),
    Parameter("fgsm_weight", float, "weight of the clean loss in the FGSM objective (Goodfellow et al.: 0.5)",
              0.0, 1.0),
    Parameter("n_val", int, "training images held out to select eps by (never the test set)", 1, 10**6),
    Parameter("disturbances", list, "benign test-time transforms (Table 1)", item_type=str,
              choices=tuple(DISTURBANCE_LABELS)),
    Parameter("crop_scale", float, "smallest area fraction of Ran-Crop", 0.05, 1.0),
    Parameter("five_crop", int, "crop size of Random Five Crop (pixels)", 1, 1024),
    Parameter("attack_eps", list, "L-inf budgets of the adversarial evaluation", 0.0, 1.0, item_type=float),
    Parameter("n_eval", int, "test images attacked", 1, 10**6),
    Parameter("eval_steps", int, "PGD iterations (step 2.5 eps / steps, best iterate)", 1, 1000),
    Parameter("restarts", int, "PGD random restarts", 1, 100),
    Parameter("autoattack_n", int, "test images for AutoAttack on base, R and FGSM (0: skip)", 0, 10**6),
    Parameter("steps_sweep", list, "PGD iterations of the masking check (base, R, FGSM)", 1, 10**4, item_type=int),
    Parameter("precision", str, "training precision: fp32, or bf16 with the fast path (a GPU, or a CPU with bf16 hardware)", choices=("fp32", "bf16")),
    CHANNELS_LAST,
    # the CIFAR-10 block (Table 5's W-ResNet row, at a smaller depth and width)
    Parameter("cifar_epochs", int, "training epochs on CIFAR-10", 1, 1000),
    Parameter("cifar_lr", float, "peak SGD learning rate on CIFAR-10", 1e-6, 10.0),
    Parameter("wrn_depth", int, "WRN depth (6n + 4)", 10, 100),
    Parameter("wrn_widen", int, "WRN widening factor k", 1, 16),
    Parameter("wrn_dropout", float, "dropout between the two convolutions of each WRN block", 0.0, 0.95),
    Parameter("random_erasing", float, "random-erasing probability on CIFAR-10 (Zhong et al.: 0.5)", 0.0, 1.0),
    Parameter("cifar_fgsm_eps", float, "eps of the FGSM baseline on CIFAR-10", 0.0, 1.0),
    Parameter("cifar_attack_eps", list, "L-inf budgets of the adversarial evaluation on CIFAR-10", 0.0, 1.0,
              item_type=float),
    Parameter("cifar_disturbances", list, "benign test-time transforms on CIFAR-10", item_type=str,
              choices=tuple(DISTURBANCE_LABELS)),
    Parameter("cifar_crop_scale", float, "smallest area fraction of Ran-Crop on CIFAR-10", 0.05, 1.0),
]

COMMON = {"channels_last": False, "schedule": "cosine", "batch_size": 128, "lr": 0.01, "dropout": 0.5, "eps": 0.1, "p": 0.5,
          "placement": "both", "eps_ablation": [0.05, 0.3], "placement_ablation": ["input", "hidden"],
          "gaussian": True, "fgsm_eps": 0.25, "fgsm_weight": 0.5, "disturbances": ["random-crop", "five-crop"],
          "crop_scale": 0.7, "five_crop": 24, "attack_eps": [0.1, 0.2, 0.3], "eval_steps": 20, "restarts": 2,
          "steps_sweep": [1, 5, 20, 50], "precision": "fp32",
          "cifar_epochs": 30, "cifar_lr": 0.1, "wrn_depth": 16, "wrn_widen": 4, "wrn_dropout": 0.3,
          "random_erasing": 0.5, "cifar_fgsm_eps": 8 / 255, "cifar_attack_eps": [2 / 255, 4 / 255, 8 / 255],
          "cifar_disturbances": list(DISTURBANCE_LABELS), "cifar_crop_scale": 0.5}
PROFILES = {
    # CPU, seconds: 8x8 digits; proves the pipeline, decides nothing
    "smoke": {**COMMON, "datasets": ["digits"], "seeds": [0, 1, 2], "epochs": 10, "lr": 0.1, "dropout": 0.1, "n_val": 200,
              "eps_ablation": [0.3], "placement_ablation": ["input"], "five_crop": 6, "n_eval": 200,
              "restarts": 1, "autoattack_n": 0, "steps_sweep": [1, 5, 20], "attack_eps": [0.05, 0.1, 0.2]},
    # 2 CPU cores: full MNIST (55,000 to train, 5,000 to select eps), LeNet-5, 5 seeds (issue 35:
    # at 3, C3's bounds spanned 28 points); base, R and FGSM trained on an idle machine, one process
    # of 2 threads, so that C4 compares epoch times measured alike
    "cpu": {**COMMON, "datasets": ["mnist"], "seeds": [0, 1, 2, 3, 4], "epochs": 8, "n_val": 5000, "n_eval": 1000,
            "autoattack_n": 200, "precision": CPU_PRECISION, "channels_last": True},
    # one H200, two 8-minute windows for the claims' models (about 14 minutes planned by `advbook
    # compute random_sign --profile fast --dry-run`), the Gaussian model and the masking checks
    # after: MNIST at the paper's 20 epochs, WRN-16-4 on the CIFAR-10 JPEG copy for 15 (the paper's
    # WRN-28-10 for 200 is the paper profile), batches of 512 (small models: a GPU step costs its
    # kernel launches, whatever the batch), the learning rates unchanged
    "fast": {**COMMON, "datasets": ["mnist", "cifar10-jpeg"], "seeds": [0, 1, 2], "epochs": 20, "n_val": 5000, "n_eval": 2000,
             "autoattack_n": 500, "precision": "bf16", "batch_size": 512, "cifar_epochs": 15},
    "paper": {**COMMON, "datasets": ["mnist", "cifar10-jpeg"], "cifar_epochs": 200, "wrn_depth": 28,
              "wrn_widen": 10, "seeds": [0, 1, 2, 3, 4], "epochs": 20, "n_val": 5000,
              "eps_ablation": [0.05, 0.2, 0.3, 0.5], "n_eval": 10000, "autoattack_n": 1000, "restarts": 5,
              "precision": "bf16"},
}


def priority(config: dict, spec: dict) -> int:
    """C1 to C6 read base, R, FGSM and every R variant (the best is chosen on validation images)
    by clean, disturbed and PGD accuracy and epoch time; the Gaussian comparison, the FGSM sweep,
    AutoAttack and the iterations sweep (the masking checks) are extras."""
    name = spec["name"]
    if config["variant"] == "Gaussian" or name == "autoattack" or spec.get("sweep", {}).get("name") in ("fgsm", "steps"):
        return EXTRA
    return CLAIMS


def variants(s: dict) -> list[tuple[str, str, dict | None]]:
    """(label, defense, perturbation) for every model the chapter trains."""
    def noise(kind="random-sign", eps=s["eps"], placement=s["placement"]):
        return {"kind": kind, "eps": eps, "p": s["p"], "placement": placement}
    out = [("base", "standard", None), ("R", "standard", noise()), ("FGSM", "fgsm-mix", None)]
    out += [(f"R eps={e:g}", "standard", noise(eps=e)) for e in s["eps_ablation"] if e != s["eps"]]
    out += [(f"R {where} only", "standard", noise(placement=where)) for where in s["placement_ablation"]
            if where != s["placement"]]
    if s["gaussian"]:
        out.append(("Gaussian", "standard", {**noise(kind="gaussian"), "p": 0.5}))
    return out


def block(s: dict, dataset: str) -> dict:
    """The settings for one dataset: the chapter's own for digits and MNIST, the `cifar_` ones for
    CIFAR-10."""
    b = {**s, "dataset": dataset, "model": BLOCKS[dataset]}
    if dataset == "cifar10-jpeg":
        b.update(epochs=s["cifar_epochs"], lr=s["cifar_lr"], fgsm_eps=s["cifar_fgsm_eps"],
                 attack_eps=s["cifar_attack_eps"], disturbances=s["cifar_disturbances"],
                 crop_scale=s["cifar_crop_scale"])
    return b


def baselines(s: dict) -> list[tuple[str, str, str, str]]:
    """The two baselines, base models trained plainly and Goodfellow et al.'s FGSM objective, their
    hyperparameters in this run against the paper's, and why they differ: (baseline, this run, the
    paper, why). The paper gives only the models and the checkmarks of its Tables 4 and 5 (LeNet
    with dropout on MNIST; WRN-28-10 with dropout, standard augmentation and random erasing on
    CIFAR-10) and "FGSM for base models" (Section 4), nothing else: the rest is marked not given,
    with the source of our choice (our reading, Sections 3.1.3 and 3.1.5)."""
    p = PROFILES["paper"]

    def own(key, source):  # the reason for a value the paper leaves open
        return f"not given: {source}" + ("" if s[key] == p[key] else "; this run's own value")

    def recipe(b):
        return (f"SGD from {b['lr']:g}, {b['schedule']}, momentum 0.9, weight decay 5e-4, batch {b['batch_size']}, "
                f"{b['epochs']} epochs")
    lenet = [d for d in s["datasets"] if BLOCKS[d] == "lenet5"]
    cifar = "cifar10-jpeg" in s["datasets"]
    b, bp = block(s, lenet[0] if lenet else "mnist"), block(p, "mnist")
    c, cp = block(s, "cifar10-jpeg"), block(p, "cifar10-jpeg")
    base_mnist = [
        ("data", DATASET_LABELS[lenet[0]] if lenet else "not trained", "MNIST", BUDGET),
        ("model", f"LeNet-5 (ReLU, max-pooling), dropout {s['dropout']:g}", "LeNet with dropout (Table 4)",
         "the paper names LeNet with dropout only: LeNet-5 with dropout 0.5 (our reading, 3.1.5)"
         + ("" if s["dropout"] == p["dropout"] else "; this run's own dropout")),
        ("recipe", recipe(b), NOT_GIVEN, "not given: LeNet's usual SGD recipe (our reading, 3.1.5)"
         + ("" if recipe(b) == recipe(bp) else "; this run's own values (the paper profile: "
            + recipe(bp) + ")")),
    ]
    wrn = f"WRN-{s['wrn_depth']}-{s['wrn_widen']}" if cifar else "not trained"
    base_cifar = [
        ("model", wrn, f"WRN-{p['wrn_depth']}-{p['wrn_widen']}", BUDGET),
        ("regularisers", f"dropout {s['wrn_dropout']:g}, crop and flip, random erasing {s['random_erasing']:g}"
         if cifar else "not trained",
         "dropout, standard augmentation, random erasing (Table 5's checkmarks)",
         "rates not given: Zagoruyko and Komodakis's dropout 0.3, Zhong et al.'s erasing 0.5"
         + ("" if (s["wrn_dropout"], s["random_erasing"]) == (p["wrn_dropout"], p["random_erasing"])
            else "; this run's own values")),
        ("recipe", recipe(c) if cifar else "not trained", NOT_GIVEN,
         "not given: Zagoruyko and Komodakis's rate 0.1 for 200 epochs in the paper profile, with a cosine schedule"
         + ("" if not cifar or recipe(c) == recipe(cp) else "; this run's own values")),
    ]
    return [
        baseline_row("base, MNIST (plain training)", base_mnist),
        baseline_row("base, CIFAR-10 (plain training)", base_cifar),
        baseline_row("FGSM (Goodfellow et al.'s objective), MNIST", [
            ("eps", budget(s["fgsm_eps"]), NOT_GIVEN, own("fgsm_eps", "Goodfellow et al.'s 0.25 on MNIST")),
            ("clean-loss weight", f"{s['fgsm_weight']:g}", NOT_GIVEN, own("fgsm_weight", "Goodfellow et al.'s 0.5")),
            ("model and recipe", "the base model's", "the base model's", "")]),
        baseline_row("FGSM (Goodfellow et al.'s objective), CIFAR-10", [
            ("eps", budget(s["cifar_fgsm_eps"]) if cifar else "not trained", NOT_GIVEN,
             own("cifar_fgsm_eps", "8/255, the usual CIFAR-10 budget")),
            ("clean-loss weight", f"{s['fgsm_weight']:g}" if cifar else "not trained", NOT_GIVEN,
             own("fgsm_weight", "Goodfellow et al.'s 0.5"))]),
    ]


def model_config(b: dict, perturbation: dict | None) -> dict:
    if b["model"] == "lenet5":
        options = {"dropout": b["dropout"]}
    else:
        options = {"depth": b["wrn_depth"], "widen": b["wrn_widen"], "dropout": b["wrn_dropout"]}
    return {"name": b["model"], "options": {**options, **({"perturbation": perturbation} if perturbation else {})}}


def evaluation(s: dict, headline: bool) -> list[dict]:
    """Clean and disturbed accuracy on the whole test set (the disturbed image scored alone, as the
    paper does), FGSM and best-iterate PGD with restarts at each budget on `n_eval` images; the
    headline models also get AutoAttack, an iterations sweep, and budgets from 0 to 5/3 of the
    largest (0.5 on MNIST), where accuracy must reach 0. `s`: one dataset's settings (`block`)."""
    n, steps = s["n_eval"], s["eval_steps"]
    params = {"random-crop": {"scale": [s["crop_scale"], 1.0]}, "five-crop": {"size": s["five_crop"]}}
    specs = [{"name": "clean", "attack": "clean"}]
    # one group of metrics, {"disturbed": {d: accuracy}}: a sweep over the disturbances
    specs += [{"name": f"disturbed:{d}", "attack": d, "params": params.get(d, {}), "require_clean": False,
               "sweep": {"name": "disturbed", "value": d}} for d in s["disturbances"]]
    specs += sweep({"attack": "fgsm", "params": {}, "n": n}, "eps", s["attack_eps"], name="fgsm")
    top = max(s["attack_eps"])
    extra = {0.0, round(s["attack_eps"][0] / 2, 6), round(4 * top / 3, 6), round(5 * top / 3, 6)}
    budgets = sorted(set(s["attack_eps"]) | (extra if headline else set()))
    specs += sweep({"attack": "pgd", "params": {"steps": steps, "restarts": s["restarts"]}, "n": n}, "eps", budgets,
                   name="pgd", scale={"alpha": 2.5 / steps})
    if headline:
        eps = s["attack_eps"][0]
        if s["autoattack_n"]:
            specs.append({"name": "autoattack", "attack": "autoattack", "params": {"eps": eps}, "n": s["autoattack_n"]})
        specs += sweep({"attack": "pgd", "params": {"eps": eps, "alpha": 2.5 * eps / steps}, "n": n}, "steps",
                       s["steps_sweep"], name="steps")
    return specs


def experiments(s: dict) -> list[dict]:
    configs = []
    for dataset in s["datasets"]:
        b = block(s, dataset)
        # the WRN recipe's regularisers (Zagoruyko and Komodakis; Zhong et al.); LeNet has none
        augment = {"augment": True, "random_erasing": b["random_erasing"]} if b["model"] == "wrn" else {}
        for label, defense, perturbation in variants(b):
            params = {"eps": b["fgsm_eps"], "weight": b["fgsm_weight"]} if defense == "fgsm-mix" else {}
            for seed in b["seeds"]:
                configs.append({
                    "chapter": "random_sign", "profile": b["profile"], "variant": label, "dataset": dataset,
                    "validation": b["n_val"],
                    "model": model_config(b, perturbation),
                    "train": {"defense": defense, "defense_params": params, "epochs": b["epochs"],
                              "batch_size": b["batch_size"], "lr": b["lr"], "schedule": b["schedule"], "seed": seed,
                              # the clean accuracy on the held-out images after every epoch, to select eps by
                              "validation_spec": {"name": "clean", "attack": "clean"},
                              **augment, **fast_path(b["precision"], b["channels_last"])},
                    "evaluate": evaluation(b, headline=label in HEADLINE),
                })
    return configs


def summary(s: dict, records: list[dict]) -> list[dict]:
    """One row per trained model: accuracies (fractions), validation accuracy, epoch time; the robust
    accuracies the masking checklist doubts carry why (`not_believed`, `claims`' guard 6)."""
    rows = []
    checks = {(c["model"], c["seed"], c["dataset"]): c for c in masking_checks(s, records)}
    for r in records:
        m, history = r["metrics"], r["history"]
        check = checks.get((r["config"]["variant"], r["config"]["train"]["seed"], r["dataset"]["display_name"]), {})
        worst = suites(block(s, r["config"]["dataset"]), r["evaluations"])
        doubted = {**{f"{kind} {e}": masking.doubts(check, kind) for kind in ("fgsm", "pgd") for e in m.get(kind, {})},
                   "autoattack": masking.doubts(check, "autoattack"),
                   **{k: masking.doubts(check, "worst") for k in worst}}
        # the first epoch carries one-off costs (allocation, warm-up): time the others
        timed = history[1:] or history
        rows.append({"dataset": r["config"]["dataset"], "variant": r["config"]["variant"],
                     "seed": r["config"]["train"]["seed"],
                     "clean": m["clean"], "val_clean": history[-1].get("val_accuracy"),
                     **cell_fields(r, worst=worst),
                     **{f"disturbed {d}": v for d, v in m.get("disturbed", {}).items()},
                     **{f"fgsm {e}": v for e, v in m.get("fgsm", {}).items()},
                     **{f"pgd {e}": v for e, v in m.get("pgd", {}).items()},
                     **({"autoattack": m["autoattack"]} if "autoattack" in m else {}),
                     "epoch_seconds": sum(h["seconds"] for h in timed) / len(timed),
                     "train_loss": [h["train_loss"] for h in history],
                     "not_believed": {k: why for k, why in doubted.items() if why}})
    return rows


def suites(b: dict, evaluations: dict) -> dict[str, Suite]:
    """{"robust E": the per-image worst case of FGSM and PGD at E} for every attack budget E of one
    dataset's settings `b` (`block`) that the model ran both at, the robust accuracy C3 reads
    (every variant runs both on the same images; the headline models' extra attacks are checks)."""
    return {f"robust {e}": Suite(f"FGSM and PGD at {e:g}", (f"fgsm:{e}", f"pgd:{e}")) for e in b["attack_eps"]
            if f"fgsm:{e}" in evaluations and f"pgd:{e}" in evaluations}


def masking_checks(s: dict, records: list[dict]) -> list[dict]:
    """The book's masking checklist (advbook.masking) per headline model, at the first attack budget,
    the worst case C3 reads there checked against AutoAttack on its images."""
    out = []
    for r in records:
        if r["config"]["variant"] not in HEADLINE:
            continue
        b = block(s, r["config"]["dataset"])
        eps = str(b["attack_eps"][0])
        roles = {"clean": "clean", "fgsm": f"fgsm:{eps}", "pgd": f"pgd:{eps}", "autoattack": "autoattack",
                 "steps_sweep": "steps", "eps_sweep": "pgd"}
        worst = suites(b, r["evaluations"]).get(f"robust {eps}")
        out.append({"dataset": r["dataset"]["display_name"], **masking.checklist(r, roles, worst=worst)})
    return out


# our headline variants as the paper's rows: Table 4 (MNIST, LeNet) and Table 5 (CIFAR-10, WRN)
PAPER_ROWS = {"lenet5": ("4", {"base": "MNIST / LeNet LeCun et al. [1998]", "FGSM": "MNIST / FGSM-LeNet",
                               "R": "MNIST / R-LeNet"}),
              "wrn": ("5", {"base": "CIFAR10 / W-ResNet Zagoruyko and Komodakis [2016]",
                            "FGSM": "CIFAR10 / FGSM-W-ResNet", "R": "CIFAR10 / R-W-ResNet"})}


def _mean(rows, variant, metric):
    return mean(by_seed(rows, metric, variant=variant))


def paper_table(rows: list[dict], dataset: str):
    """Table 4 (LeNet datasets) or 5 (CIFAR-10) in test error (%), paper vs ours for one
    dataset's rows; the paper's other rows are marked with why they are not run."""
    import pandas as pd

    from ..reporting import mean_spread

    table, names = PAPER_ROWS[BLOCKS[dataset]]
    ours = []
    for variant, name in names.items():
        errors = [100 * (1 - r["clean"]) for r in rows if r["variant"] == variant and r["dataset"] == dataset]
        if errors:
            mean, spread = mean_spread(errors)
            ours.append({"row": name, "column": "Error(%)", "mean": mean, "std": spread, "n": len(errors)})
    frame = published.side_by_side(published.compare("random_sign", table, pd.DataFrame(
        ours, columns=["row", "column", "mean", "std", "n"])))
    frame.columns = ["error %: ours (paper; ours - paper)"]
    frame["note"] = ["" if name in names.values() else
                     "CapsNet: not built" if "CapsNet" in name else
                     f"{name.split(' / ')[0]} is not available offline" for name in frame.index]
    return frame


def _by_seed(rows, variant, metric):
    return by_seed(rows, metric, variant=variant)


def _diffs(rows, a, b, metric, scale=100.0):
    return diffs(rows, a, b, metric, scale=scale)


def best_r_variant(rows: list[dict]) -> str | None:
    """The R variant (random-sign noise, any eps or placement) with the best mean validation
    accuracy: eps chosen on held-out training images, never on the test set."""
    means = {}
    for v in dict.fromkeys(r["variant"] for r in rows):
        if v == "R" or v.startswith("R "):
            values = list(_by_seed(rows, v, "val_clean").values())
            if values:
                means[v] = sum(values) / len(values)
    return max(means, key=means.get) if means else None


def claims(s: dict, rows: list[dict]) -> list[dict]:
    """The paper's testable claims (C1 to C6 of our reading), judged by the book's rule on
    paired seeds, on every dataset run (a claim holds when it holds on each). A is the
    first-named model, B the second; accuracies in points."""
    per_dataset = [(DATASET_LABELS[d], _claims_on(block(s, d), [r for r in rows if r["dataset"] == d]))
                   for d in s["datasets"] if any(r["dataset"] == d for r in rows)]
    if len(per_dataset) == 1:
        return [row(c, j) for c, j in per_dataset[0][1]]
    out = []
    for i, (claim, _) in enumerate(per_dataset[0][1] if per_dataset else []):
        out.append(row(claim, all_of([(label, judged[i][1]) for label, judged in per_dataset])))
    return out


def _error_gap(worse: str, better: str) -> float:
    """Table 4, MNIST: the paper's test error of `worse` minus `better`'s, i.e. better's accuracy gain."""
    return published.gap("random_sign", "4", (f"MNIST / {worse}", "Error(%)"), (f"MNIST / {better}", "Error(%)"))


def _smallest_table1_gap(prefix_a: str, prefix_b: str) -> float:
    """Table 1 (ImageNet): the smallest accuracy gap A - B over its disturbances and both CondenseNets,
    A and B the rows named with these prefixes ('R-', '' for base, 'FGSM-')."""
    table = published.paper("random_sign")["tables"]["1"]
    return min(published.gap("random_sign", "1", (f"ImageNet / {prefix_a}CondenseNet({g})", c),
                             (f"ImageNet / {prefix_b}CondenseNet({g})", c))
               for g in ("G=C=8", "G=C=4") for c in table[f"ImageNet / CondenseNet({g})"])


# the smallest gain in PGD accuracy that C3's "protects" needs (the paper gives no adversarial number:
# our reading, stated on the page, so that a design can be sized and the claim refuted)
PROTECTION = 5.0

# the most per-epoch overhead over the plain model that C4's "no extra computational burden" allows
# (our reading of "no extra", as the reading's R / base <= 1.05; the paper gives no timings)
NO_BURDEN = 5.0

# how a run shorter than the paper's biases a clean-accuracy comparison: (the verdicts it makes
# unsound, why)
REGULARIZER = ((NOT_CONFIRMED,), "a model trained with a random disturbance converges more slowly than its plain "
               "twin, so a short run understates its clean-accuracy gain and cannot refute it")
FGSM_DROP = ((CONFIRMED,), "adversarial training's clean accuracy still rises after so short a run, so a short run "
             "overstates FGSM training's clean-accuracy drop and cannot confirm it")


def short_run(s: dict, j: Judgement, bias: tuple) -> Judgement:
    """`j` held where this block's epochs fall short of the paper's and its `bias` could have made it."""
    theirs = PROFILES["paper"]["cifar_epochs" if s["dataset"] == "cifar10-jpeg" else "epochs"]
    return after_short_run(j, s["epochs"], theirs, *bias)


def _claims_on(s: dict, rows: list[dict]) -> list[tuple[Claim, Judgement]]:
    """(claim, judgement) for each claim on one dataset's rows; `s` from `block`."""
    best = best_r_variant(rows)
    r_variants = list(dict.fromkeys(v for v in ("R", best) if v))
    out = []

    c1 = Claim("(C1) R-models have lower clean error than base models, and base models lower than FGSM-trained "
               "ones (Tables 4-5)", "error 0.28 < 0.50 < 0.60 % (MNIST LeNet), 2.7 < 3.1 < 4.2 % (CIFAR-10 WRN-28-10)",
               "greater", paper_effect=_error_gap("LeNet LeCun et al. [1998]", "R-LeNet"),
               definition=f"clean test accuracy; parts: {' and '.join(r_variants)} above base (the paper's gain: "
                          "0.22 points on MNIST), base above FGSM (0.10 points); the best eps picked on validation images")
    parts = [(f"{v} vs base", short_run(s, judge(c1, _diffs(rows, v, "base", "clean")), REGULARIZER))
             for v in r_variants]
    parts.append(("base vs FGSM", short_run(s, judge(Claim(c1.text, c1.paper, "greater", paper_effect=_error_gap(
        "FGSM-LeNet", "LeNet LeCun et al. [1998]")), _diffs(rows, "base", "FGSM", "clean")), FGSM_DROP)))
    out.append((c1, all_of(parts)))

    disturbed = [k for k in (rows[0] if rows else {}) if k.startswith("disturbed ")]
    c2 = Claim("(C2) under each disturbance, R > base > FGSM in accuracy (Table 1)",
               "ImageNet: R - base +0.20 to +0.74, FGSM - base -1.6 to -2.6 points", "greater",
               definition="accuracy on the disturbed test images alone; the paper's ImageNet protocol moved to "
                          f"our data with {', '.join(DISTURBANCE_LABELS[k.split(' ', 1)[1]] for k in disturbed)} "
                          "(on MNIST only the crops mean something); R above base and base above FGSM. The paper's "
                          "ImageNet gaps are no effect size for another dataset and model, so only the opposite "
                          "sign refutes a part")
    parts = []
    for k in disturbed:
        label = DISTURBANCE_LABELS[k.split(" ", 1)[1]]
        parts.append((f"{label}, R vs base", judge(c2, _diffs(rows, "R", "base", k))))
        parts.append((f"{label}, base vs FGSM", judge(c2, _diffs(rows, "base", "FGSM", k))))
    out.append((c2, all_of(parts)))

    eps_keys = [f"robust {e}" for e in s["attack_eps"] if rows and f"robust {e}" in rows[0]]
    c3 = Claim("(C3) the approach protects the classifier from adversarial samples (abstract, Section 5)",
               "no adversarial number is given", "greater", min_effect=PROTECTION,
               min_effect_why=f"our reading of 'protects': {PROTECTION:g} points of PGD accuracy, a gain a reader "
                              "would call protection; the paper gives no adversarial number",
               definition="robust accuracy (per image, the worst case of FGSM and PGD with best iterate and "
                          "restarts) of R above base, at every budget "
                          f"({', '.join(k.split()[1] for k in eps_keys)}), by at least {PROTECTION:g} points "
                          "to count as protection (a budget where both sit at a floor decides nothing)")
    out.append((c3, all_of([(f"robust eps {k.split()[1]}", judge(c3, _diffs(rows, "R", "base", k)))
                               for k in eps_keys])))

    def overhead(a, b):
        ta, tb = _by_seed(rows, a, "epoch_seconds"), _by_seed(rows, b, "epoch_seconds")
        return [100 * (ta[k] / tb[k] - 1) for k in sorted(set(ta) & set(tb))]

    def timed(claim, a, b):
        judged = judge(claim, overhead(a, b))
        caveat = untimed([r for r in rows if r["variant"] in (a, b)])
        return judged.inconclusive(caveat) if caveat and judged.verdict != INCONCLUSIVE else judged

    c4 = Claim("(C4) g adds no extra computational burden (Section 3.3)", "no timings given", "at most", unit="%",
               margin=NO_BURDEN,
               definition=f"epoch wall time of R over the plain model's, (R / base - 1) in percent per seed, at most "
                          f"{NO_BURDEN:g} % (our reading of 'no extra', the specification's ratio of 1.05; the paper "
                          "gives no timings); the first epoch left out; timed on the machine the provenance names")
    out.append((c4, timed(c4, "R", "base")))
    c4r = Claim("(C4r, restated) g costs less than FGSM training, the contrast Section 3.3 draws",
                "no timings given (g needs no gradient; FGSM one more pass)", "less", unit="%",
                definition="epoch wall time of R relative to FGSM training, (R / FGSM - 1) in percent per seed, "
                           "below 0: the paper's reason for C4, restated as a claim of its own")
    out.append((c4r, timed(c4r, "R", "FGSM")))

    c5 = Claim("(C5) g introduces no extra saddle points and helps training leave them (Sections 3.1-3.2)",
               "a derivation, no experiment", "less",
               definition="not testable as stated (the derivation is about input derivatives, not the training "
                          "landscape); the training-loss curves are shown as a proxy and decide nothing")
    out.append((c5, untestable("a derivation about the input derivatives of g, not about the training landscape's "
                               "saddle points, and flawed (see the section on it): no measurement of training can "
                               "confirm or refute it as stated; the loss curves are shown as a proxy")))

    c6 = Claim("(C6) FGSM training lowers clean accuracy (Tables 4-5)", "MNIST LeNet 0.50 -> 0.60 % error",
               "greater", paper_effect=_error_gap("FGSM-LeNet", "LeNet LeCun et al. [1998]"),
               definition=f"clean accuracy of base above FGSM (Goodfellow's objective, eps {s['fgsm_eps']:g}, "
                          f"clean weight {s['fgsm_weight']:g}); the paper gives no FGSM settings")
    out.append((c6, short_run(s, judge(c6, _diffs(rows, "base", "FGSM", "clean")), FGSM_DROP)))
    return out


CHAPTER = Chapter("random_sign", "Moderate random-sign perturbations (Di, Yu and Tian)", PARAMETERS, PROFILES,
                  experiments, summary, group_by="variant", plot_metrics=("clean", "robust 0.1"), priority=priority)


# --- the page's conclusions ------------------------------------------------------------------

def takeaways(s: dict, rows: list[dict]) -> list[str]:
    """The page's conclusions, computed from its own numbers (means over seeds, in percent)."""
    out = []
    base, r, fgsm = (_mean(rows, v, "clean") for v in HEADLINE)
    if None not in (base, r, fgsm):
        out.append(f"**Clean accuracy**: R {100 * r:.2f} %, base {100 * base:.2f} %, FGSM {100 * fgsm:.2f} % "
                   f"(the paper's ordering is R > base > FGSM; here R - base = {100 * (r - base):+.2f} and "
                   f"base - FGSM = {100 * (base - fgsm):+.2f} points; the claims table says which differences "
                   "the seeds can tell apart).")
    best = best_r_variant(rows)
    if best:
        out.append(f"**The R variant chosen on held-out training images** (over eps and placement) is '{best}' "
                   f"(validation accuracy {100 * _mean(rows, best, 'val_clean'):.2f} %, test "
                   f"{100 * _mean(rows, best, 'clean'):.2f} %).")
    eps = s["attack_eps"][0]
    pb, pr, pf = (_mean(rows, v, f"robust {eps}") for v in HEADLINE)
    if None not in (pb, pr, pf):
        out.append(f"**Robust accuracy at eps = {eps:g}** (per image, the worst case of FGSM and PGD): R "
                   f"{100 * pr:.1f} %, base {100 * pb:.1f} %, FGSM {100 * pf:.1f} %. "
                   + ("Random-sign training buys no adversarial robustness worth the name at this budget"
                      if pr - pb < 0.05 else "R gains some robustness at this budget; see AutoAttack and the "
                                             "masking checks before believing it") + ".")
    j = judge(Claim("Gaussian noise differs from R", ""), _diffs(rows, "Gaussian", "R", "clean"))
    if j.n >= 3:
        out.append(f"**Gaussian multiplicative noise of the same variance** differs from R by {j.mean:+.2f} "
                   f"[{j.lower:+.2f}, {j.upper:+.2f}] points of clean accuracy (paired seeds, the rule's bounds): "
                   + ("no difference the seeds can see, as expected of two noises with the same variance "
                      "(the sign in g cancels out)." if j.lower <= 0 <= j.upper else
                      "a difference beyond the rule's bounds, so the noise's distribution, not only its variance, "
                      "matters here."))
    base_t, r_t, fgsm_t = (_mean(rows, v, "epoch_seconds") for v in HEADLINE)
    if None not in (base_t, r_t, fgsm_t):
        out.append(f"**Cost per epoch**: base {base_t:.1f} s, R {r_t:.1f} s, FGSM {fgsm_t:.1f} s (means over seeds; "
                   f"C4 and C4r say whether the timings can decide): g's noise costs {100 * (r_t / base_t - 1):+.0f} % "
                   f"over the plain model, FGSM training {100 * (fgsm_t / base_t - 1):+.0f} %.")
    return out
