"""Adaptive adversarial training (Kamath, Deshpande and Subrahmanyam 2019).

Each epoch, n training samples are drawn with probability proportional to the L2 norm (or
squared norm) of their input gradient, perturbed with FGSM and swapped in for the epoch.
Baselines: no perturbed samples, and every sample perturbed (FGSM; PGD in the appendix).
"""
from __future__ import annotations

from .. import masking
from ..claims import INCONCLUSIVE, NOT_CONFIRMED, CONFIRMED, Claim, after_short_run, all_of, by_seed, cell_fields, fact, judge, mean, row, untimed
from ..claims import diffs as paired
from ..per_image import Suite
from ..reporting import aggregate, seed_table, sweep_curves
from . import BUDGET, CLAIMS, CPU_PRECISION, EXTRA, NOT_GIVEN, Chapter, CHANNELS_LAST, Parameter, baseline_row, budget, fast_path

SAMPLINGS = {"norm": 1, "squared-norm": 2}
# the paper's models, budgets and splits; digits stands in for MNIST in the smoke profile
SETUPS = {
    "mnist": {"model": {"name": "std-cnn"}, "eps_key": "eps_mnist", "n_val": 5000, "augment": False},
    "fashion-mnist": {"model": {"name": "std-cnn"}, "eps_key": "eps_mnist", "n_val": 5000, "augment": False},
    "cifar10-jpeg": {"model": {"name": "resnet18"}, "eps_key": "eps_cifar", "n_val": 10000, "augment": True},
    "digits": {"model": {"name": "small-cnn", "width": 16}, "eps_key": "eps_mnist", "n_val": 100, "augment": False},
}

PARAMETERS = [
    Parameter("datasets", list, "datasets (unavailable ones are skipped with a note)", item_type=str,
              choices=tuple(SETUPS)),
    Parameter("seeds", list, "training seeds", 0, 2**31 - 1, item_type=int),
    Parameter("epochs", int, "epochs for MNIST-like datasets", 1, 1000),
    Parameter("cifar_epochs", int, "epochs for CIFAR-10", 1, 1000),
    Parameter("batch_size", int, "training batch size", 1, 8192),
    Parameter("lr", float, "peak SGD learning rate, MNIST-like (the paper gives no optimizer)", 1e-6, 10.0),
    Parameter("cifar_lr", float, "peak SGD learning rate, CIFAR-10", 1e-6, 10.0),
    Parameter("eps_mnist", float, "FGSM budget for MNIST-like data (paper: 0.3)", 0.0, 1.0),
    Parameter("eps_cifar", float, "FGSM budget for CIFAR-10 (paper: 0.02)", 0.0, 1.0),
    Parameter("sample_sizes", list, "n, samples perturbed per epoch (paper: 100, 1000, 10000)", 1, 10**7,
              item_type=int),
    Parameter("samplings", list, "p_i from the gradient norm or its square", item_type=str,
              choices=tuple(SAMPLINGS)),
    Parameter("replacement", bool, "draw the n samples with replacement (the paper's i.i.d. draws)"),
    Parameter("all_pgd", bool, "also train with PGD on every sample (the paper's appendix)"),
    Parameter("train_pgd_steps", int, "PGD steps for the appendix run (step 2.5 eps / steps)", 1, 100),
    Parameter("eval_steps", int, "PGD steps at test time (step 2.5 eps / steps; not given in the paper)", 1, 1000),
    Parameter("n_eval", int, "test images of the claims' clean and PGD accuracy", 1, 10**6),
    Parameter("seed_images", int, "test images each seed draws for itself, the same for every variant of that seed "
              "(0: every seed shares the test split's first images), so that the seeds' spread holds the "
              "sampling of test images", 0, 10**6),
    Parameter("n_sweep", int, "test images of the eps sweep (the first of the claims' images)", 1, 10**6),
    Parameter("apgd_eps_factors", list, "budgets of APGD-CE (100 steps), as multiples of the training eps: claim 3 "
              "is judged at the first (below the training eps, above the floor every model sits at there)",
              0.0, 100.0, item_type=float),
    Parameter("n_apgd", int, "test images attacked by APGD-CE (the first of the claims' images)", 1, 10**6),
    Parameter("eps_factors", list, "test budgets, as multiples of the training eps", 0.0, 100.0, item_type=float),
    Parameter("precision", str, "training precision: fp32, or bf16 with the fast path (a GPU, or a CPU with bf16 hardware)", choices=("fp32", "bf16")),
    CHANNELS_LAST,
]

