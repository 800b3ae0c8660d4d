"""AdvProp, adversarial label smoothing and smooth adversarial training, alone and combined
(Dallaire and David): their Tables 1 and 2, Figures 3 and 4, and a strong evaluation."""
from __future__ import annotations

from .. import data
from ..reporting import direction, mean_spread, verdict
from . import Chapter, Parameter

PAPER = "mixture-advprop-als-sat"
# configuration -> (adversarial examples, AdvProp, ALS, SAT). ALS alone trains on clean inputs
# only: its row in the paper's Table 1 sits with Traditional, not with the adversarial rows.
TECHNIQUES = {
    "Traditional": (False, False, False, False),
    "Adversarial": (True, False, False, False),
    "AdvProp": (True, True, False, False),
    "ALS": (False, False, True, False),
    "SAT": (True, False, False, True),
    "ALS + SAT": (True, False, True, True),
    "SAT + AdvProp": (True, True, False, True),
    "ALS + AdvProp": (True, True, True, False),
    "ALS + SAT + AdvProp": (True, True, True, True),
}
TABLE2 = ("SAT", "AdvProp", "Adversarial")
COLUMNS = ("Test Accuracy", "FGSM 0.1", "PGD 0.1", "FGSM 0.5", "PGD 0.5")
STRONG = ("PGD-20 8/255", "AutoAttack 8/255")

PARAMETERS = [
    Parameter("dataset", str, "dataset (paper: CIFAR-10; here its JPEG copy)", choices=tuple(data.LOADERS)),
    Parameter("model", str, "architecture with batch norm (paper: ResNet-18)", choices=("small-cnn", "resnet18",
                                                                                        "preact-resnet18")),
    Parameter("width", int, "channel width (0: the architecture's usual one)", 0, 512),
    Parameter("seeds", list, "training seeds", 0, 2**31 - 1, item_type=int),
    Parameter("epochs", int, "training epochs (paper: 100)", 1, 1000),
    Parameter("batch_size", int, "training batch size (not given in the paper)", 1, 8192),
    Parameter("lr", float, "peak SGD learning rate, cosine decay (the paper: 'a decreasing learning rate')",
              1e-6, 10.0),
    Parameter("augment", bool, "random crop and flip (the paper: 'standard image augmentation')"),
    Parameter("train_alpha", float, "step of the 2-step PGD trainer at eps 0.1 (the paper: 'very small')",
              0.0, 1.0),
    Parameter("train_steps", int, "PGD steps of the trainer (paper: 2)", 1, 100),
    Parameter("als_alpha", float, "adversarial label smoothing weight (not given in the paper)", 0.0, 0.5),
    Parameter("sat_alpha", float, "SAT softplus sharpness (paper: 10)", 0.1, 1000.0),
    Parameter("table2", bool, "also train Table 2's models with eps-0.5 PGD examples"),
    Parameter("eval_steps", int, "steps of the PGD 0.1 and PGD 0.5 evaluations (not given in the paper)", 1, 1000),
    Parameter("strong_steps", int, "steps of the strong PGD evaluation at 8/255", 1, 1000),
    Parameter("strong_restarts", int, "restarts of the strong PGD evaluation", 1, 100),
    Parameter("n_eval", int, "test images evaluated", 1, 10**6),
    Parameter("autoattack_n", int, "test images for AutoAttack at 8/255 (0: skip)", 0, 10**6),
]

COMMON = {"train_alpha": 2 / 255, "train_steps": 2, "als_alpha": 0.1, "sat_alpha": 10.0, "table2": True,
          "eval_steps": 10, "strong_steps": 20}
PROFILES = {
    "smoke": {**COMMON, "dataset": "digits", "model": "small-cnn", "width": 16, "seeds": [0, 1], "epochs": 5,
              "batch_size": 128, "lr": 0.1, "augment": False, "strong_restarts": 1, "n_eval": 200,
              "autoattack_n": 0},
    "fast": {**COMMON, "dataset": "cifar10-jpeg", "model": "resnet18", "width": 0, "seeds": [0, 1, 2], "epochs": 4,
             "batch_size": 256, "lr": 0.1, "augment": True, "strong_restarts": 2, "n_eval": 2000,
             "autoattack_n": 200},
    "paper": {**COMMON, "dataset": "cifar10-jpeg", "model": "resnet18", "width": 0, "seeds": [0, 1, 2],
              "epochs": 100, "batch_size": 128, "lr": 0.1, "augment": True, "strong_restarts": 5,
              "n_eval": 10000, "autoattack_n": 1000},
}