COMMON = {"channels_last": False, "cifar_lr": 0.1, "samplings": ["norm", "squared-norm"], "replacement": True, "all_pgd": True, "train_pgd_steps": 10,
          "eval_steps": 20, "eps_mnist": 0.3, "eps_cifar": 0.02,
          "eps_factors": [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5], "precision": "bf16", "seed_images": 0,
          "apgd_eps_factors": [0.5], "n_apgd": 2000}
PROFILES = {
    "smoke": {**COMMON, "precision": "fp32", "datasets": ["digits"], "seeds": [0, 1], "epochs": 6, "cifar_epochs": 1, "batch_size": 64,
              "lr": 0.05, "eps_mnist": 0.2, "sample_sizes": [10, 100, 500], "n_eval": 200,
              "eps_factors": [0.0, 0.5, 1.0, 1.5], "n_sweep": 200, "n_apgd": 200},
    # 2 CPU cores, the design that decides (issue #35): MNIST only, 5 epochs, 6 seeds, each seed on its
    # own 5,000 test images (clean and PGD-20 at the training eps), APGD-CE at half the training eps
    # (claim 3, below the floor) and the eps sweep on the first 1,000 of them (so the masking checklist
    # compares PGD and APGD-CE on the same images); no every-sample PGD run. About 4 minutes a model
    # on one thread, 48 models (two shares of one thread each: about 100 minutes)
    "cpu": {**COMMON, "precision": CPU_PRECISION, "datasets": ["mnist"], "seeds": list(range(6)), "epochs": 5,
            "cifar_epochs": 5, "batch_size": 128, "lr": 0.05, "sample_sizes": [100, 1000, 10000], "n_eval": 5000,
            "seed_images": 5000, "n_sweep": 1000, "n_apgd": 1000, "all_pgd": False, "channels_last": True},
    # one H200, two 8-minute windows for the claims' models (about 13 minutes planned by `advbook
    # compute adaptive --profile fast --dry-run`), the every-sample PGD run and the eps sweeps
    # after. No Fashion-MNIST: a GPU window has no network to fetch it and there is no offline copy
    "fast": {**COMMON, "datasets": ["mnist", "cifar10-jpeg"], "seeds": [0, 1, 2], "epochs": 10,
             "cifar_epochs": 5, "batch_size": 128, "lr": 0.05, "sample_sizes": [100, 1000, 10000], "n_eval": 2000,
             "n_sweep": 2000},
    "paper": {**COMMON, "datasets": ["mnist", "fashion-mnist", "cifar10-jpeg"], "seeds": [0, 1, 2], "epochs": 100,
              "cifar_epochs": 100, "batch_size": 128, "lr": 0.05, "sample_sizes": [100, 1000, 10000],
              "n_eval": 10000, "n_sweep": 10000, "n_apgd": 10000},
}


def priority(config: dict, spec: dict) -> int:
    """Claims 1 to 4 compare none, every adaptive variant and all FGSM by clean and PGD accuracy
    and epoch time; the every-sample PGD run (the appendix) and the eps sweeps are extras."""
    return EXTRA if config["variant"] == "all PGD" or "sweep" in spec else CLAIMS


def variants(s: dict) -> list[tuple[str, dict | None]]:
    """(label, epoch_perturbation) for every training variant of the chapter."""
    out = [("none", None)]
    for sampling in s["samplings"]:
        for n in s["sample_sizes"]:
            out.append((f"{sampling} n={n}", {"selection": "gradient-norm", "attack": "fgsm", "n": n,
                                              "power": SAMPLINGS[sampling], "replacement": s["replacement"]}))
    out.append(("all FGSM", {"selection": "all", "attack": "fgsm"}))
    if s["all_pgd"]:
        out.append(("all PGD", {"selection": "all", "attack": "pgd", "steps": s["train_pgd_steps"]}))
    return out