def runs(s: dict) -> list[tuple[str, str, float]]:
    """(table, configuration, training eps) for every trained model."""
    out = [("1", name, 0.1) for name in TECHNIQUES]
    if s["table2"]:
        out += [("2", name, 0.5) for name in TABLE2]
    return out


def evaluation(s: dict) -> dict:
    custom = [
        {"name": "FGSM 0.1", "attack": "fgsm", "eps": 0.1},
        {"name": "PGD 0.1", "attack": "pgd", "eps": 0.1, "alpha": 2 / 255, "steps": s["eval_steps"]},
        {"name": "FGSM 0.5", "attack": "fgsm", "eps": 0.5},
        {"name": "PGD 0.5", "attack": "pgd", "eps": 0.5, "alpha": 0.5, "steps": s["eval_steps"]},
        {"name": "PGD-20 8/255", "attack": "pgd", "eps": 8 / 255, "alpha": 2 / 255, "steps": s["strong_steps"],
         "restarts": s["strong_restarts"]},
    ]
    if s["autoattack_n"]:
        custom.append({"name": "AutoAttack 8/255", "attack": "autoattack", "eps": 8 / 255, "n": s["autoattack_n"]})
    return {"n": s["n_eval"], "custom": custom}


def experiments(s: dict) -> list[dict]:
    configs = []
    for table, name, eps in runs(s):
        adversarial, advprop, als, sat = TECHNIQUES[name]
        model = {"name": s["model"], "advprop": advprop, "activation": "sat" if sat else "relu",
                 "sat_alpha": s["sat_alpha"]} | ({"width": s["width"]} if s["width"] else {})
        # Table 2's trainer: 2 steps of 0.5 at eps 0.5 (the paper's "step-size 0.5")
        train_alpha = s["train_alpha"] if eps == 0.1 else 0.5
        for seed in s["seeds"]:
            configs.append({
                "chapter": "mixture", "profile": s["profile"], "dataset": s["dataset"], "table": table,
                "configuration": name, "subset": {"test": s["n_eval"]}, "model": model,
                "train": {"defense": "mixture",
                          "defense_params": {"adversarial": adversarial, "advprop": advprop,
                                             "als_alpha": s["als_alpha"] if als else 0.0, "eps": eps,
                                             "alpha": train_alpha, "steps": s["train_steps"]},
                          "epochs": s["epochs"], "batch_size": s["batch_size"], "lr": s["lr"], "schedule": "cosine",
                          "augment": s["augment"], "seed": seed, "weight_decay": 5e-4},
                "evaluate": evaluation(s),
            })
    return configs


def summary(s: dict, records: list[dict]) -> list[dict]:
    rows = []
    for r in records:
        m = r["metrics"]
        rows.append({"table": r["config"]["table"], "configuration": r["config"]["configuration"],
                     "seed": r["config"]["train"]["seed"], "Test Accuracy": m["clean"],
                     **{k: m[k] for k in COLUMNS[1:] + STRONG if k in m}, "train_seconds": r["train_seconds"]})
    return rows


def ours_for_comparison(rows: list[dict], table: str):
    """Our numbers in `published.compare`'s shape: row, column, mean, std, n (percent)."""
    import pandas as pd

    out = []
    for name in dict.fromkeys(r["configuration"] for r in rows if r["table"] == table):
        for column in COLUMNS:
            values = [100 * r[column] for r in rows if r["table"] == table and r["configuration"] == name]
            mean, std = mean_spread(values)
            out.append({"row": name, "column": column, "mean": mean, "std": std, "n": len(values)})
    return pd.DataFrame(out)


def _values(rows, name, column, table="1"):
    return [r[column] for r in rows if r["table"] == table and r["configuration"] == name and column in r]