def baselines(s: dict) -> list[tuple[str, str, str, str]]:
    """The baselines, no perturbed samples and every sample perturbed (FGSM; PGD in the appendix),
    their hyperparameters in this run against the paper's, and why they differ: (baseline, this
    run, the paper, why). The paper gives the datasets and models (StdCNN of its Table 1, ResNet-18
    on CIFAR-10 with crop and flip), 100 epochs for every network and FGSM at eps 0.3 (MNIST,
    Fashion-MNIST) and 0.02 (CIFAR-10) ("Adversarial Training Settings", Section 4; Appendix A for
    PGD); its profile holds these. It gives no optimizer and no PGD steps."""
    p = PROFILES["paper"]

    def models(x):
        return ", ".join(f"{d} {SETUPS[d]['model']['name']}" for d in x["datasets"])

    def optimizer(x):
        return (f"SGD from {x['lr']:g} (CIFAR-10 {x['cifar_lr']:g}), cosine, momentum 0.9, weight decay 5e-4, "
                f"batch {x['batch_size']}")
    cifar = "cifar10-jpeg" in s["datasets"]
    common = [
        ("datasets and models", models(s), models(p), BUDGET),
        ("epochs", f"{s['epochs']}" + (f" (CIFAR-10 {s['cifar_epochs']})" if cifar else ""),
         f"{p['epochs']} (CIFAR-10 {p['cifar_epochs']})", BUDGET),
        ("optimizer", optimizer(s), NOT_GIVEN, "not given: the usual SGD recipe, our choice"
         + ("" if optimizer(s) == optimizer(p) else f" (the paper profile: {optimizer(p)})")),
    ]
    eps = [("eps", f"{budget(s['eps_mnist'])} (CIFAR-10 {budget(s['eps_cifar'])})",
            f"{budget(p['eps_mnist'])} (CIFAR-10 {budget(p['eps_cifar'])})", BUDGET)]
    pgd = f"{s['train_pgd_steps']} steps of 2.5 eps / steps" if s["all_pgd"] else "not trained"
    return [
        baseline_row("every variant", common),
        baseline_row("none (no perturbed samples)", [("perturbed samples", "none", "none", "")]),
        baseline_row("all FGSM (every sample perturbed)", [
            ("perturbed samples", "all, once per epoch", "all, once per epoch", ""), *eps]),
        baseline_row("all PGD (Appendix A)", [
            ("PGD", pgd, NOT_GIVEN, f"not given: {p['train_pgd_steps']} steps in the paper profile, step 2.5 eps / "
             "steps after Madry et al." + ("" if s["all_pgd"] else "; not trained here: " + BUDGET)), *eps]),
    ]


def evaluation_specs(s: dict, eps: float) -> list[dict]:
    """Clean accuracy, PGD at the training eps (step 2.5 eps / steps), APGD-CE at the
    `apgd_eps_factors` budgets and the eps sweep with the step scaled to each budget."""
    n, steps = s["n_eval"], s["eval_steps"]
    alpha = 2.5 * eps / steps
    pgd = {"steps": steps, "restarts": 1}
    return ([{"name": "clean", "attack": "clean", "n": n},
             {"name": "pgd", "attack": "pgd", "params": {**pgd, "eps": eps, "alpha": alpha}, "n": n}]
            + [{"name": apgd_name(e), "attack": "apgd", "params": {"eps": e, "steps": 100}, "n": s["n_apgd"]}
               for e in [round(f * eps, 6) for f in s["apgd_eps_factors"]]]
            + [{"name": f"eps_sweep:{e}", "attack": "pgd", "params": {**pgd, "eps": e, "alpha": e * alpha / eps},
                "n": s["n_sweep"], "sweep": {"name": "eps_sweep", "value": e}}
               for e in [round(f * eps, 6) for f in s["eps_factors"]]])


def apgd_name(eps: float) -> str:
    return f"APGD-CE {eps:g}"


def data_subset(s: dict, seed: int) -> dict:
    """The test images of one seed's models: with `seed_images`, a subset drawn with the training
    seed (the same for every variant of that seed, so comparisons stay paired); else the test
    split's first `n_eval`, shared by every seed."""
    if not s["seed_images"]:
        return {"test": s["n_eval"]}
    return {"test": s["seed_images"], "seed": seed}


def experiments(s: dict) -> list[dict]:
    """Every run of the chapter (`experiments.collect` names those that need data not found here)."""
    configs = []
    for dataset in s["datasets"]:
        setup = SETUPS[dataset]
        eps = s[setup["eps_key"]]
        cifar = dataset == "cifar10-jpeg"
        evaluation = evaluation_specs(s, eps)
        for label, perturbation in variants(s):
            if perturbation:
                perturbation = {**perturbation, "eps": eps}
            for seed in s["seeds"]:
                configs.append({
                    "chapter": "adaptive", "profile": s["profile"], "dataset": dataset, "variant": label,
                    "subset": data_subset(s, seed), "validation": setup["n_val"], "model": setup["model"],
                    "train": {"defense": "standard", "epoch_perturbation": perturbation,
                              "epochs": s["cifar_epochs"] if cifar else s["epochs"], "batch_size": s["batch_size"],
                              "lr": s["cifar_lr"] if cifar else s["lr"], "schedule": "cosine", "augment": setup["augment"],
                              "seed": seed, "weight_decay": 5e-4, **fast_path(s["precision"], s["channels_last"])},
                    "evaluate": evaluation,
                })
    return configs


def summary(s: dict, records: list[dict]) -> list[dict]:
    """One row per model; its robust accuracies carry the masking checklist's doubts (`not_believed`),
    which hold any verdict on them (`claims`' guard 6)."""
    rows = []
    checks = {(c["model"], c["seed"], c["dataset"]): c for c in masking_checks(s, records)}
    for r in records:
        history = r["history"]
        check = checks.get((r["config"]["variant"], r["config"]["train"]["seed"], r["dataset"]["display_name"]), {})
        worst = suites(s, r["evaluations"])
        doubted = {"pgd": masking.doubts(check, "pgd"), **{m: masking.doubts(check, "apgd") for m in apgd_names(s)},
                   **{m: masking.doubts(check, "worst") for m in worst}}
        rows.append({"dataset": r["dataset"]["display_name"], "variant": r["config"]["variant"],
                     "seed": r["config"]["train"]["seed"], "clean": r["metrics"]["clean"],
                     "pgd": r["metrics"]["pgd"], **{name: r["metrics"][name] for name in apgd_names(s)},
                     "epoch_seconds": sum(h["seconds"] for h in history) / len(history),
                     "perturbed_per_epoch": sum(h.get("perturbed", 0) for h in history) / len(history),
                     "gradient_images_per_epoch": gradient_images_per_epoch(r), **cell_fields(r, worst=worst),
                     "not_believed": {m: why for m, why in doubted.items() if why}})
    return rows


def suites(s: dict, evaluations: dict) -> dict[str, Suite]:
    """{"robust E": the per-image worst case of APGD-CE and the eps sweep's PGD-20 at E} for each
    APGD-CE budget E the sweep also ran (a model's evaluations tell), the robust accuracy claim 3
    reads."""
    eps = s["eps_mnist"]
    budgets = [round(f * eps, 6) for f in s["apgd_eps_factors"]]
    return {robust_name(e): Suite(f"APGD-CE and PGD-20 at {e:g}", (apgd_name(e), f"eps_sweep:{e}"))
            for e in budgets if apgd_name(e) in evaluations and f"eps_sweep:{e}" in evaluations}


def robust_name(eps: float) -> str:
    return f"robust {eps:g}"


def apgd_names(s: dict) -> list[str]:
    """The APGD-CE specs' names (their budgets in the first dataset's units: MNIST-like data only)."""
    eps = s["eps_mnist"]
    return [apgd_name(round(f * eps, 6)) for f in s["apgd_eps_factors"]]


def gradient_images_per_epoch(record: dict) -> float:
    """Images' forward-backward passes per epoch: counted by `fit` (`gradient_images`); for
    records from before the count, by construction of Algorithm 1 as implemented here: one
    input-gradient pass over the training set (FGSM reuses it) plus the training pass, for the
    adaptive and every-sample variants alike, and the training pass alone for `none`."""
    history = record["history"]
    if all("gradient_images" in h for h in history):
        return sum(h["gradient_images"] for h in history) / len(history)
    n = record["dataset"]["n_train"]
    perturbation = record["config"]["train"].get("epoch_perturbation")
    if perturbation and perturbation.get("attack") == "pgd":
        return n + n * perturbation.get("steps", 10)
    return 2 * n if perturbation else n


def _variant(r):
    return r["config"]["variant"]