def claims(s: dict, rows: list[dict]) -> list[dict]:
    """The paper's claims, each with our evidence and a verdict. A difference counts when it
    exceeds two standard errors over the seeds; otherwise the verdict is inconclusive."""
    def gap(a, b, column):
        ma, _ = mean_spread(_values(rows, a, column))
        mb, _ = mean_spread(_values(rows, b, column))
        return 100 * (ma - mb)

    def both(*results):  # all True: confirmed; any False: not confirmed; else inconclusive
        if any(r is False for r in results):
            return False
        return True if all(r is True for r in results) else None

    robust = COLUMNS[1:]
    out = []
    d = direction(_values(rows, "AdvProp", "Test Accuracy"), _values(rows, "Traditional", "Test Accuracy"))
    out.append({"claim": "AdvProp improves clean accuracy over Traditional",
                "paper": "+1.29 points", "ours": f"{gap('AdvProp', 'Traditional', 'Test Accuracy'):+.2f} points",
                "verdict": verdict(d, s["profile"])})
    ds = [direction(_values(rows, "AdvProp", c), _values(rows, "Traditional", c)) for c in robust]
    out.append({"claim": "AdvProp is more robust than Traditional under every attacker",
                "paper": "+6.79 to +15.19 points",
                "ours": ", ".join(f"{c}: {gap('AdvProp', 'Traditional', c):+.2f}" for c in robust),
                "verdict": verdict(both(*ds), s["profile"])})
    def tradeoff(name, reference, paper):  # costs clean accuracy, adds robustness at PGD 0.5
        holds = both(direction(_values(rows, reference, "Test Accuracy"), _values(rows, name, "Test Accuracy")),
                     direction(_values(rows, name, "PGD 0.5"), _values(rows, reference, "PGD 0.5")))
        return {"claim": f"{name} costs clean accuracy and adds robustness at the strongest attacker (PGD 0.5), "
                         f"against {reference}",
                "paper": paper,
                "ours": f"{gap(name, reference, 'Test Accuracy'):+.2f} clean, "
                        f"{gap(name, reference, 'PGD 0.5'):+.2f} PGD 0.5",
                "verdict": verdict(holds, s["profile"])}

    out.append(tradeoff("ALS", "Traditional", "-1.26 clean, +3.21 PGD 0.5"))
    out.append(tradeoff("SAT", "Adversarial", "-0.56 clean, +3.67 PGD 0.5"))
    weak = [n for n in TECHNIQUES if _values(rows, n, "PGD 0.5")]
    best = max(weak, key=lambda n: mean_spread(_values(rows, n, "PGD 0.5"))[0], default=None)
    runner_up = [direction(_values(rows, "ALS + SAT", "PGD 0.5"), _values(rows, n, "PGD 0.5"))
                 for n in weak if n != "ALS + SAT"]
    out.append({"claim": "ALS + SAT is the most robust model trained on weak attackers at PGD 0.5",
                "paper": "33.18 %, the highest of Table 1",
                "ours": f"highest mean: {best} ({100 * mean_spread(_values(rows, best, 'PGD 0.5'))[0]:.2f} %); "
                        f"ALS + SAT {100 * mean_spread(_values(rows, 'ALS + SAT', 'PGD 0.5'))[0]:.2f} %"
                        if best and _values(rows, "ALS + SAT", "PGD 0.5") else "no data",
                "verdict": verdict(both(*runner_up) if runner_up else None, s["profile"])})
    combos = [n for n in TECHNIQUES if "+" in n]  # every combination of two or three techniques
    beats = [direction(_values(rows, n, "Test Accuracy"), _values(rows, "AdvProp", "Test Accuracy")) for n in combos]
    out.append({"claim": "No combination beats AdvProp alone on clean accuracy",
                "paper": "every combination at or below AdvProp (93.16)",
                "ours": ", ".join(f"{n}: {gap(n, 'AdvProp', 'Test Accuracy'):+.2f}" for n in combos),
                # each combination must be shown below AdvProp; a tie within the noise is inconclusive
                "verdict": verdict(both(*[None if b is None else not b for b in beats]), s["profile"])})
    return out


def strong_ranking(rows: list[dict]):
    """Table 1's models ranked by the paper's PGD 0.1 and by the strong attacks at 8/255."""
    import pandas as pd

    table = {}
    for name in TECHNIQUES:
        entry = {}
        for column in ("PGD 0.1", "PGD 0.5") + STRONG:
            values = _values(rows, name, column)
            if values:
                entry[column] = 100 * mean_spread(values)[0]
        if entry:
            table[name] = entry
    frame = pd.DataFrame.from_dict(table, orient="index")
    for column in list(frame.columns):
        frame[f"rank by {column}"] = frame[column].rank(ascending=False, method="min").astype(int)
    return frame.round(2)


CHAPTER = Chapter("mixture", "AdvProp, label smoothing and smooth adversarial training (Dallaire and David)",
                  PARAMETERS, PROFILES, experiments, summary)