def robustness_curves(s: dict, records: list[dict]) -> dict:
    """{dataset: {sampling: {variant: {eps: [PGD accuracy per seed]}}}}, Figures 1 to 3."""
    labels = [label for label, _ in variants(s)]
    out = {}
    for dataset in dict.fromkeys(r["dataset"]["display_name"] for r in records):
        for sampling in s["samplings"]:
            shown = [r for r in records if r["dataset"]["display_name"] == dataset and
                     (_variant(r) in ("none", "all FGSM") or _variant(r).startswith(sampling + " "))]
            curves = sweep_curves(shown, "eps_sweep", _variant)
            out.setdefault(dataset, {})[sampling] = {k: curves[k] for k in labels if k in curves}
    return out


def clean_vs_count(s: dict, rows: list[dict]) -> tuple[list[str], dict]:
    """Figure 4: tick labels 0, n..., all and {dataset: {sampling: {tick position: [clean]}}}."""
    ticks = ["0"] + [str(n) for n in s["sample_sizes"]] + ["all"]
    out = {}
    for r in rows:
        for sampling in s["samplings"]:
            v = r["variant"]
            if v == "none":
                x = 0
            elif v == "all FGSM":
                x = len(ticks) - 1
            elif v.startswith(sampling + " "):
                x = ticks.index(v.split("n=")[1])
            else:
                continue
            curve = out.setdefault(r["dataset"], {}).setdefault(f"sampling by {sampling}", {})
            curve.setdefault(x, []).append(r["clean"])
    return ticks, out


def appendix_curves(records: list[dict]) -> dict:
    """Figure 5: {dataset: {variant: {eps: [PGD accuracy]}}} for none, all FGSM, all PGD."""
    out = {}
    for dataset in dict.fromkeys(r["dataset"]["display_name"] for r in records):
        shown = [r for r in records if r["dataset"]["display_name"] == dataset
                 and _variant(r) in ("none", "all FGSM", "all PGD")]
        out[dataset] = sweep_curves(shown, "eps_sweep", _variant)
    return out


def results_table(s: dict, rows: list[dict]):
    """Clean and PGD accuracy, epoch wall time and the distinct samples actually perturbed per
    epoch (draws with replacement repeat some), per dataset and variant (mean over seeds)."""
    labels = [label for label, _ in variants(s)]
    grouped = [{**r, "run": f"{r['dataset']} · {r['variant']}"} for r in rows]
    order = [f"{d} · {v}" for d in dict.fromkeys(r["dataset"] for r in rows) for v in labels]
    robust = sorted({k for r in rows for k in r if k.startswith("robust ")})
    table = seed_table(grouped, "run", ["clean", "pgd", *apgd_names(s), *robust], order=order,
                       labels={"pgd": "PGD at train eps", **{k: f"{k} (worst case)" for k in robust}})
    if table.empty:  # nothing stored yet
        return table
    timing = aggregate(grouped, "run", "epoch_seconds")
    table.insert(2, "epoch seconds", [f"{timing[k][0]:.2f} ± {timing[k][1]:.2f}" for k in table.index])
    perturbed = aggregate(grouped, "run", "perturbed_per_epoch")
    table.insert(3, "perturbed per epoch", [f"{perturbed[k][0]:.0f}" for k in table.index])
    return table


def masking_checks(s: dict, records: list[dict]) -> list[dict]:
    """The book's masking checklist (advbook.masking) for every model: the eps sweep must reach ~0 at
    its largest budget, and PGD-20 must not read far above APGD-CE at the budget both ran at."""
    out = []
    for r in records:
        eps = s[SETUPS[r["config"]["dataset"]]["eps_key"]]
        at = round(s["apgd_eps_factors"][0] * eps, 6)
        roles = {"clean": "clean", "eps_sweep": "eps_sweep", "apgd": apgd_name(at)}
        if at in [round(f * eps, 6) for f in s["eps_factors"]]:
            roles["pgd"] = f"eps_sweep:{at}"
        out.append({"dataset": r["dataset"]["display_name"], **masking.checklist(r, roles)})
    return out


def claims(s: dict, rows: list[dict]) -> list[dict]:
    """The paper's four claims as `Claim` data, judged by the book's rule on paired seeds."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    adaptive = [v for v in dict.fromkeys(r["variant"] for r in rows) if "n=" in v]
    largest = [v for v in adaptive if v.endswith(f"n={max(s['sample_sizes'])}")]

    def diffs(dataset, a, b, metric, scale=100.0):
        return paired(rows, a, b, metric, scale=scale, dataset=dataset)

    def clean_gap(claim, dataset, a, b, refutes_only=True):
        """A clean-accuracy gap judged against the paper's converged one: after fewer epochs than the
        paper's, a perturbed model's clean accuracy is still rising, so a short run overstates the gap.
        It can confirm 'within' (a smaller gap than the paper allows) but not refute it; a claimed gap
        of a given size (`refutes_only` False) it can neither confirm nor refute."""
        j = judge(claim, diffs(dataset, a, b, "clean"))
        cifar = dataset == "CIFAR-10 (JPEG q75 copy)"
        ours, theirs = (s["cifar_epochs"], PROFILES["paper"]["cifar_epochs"]) if cifar else \
            (s["epochs"], PROFILES["paper"]["epochs"])
        return after_short_run(j, ours, theirs, (NOT_CONFIRMED,) if refutes_only else (NOT_CONFIRMED, CONFIRMED),
                               "a perturbed model's clean accuracy still rises after so short a run, so its gap here "
                               + ("cannot refute the paper's converged one" if refutes_only else
                                  "says nothing about the size of the paper's converged one"))

    out = []
    c1 = Claim("(1) adaptive training keeps clean accuracy within 0.5 points of standard training",
               "within 0.5 % on all datasets (Figure 4)", "within", margin=0.5,
               definition="A = each adaptive variant, B = no perturbed samples (none), clean accuracy; "
                          "every variant on every dataset must be within 0.5 points (after fewer epochs than the "
                          "paper's, a larger gap refutes nothing: a short run overstates it)")
    out.append(row(c1, all_of([(f"{v}, {d}", clean_gap(c1, d, v, "none")) for d in datasets for v in adaptive])))

    hard = [d for d in datasets if d in ("Fashion-MNIST", "CIFAR-10 (JPEG q75 copy)")]
    c2 = Claim("(2) FGSM on every sample drops clean accuracy by 2-4 points on Fashion-MNIST and CIFAR-10, "
               "by under 0.5 on MNIST", "drops of up to 2-4 % (Fashion-MNIST, CIFAR-10), within 0.5 % (MNIST)",
               "within", margin=1.0, center=3.0,
               definition="A = none, B = all FGSM, clean accuracy: the drop A - B within 1 point of 3 on "
                          "Fashion-MNIST and CIFAR-10, and within 0.5 of 0 on MNIST (after fewer epochs than the "
                          "paper's, which overstate the drop, the MNIST part can only be confirmed and the others "
                          "not decided)")
    mnist = Claim(c2.text, c2.paper, "within", margin=0.5)
    parts = [(d, clean_gap(c2, d, "none", "all FGSM", refutes_only=False)) for d in hard]
    if "MNIST" in datasets:
        parts.append(("MNIST", clean_gap(mnist, "MNIST", "none", "all FGSM")))
    judgement = all_of(parts)
    if not hard and judgement.verdict != NOT_CONFIRMED:
        judgement = judgement.inconclusive("needs Fashion-MNIST and CIFAR-10, not run at this scale")
    out.append(row(c2, judgement))

    budget_ = round(s["apgd_eps_factors"][0] * s["eps_mnist"], 6)
    metric = robust_name(budget_)
    where = (f"robust accuracy at {budget_:g} (per image, the worst case of APGD-CE with 100 steps and PGD-20, at "
             f"{s['apgd_eps_factors'][0]:g} x the training eps: at the training eps every model of a short run sits "
             "near a floor)")
    c3 = Claim("(3) adaptive training (largest n) is about as robust under PGD as FGSM on every sample",
               "comparable robustness (Figures 1-3)", "within", margin=5.0,
               definition=f"A = adaptive (largest n), B = all FGSM, {where}, within 5 points; informative only "
                          "where every-sample FGSM gains at least 5 points over none there (the rule's lower bound "
                          "on the gain at least 5)")
    gain = Claim("every-sample FGSM gains robustness", "", "greater")
    parts = []
    for d in datasets:
        g = judge(gain, diffs(d, "all FGSM", "none", metric))
        for v in largest:
            j = judge(c3, diffs(d, v, "all FGSM", metric))
            if not (g.verdict == CONFIRMED and g.lower >= 5):
                j = j.inconclusive(f"every-sample FGSM itself gains only {g.mean:+.2f} [{g.lower:+.2f}, {g.upper:+.2f}] "
                                   "points over none (a lower bound under 5), so 'as robust as' it says nothing")
            parts.append((f"{v}, {d}", j))
    out.append(row(c3, all_of(parts)))

    c4 = Claim("(4) adaptive training is faster per epoch than perturbing every sample", "faster (no timings given)",
               "less", unit="", definition="A = adaptive (largest n), B = all FGSM: epoch wall time (seconds), "
                                           "timed on the machine the provenance names; the images' gradient passes "
                                           "per epoch are shown as a fact where Algorithm 1 fixes them")
    parts = []
    for d in datasets:
        for v in largest:
            timed = judge(c4, diffs(d, v, "all FGSM", "epoch_seconds", 1.0))
            caveat = untimed([r for r in rows if r["dataset"] == d and r["variant"] in (v, "all FGSM")])
            if caveat and timed.verdict != INCONCLUSIVE:
                timed = timed.inconclusive(caveat)
            parts.append((f"seconds, {v}, {d}", timed))
            passes = diffs(d, v, "all FGSM", "gradient_images_per_epoch", 1.0)
            parts.append((f"gradient passes, {v}, {d}",
                          fact("equal in every seed: both compute one input gradient of every training image "
                               "per epoch (Algorithm 1 needs them to sample), plus the training pass") if passes and not any(passes) else judge(c4, passes)))
    out.append(row(c4, all_of(parts)))
    return out


def takeaways(s: dict, rows: list[dict], judged: list[dict]) -> list[str]:
    """The page's conclusions, computed from its own numbers (means over seeds, in percent) and
    verdicts: one line per claim and dataset."""
    verdict = {r["claim"][:3]: r["verdict"] for r in judged}
    budget_ = round(s["apgd_eps_factors"][0] * s["eps_mnist"], 6)
    metric = robust_name(budget_)
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        here = [r for r in rows if r["dataset"] == dataset]

        def mean_of(variant, name):
            return mean(by_seed(here, name, variant=variant))

        seeds = len({r["seed"] for r in here})
        adaptive = [v for v in dict.fromkeys(r["variant"] for r in here) if "n=" in v]
        largest = [v for v in adaptive if v.endswith(f"n={max(s['sample_sizes'])}")]
        none, fgsm = mean_of("none", "clean"), mean_of("all FGSM", "clean")
        gaps = {v: 100 * (mean_of(v, "clean") - none) for v in adaptive
                if none is not None and mean_of(v, "clean") is not None}
        if gaps:
            worst = max(gaps, key=lambda v: abs(gaps[v]))
            out.append(f"**{dataset}, clean accuracy (claim 1, {verdict.get('(1)', 'not judged')})**: standard "
                       f"training reaches {100 * none:.2f} %; the adaptive variants differ from it by "
                       f"{min(gaps.values()):+.2f} to {max(gaps.values()):+.2f} points on average over {seeds} seeds "
                       f"(the largest gap: {worst}).")
        if none is not None and fgsm is not None:
            out.append(f"**{dataset}, every-sample FGSM (claim 2, {verdict.get('(2)', 'not judged')})** costs "
                       f"{100 * (none - fgsm):+.2f} points of clean accuracy here.")
        robust = {v: mean_of(v, metric) for v in ["none", "all FGSM", *largest]}
        if None not in robust.values():
            out.append(f"**{dataset}, robustness (claim 3, {verdict.get('(3)', 'not judged')})**, robust accuracy at "
                       f"{budget_:g} (per image, the worst case of APGD-CE and PGD-20): "
                       + ", ".join(f"{v} {100 * a:.1f} %" for v, a in robust.items()) + ".")
        seconds = {v: mean_of(v, "epoch_seconds") for v in ["all FGSM", *largest]}
        if None not in seconds.values():
            out.append(f"**{dataset}, epoch time (claim 4, {verdict.get('(4)', 'not judged')})**: "
                       + ", ".join(f"{v} {t:.1f} s" for v, t in seconds.items())
                       + "; the claim's row says whether the machine was idle enough for these to count.")
    return out


CHAPTER = Chapter("adaptive", "Adaptive adversarial training (Kamath et al. 2019)", PARAMETERS, PROFILES,
                  experiments, summary, group_by="variant",
                  plot_metrics=("clean", "pgd"), priority=priority)
