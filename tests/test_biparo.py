"""BIPARO: the models, the two kinds of test-time noise, the training mixes, the chapter's
claims and the transcription of the paper's tables. Each test names the bug it catches."""
import importlib
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from advbook import claims as claims_module
from advbook import masking, models, published
from advbook.chapters import biparo as chapter
from advbook.defenses import DEFENSES
from advbook.models.layers import Normalize
from advbook.models.noise import PNILinear, PredictionNoise, add_pni

mixes = importlib.import_module("advbook.defenses.mat_rand")  # the module (its function shares the name)

PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "biparo-adversarial-training.md"


@pytest.mark.parametrize("name,count", [("basicnet", 62006), ("resnet20", 272474), ("vgg11-bn", 9228362)])
def test_architectures_have_the_documented_size(name, count):
    """A layer missing or of the wrong width changes the parameter count (the tutorial net's
    62,006; He et al.'s ResNet-20, 0.27M; VGG11-BN with one linear layer, 9.23M)."""
    net = models.build(name, 10, 3)
    assert sum(p.numel() for p in net.parameters()) == count


def test_prediction_noise_is_gaussian_in_pixel_units_and_only_at_prediction():
    """f(x + eta), eta ~ N(0, sigma^2) in pixels: catches noise added in normalized units (off by
    1/std), noise during training, and noise that noise_off cannot switch off."""
    std = (0.25, 0.5, 1.0)
    model = nn.Sequential(Normalize((0.0, 0.0, 0.0), std), PredictionNoise(0.03, std))
    x = torch.rand(64, 3, 16, 16)
    clean = model[0](x)
    model.eval()
    torch.manual_seed(0)
    pixel_noise = (model(x) - clean) * torch.tensor(std).view(1, 3, 1, 1)  # back to pixel units
    for c in range(3):
        assert pixel_noise[:, c].std().item() == pytest.approx(0.03, rel=0.05)
    assert abs(pixel_noise.mean().item()) < 0.002
    assert not torch.equal(model(x), model(x))            # a fresh draw per forward pass
    with models.noise_off(model):
        assert torch.equal(model(x), clean)
    model.train()
    assert torch.equal(model(x), clean)                   # training is unchanged
    assert models.is_randomized(model)


def test_pni_adds_alpha_times_weight_scaled_noise():
    """W~ = W + alpha * eta, eta ~ N(0, std(W)^2): catches a missing alpha, noise not scaled by
    std(W), or a scale that is not learned."""
    torch.manual_seed(0)
    layer = PNILinear(400, 300, alpha=0.25)
    with torch.no_grad():
        layer.weight.mul_(3.0)
    noise = layer.noisy_weight() - layer.weight
    assert noise.std().item() == pytest.approx(0.25 * layer.weight.std().item(), rel=0.02)
    layer(torch.randn(8, 400)).sum().backward()
    assert layer.alpha.grad is not None and layer.alpha.grad != 0   # alpha is trained
    assert layer.alpha.no_weight_decay                               # and kept out of weight decay
    layer.eval()
    with models.noise_off(layer):
        assert torch.equal(layer.noisy_weight(), layer.weight)


def test_add_pni_keeps_the_weights_and_covers_every_layer():
    """Every conv and linear layer (first and last included) becomes PNI with its weights kept:
    catches a skipped layer or re-initialised weights."""
    torch.manual_seed(0)
    plain = models.build("basicnet", 10, 3).eval()
    noisy = add_pni(models.build("basicnet", 10, 3), alpha=0.25)
    noisy.load_state_dict(plain.state_dict(), strict=False)
    assert len([m for m in noisy.modules() if hasattr(m, "alpha")]) == 5
    x = torch.rand(4, 3, 32, 32)
    noisy.eval()
    with models.noise_off(noisy):
        assert torch.allclose(noisy(x), plain(x))
    assert not torch.equal(noisy(x), noisy(x))


def _recording_pgd(calls):
    def pgd(model, x, y, eps, alpha, steps, *, norm="linf", **kwargs):
        calls.append((norm, eps, alpha, steps))
        return x
    return pgd


def test_mat_rand_picks_each_norm_at_random_per_batch(monkeypatch):
    """Per batch, L-inf with probability p_linf, else L2, each with its own budget: catches a
    fixed choice, MAT-Max instead of MAT-Rand, or the two budgets swapped."""
    calls = []
    monkeypatch.setattr(mixes.attacks, "pgd", _recording_pgd(calls))
    model, x, y = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), torch.rand(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
    linf, l2 = {"eps": 0.03, "alpha": 0.0075, "steps": 7}, {"eps": 0.5, "alpha": 0.125, "steps": 7}
    torch.manual_seed(0)
    for _ in range(400):
        mixes.mat_rand(model, x, y, linf, l2)
    assert len(calls) == 400                                   # one attack per batch, not both
    share = sum(c[0] == "linf" for c in calls) / 400
    assert 0.4 < share < 0.6
    assert {c for c in calls} == {("linf", 0.03, 0.0075, 7), ("l2", 0.5, 0.125, 7)}
    calls.clear()
    for p, norm in ((1.0, "linf"), (0.0, "l2")):
        mixes.mat_rand(model, x, y, linf, l2, p_linf=p)
        assert calls.pop()[0] == norm
    with pytest.raises(ValueError, match="probability"):
        mixes.mat_rand(model, x, y, linf, l2, p_linf=1.5)


def test_natural_mix_trains_on_clean_batches_at_the_given_rate(monkeypatch):
    """A batch is natural with probability p_natural: catches the rate inverted (95 % natural)."""
    calls = []
    monkeypatch.setattr(mixes.attacks, "pgd", _recording_pgd(calls))
    model, x, y = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), torch.rand(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
    a = {"eps": 0.03, "alpha": 0.0075, "steps": 7}
    torch.manual_seed(0)
    for _ in range(400):
        mixes.natural_mix(model, x, y, 0.05, a, a)
    assert 360 <= len(calls) <= 395                            # about 95 % adversarial
    loss, logits = mixes.natural_mix(model, x, y, 1.0, a, a)
    assert torch.allclose(logits, model(x))


def test_l2_pgd_training_stays_in_the_l2_ball():
    """The L2 training attack: catches the L-inf step or projection used instead."""
    torch.manual_seed(0)
    seen = []
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    model = nn.Sequential(nn.Identity(), net)
    model.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].detach()))
    x, y = torch.rand(16, 3, 8, 8) * 0.5 + 0.25, torch.randint(0, 10, (16,))
    DEFENSES["pgd-norm"](model, x, y, eps=0.5, alpha=0.125, steps=7, norm="l2")
    delta = (seen[-1] - x).flatten(1)
    assert delta.norm(dim=1).max() <= 0.5 + 1e-5
    assert delta.abs().max() > 0.1                            # far beyond an L-inf ball of 0.03


def test_chapter_configs_select_on_validation_and_attack_random_models_three_ways():
    """Early stopping only on held-out training images; randomized models attacked with the noise
    off, with one draw and with EOT: catches a threat model dropped or selection on the test set."""
    s = chapter.CHAPTER.settings("smoke")
    configs = chapter.experiments(s)
    for c in configs:
        assert c["validation"] and c["train"]["validation_spec"]["attack"] == "pgd"
        names = {spec["name"] for spec in c["evaluate"]}
        if c["variant"] in chapter.RANDOMIZED:
            assert {"unaware pgd-linf", "eot pgd-linf", "pgd-linf"} <= names
            assert all(spec.get("draws", 1) > 1 for spec in c["evaluate"])
    assert chapter.CHAPTER.settings("paper")["epochs"] == 40


def _rows(effects, seeds=(0, 1, 2)):
    """Synthetic summary rows: every metric 0.3 + the variant's shift + a little seed noise."""
    rows = []
    for variant, shift in effects.items():
        for seed in seeds:
            base = {k: 0.3 + shift(k) + 0.002 * seed for k in ("clean", "pgd-linf", "pgd-l2", "fgsm")}
            row = {"variant": variant, "seed": seed, "randomized": variant in chapter.RANDOMIZED,
                   "val_pgd": [0.1, 0.2, 0.25], **base}
            for k, v in base.items():
                row[f"naive {k}"] = row[f"unaware {k}"] = row[f"eot {k}"] = v
                if k in chapter.ROBUST:
                    row[chapter.ROBUST[k]] = row[chapter.HIGH[chapter.ROBUST[k]]] = v
            rows.append(row)
    return rows


def test_a_noise_gain_that_eot_removes_is_not_confirmed():
    """C10 reads the worst case over every threat model (EOT included): a model that looks robust to
    a naive attacker but not to EOT must not be confirmed (the bug: judging the one-draw column)."""
    s = chapter.CHAPTER.settings("cpu")
    rows = _rows({"PGD-inf": lambda k: 0.0, "PGD-inf + noise": lambda k: 0.0})
    for r in rows:
        if r["variant"] == "PGD-inf + noise":
            r["naive pgd-linf"] = r["pgd-linf"] = r["pgd-linf"] + 0.05 + 0.003 * r["seed"]
            r["eot pgd-linf"] -= 0.04 + 0.003 * r["seed"]
            r[chapter.ROBUST["pgd-linf"]] = r[chapter.HIGH[chapter.ROBUST["pgd-linf"]]] = r["eot pgd-linf"]  # the lowest
    c10 = next(c for c in chapter.claims(s, rows) if c["claim"].startswith("(C10)"))
    assert c10["verdict"] == "not confirmed"


def test_every_claim_gets_a_verdict_and_smoke_decides_nothing():
    rows = _rows({v: (lambda k: 0.0) for v in ("PGD-inf", "PGD-2", "FGSM", "natural", "MAT-Rand",
                                                "PGD-inf + noise", "PNI MAT-Rand")})
    smoke = chapter.CHAPTER.judge(chapter.CHAPTER.settings("smoke"), rows)
    assert len(smoke) == 15 and all(r["verdict"] == "inconclusive at this scale" for r in smoke)
    cpu = chapter.claims(chapter.CHAPTER.settings("cpu"), rows)
    assert [int(re.match(r"\(C(\d+)\)", r["claim"]).group(1)) for r in cpu] == list(range(1, 16))


def test_c2_compares_the_l2_model_with_both_others():
    """C2 is confirmed when the L2-trained model is ahead of both in natural accuracy, and not when
    it beats only one: catches a part compared against the wrong model."""
    s = chapter.CHAPTER.settings("cpu")
    ahead = _rows({"PGD-inf": lambda k: 0.0, "FGSM": lambda k: 0.0,
                   "PGD-2": lambda k: 0.05 if k == "clean" else 0.0})
    assert chapter.claims(s, ahead)[1]["verdict"] == "confirmed"
    one = _rows({"PGD-inf": lambda k: 0.0, "FGSM": lambda k: 0.1 if k == "clean" else 0.0,
                 "PGD-2": lambda k: 0.05 if k == "clean" else 0.0})
    assert chapter.claims(s, one)[1]["verdict"] == "not confirmed"


def test_published_numbers_match_the_paper_text():
    """Every transcribed number occurs in the paper's table of the same row (decimal commas in
    Table 1, as printed): catches a typo or a number put in the wrong table."""
    if not PAPER.exists():
        pytest.skip(f"paper text not present at {PAPER}")
    text = re.sub(r"</?b>", "", PAPER.read_text())
    frame = published.load("biparo")
    assert len(frame) == 64 and set(frame["table"]) == set("123456")
    labels = {"Natural examples": "Natural", "L-inf PGD attack": "PGD", "L2 PGD attack": "ell_2",
              "L-inf FGSM attack": "FGSM"}
    lines = text.splitlines()
    for _, r in frame.iterrows():
        forms = {f"{r['value']:.2f}", f"{r['value']:.1f}", f"{r['value']:g}"}
        forms |= {f.replace(".", ",") for f in forms}
        hits = [line for line in lines if labels[r["row"]] in line and
                any(cell.strip() in forms for cell in line.split("\t")[1:])]
        assert hits, (r["table"], r["row"], r["column"], r["value"])


def test_the_learning_diagnostic_shows_stored_runs_only_and_judges_them_by_the_guard(monkeypatch):
    """Nothing is computed for the page: a run not in the store is left out; a stored one is said to
    have learned exactly when its clean accuracy reaches the claims' guard (chance + 10 points)."""
    from advbook import store
    from advbook.chapters import biparo

    s = biparo.CHAPTER.settings("cpu", precision="fp32", variants=["PGD-inf"], eps_train=[biparo.PROFILES["cpu"]["eps"]],
                                seeds=[0], lr=0.05, train_subset=20000, seed_images=0, channels_last=False)
    config = next(c for c in biparo.experiments(s) if c["variant"] == "PGD-inf" and c["train"]["defense"] == "pgd")
    wanted, clean = store.model_key(config), {"accuracy": 0.31}
    record = {"key": wanted, "history": [{"train_loss": 2.1, "train_acc": 0.2}] * 6,
              "dataset": {"n_train": 20000, "num_classes": 10}, "created": "2026-11-29T02:00:00+00:00",
              "commit": "abcdef0123"}
    monkeypatch.setattr(store, "load_model", lambda mkey: record if mkey == wanted else None)
    monkeypatch.setattr(store, "load_eval", lambda mkey, spec, test: {"result": clean} if spec["name"] == "clean" else None)
    rows = biparo.learning_diagnostic()
    assert [(r["training images"], r["weight updates"], r["learned"]) for r in rows] == [(20000, 6 * 157, True)]
    clean["accuracy"] = 0.19
    assert [r["learned"] for r in biparo.learning_diagnostic()] == [False]


def test_learning_by_design_counts_each_designs_seeds_that_learned(monkeypatch):
    """Each design (the profile's and every earlier one the page renders) counts its own stored
    PGD-inf seeds; a seed at chance counts as not learned, a seed not stored is left out, and an
    evaluation of earlier weights does not count."""
    from advbook import store
    from advbook.chapters import biparo

    monkeypatch.setattr(biparo, "_pixel_std", lambda *a: (0.25, 0.25, 0.25))  # no dataset needed to list the configs
    clean_by_key = {}
    for overrides, accuracies in (({}, [0.31, 0.09]), ({"train_subset": 20000, "channels_last": False}, [0.33])):
        s = biparo.CHAPTER.settings("cpu", **overrides)
        configs = [c for c in biparo.experiments(s) if c["variant"] == "PGD-inf"]
        for config, accuracy in zip(configs, accuracies):
            clean_by_key[store.model_key(config)] = accuracy
    long = [c for c in biparo.experiments(biparo.CHAPTER.settings("cpu")) if c["variant"] == biparo.LONG_RUN]
    clean_by_key[store.model_key(long[3])] = 0.10
    monkeypatch.setattr(store, "load_model", lambda mkey: {"key": mkey, "created": "t"} if mkey in clean_by_key else None)
    monkeypatch.setattr(store, "load_eval", lambda mkey, spec, test: {"result": {"accuracy": clean_by_key[mkey]},
                                                                      "model_created": "t"} if mkey in clean_by_key else None)
    rows = {r["training images"]: r for r in biparo.learning_by_design(variants=("PGD-inf",))}
    assert set(rows) == {20000, 40000}  # the 4,000-image design has no stored seed here
    assert rows[40000]["learned"] == "1 of 2" and rows[40000]["clean test acc. by seed (%)"] == "0: 31.0, 1: 9.0"
    assert rows[20000]["learned"] == "1 of 1"
    # C6's long runs are a design of their own: their images and epochs, not the profile's
    (run,) = [r for r in biparo.learning_by_design() if r["training"] == biparo.LONG_RUN]
    assert (run["training images"], run["epochs"], run["learned"]) == (20000, 40, "0 of 1")
    assert run["clean test acc. by seed (%)"] == "3: 10.0" and run["weight updates"] == 40 * 157
    monkeypatch.setattr(store, "load_eval", lambda mkey, spec, test: {"result": {"accuracy": 0.5},
                                                                      "model_created": "earlier weights"})
    assert biparo.learning_by_design(variants=("PGD-inf",)) == []


def test_a_basicnet_stand_in_decides_nothing_about_the_papers_other_architecture():
    """C12 is the paper's ResNet-20 claim: BasicNet after a short schedule stands in for it in the cpu
    profile, and a verdict on the stand-in (here a refutation) must not read as one on the paper."""
    s = chapter.CHAPTER.settings("cpu")
    rows = _rows({"MAT-Rand": lambda k: 0.0, "PNI MAT-Rand": lambda k: 0.06})  # PNI ahead everywhere
    c12 = next(c for c in chapter.claims(s, rows) if c["claim"].startswith("(C12)"))
    assert c12["verdict"] == "inconclusive at this scale" and "stands in here for the paper's ResNet-20" in c12["why"]
    e = chapter.Evidence(s, rows)
    assert chapter.stand_in(e, chapter.judge(chapter.Claim("x", ""), [1, 1.1, 0.9, 1.05, 0.95]), False,
                            "ResNet-20").verdict == "confirmed"
    # undecided on the stand-in too: marked, so that What holds asks for the ResNet, not more BasicNet seeds
    undecided = chapter.stand_in(e, chapter.judge(chapter.Claim("x", ""), [1, -1.1, 0.9, -1.05, 0.95]), True,
                                 "ResNet-20")
    assert undecided.stand_in == "ResNet-20" and "stands in here" in undecided.reason
    assert c12["stand_in"] == "ResNet-20"


def test_a_doubt_of_the_checklist_holds_for_every_seed_of_that_recipe(monkeypatch):
    """Guard 6 for BIPARO: the checklist runs on the detail seeds only; PGD far above AutoAttack on
    PGD-inf's seed 0 doubts PGD-inf's PGD accuracies (every threat model's name, L-inf and L2) for
    every seed, and nothing of FGSM or of another recipe."""
    s = chapter.CHAPTER.settings("cpu")
    failed = {"model": "PGD-inf", "seed": 0, "PGD <= AutoAttack + 5": False, "eps sweep reaches ~0": True}
    monkeypatch.setattr(chapter, "masking_checks", lambda s, records: [failed, {"model": "FGSM", "seed": 0}])
    doubts = chapter.recipe_doubts(s, [])
    assert set(doubts) == {"PGD-inf"}
    assert {"pgd-linf", "eot pgd-linf", "naive pgd-linf", "unaware pgd-linf", "pgd-l2", "robust L2"} <= set(doubts["PGD-inf"])
    assert "robust L-inf" not in doubts["PGD-inf"]  # its own check: the worst case against AutoAttack
    worst = {**failed, "PGD <= AutoAttack + 5": True, masking.WORST_OVER_AUTOATTACK: False}
    monkeypatch.setattr(chapter, "masking_checks", lambda s, records: [worst])
    assert set(chapter.recipe_doubts(s, [])["PGD-inf"]) == {"robust L-inf", "robust L-inf (high end)"}
    assert "fgsm" not in doubts["PGD-inf"] and "PGD-inf seed 0" in doubts["PGD-inf"]["pgd-linf"]


def test_c6_has_its_own_long_runs_scored_clean_only():
    """C6's models: PGD-inf for the paper's 40 epochs on 20,000 images, attacked on 5,000 held out
    after every epoch, the rate dropped at 1/2 and 3/4, clean accuracy only, among the claims'
    models: catches a long run that inherits the profile's 6 epochs, 40,000 images or 500
    validation images, the full evaluation, or a smoke profile that trains it."""
    from advbook import store
    from advbook.chapters import CLAIMS
    from advbook.paths import BOOK_RESULTS

    s = chapter.CHAPTER.settings("cpu", variants=["PGD-inf"])
    long = [c for c in chapter.experiments(s) if c["variant"] == chapter.LONG_RUN]
    assert len(long) == len(s["seeds"]) == 5
    for c in long:
        assert c["train"]["epochs"] == 40 and c["subset"]["train"] == 20000 and c["train"]["schedule"] == "piecewise"
        assert c["validation"] == 5000
        assert c["train"]["defense"] == "pgd" and [spec["attack"] for spec in c["evaluate"]] == ["clean"]
        assert chapter.priority(c, c["evaluate"][0]) == CLAIMS
    assert not any(c["variant"] == chapter.LONG_RUN for c in chapter.experiments(chapter.CHAPTER.settings("smoke")))
    # the profile's other models are trained with channels_last too, under the keys the book's store holds
    others = [c for c in chapter.experiments(s) if c["variant"] != chapter.LONG_RUN]
    assert all(c["train"].get("channels_last") for c in others)
    assert all((BOOK_RESULTS / "models" / f"{store.model_key(c)}.json").exists() for c in others
               if c["variant"] == "PGD-inf")


def _long_rows(curve_of, variant=chapter.LONG_RUN):
    return [{"variant": variant, "seed": seed, "clean": 0.4, "model_clean": 0.4, "val_pgd": curve_of(seed)}
            for seed in range(5)]


def test_c6_compares_windows_fixed_before_the_curves_are_read():
    """A curve that peaks after the first drop and declines to the end is confirmed from C6's long
    runs; a flat curve with noise is not, though its best epoch always lies above its last (the
    bias of the best epoch, which would confirm it); the profile's 6-epoch curve decides nothing."""
    s = chapter.CHAPTER.settings("cpu")
    c6 = next(i for i, check in enumerate(chapter.CLAIM_CHECKS) if check is chapter.c6_robust_overfitting)
    early, late = chapter.overfitting_windows(40)
    assert (early, late) == (range(21, 23), range(39, 41))

    def declining(seed):
        return [0.30 + (0.06 if e in early else 0.0) + 0.002 * ((e + seed) % 3) for e in range(1, 41)]

    def flat(seed):  # noise about 0.30, the last epoch at 0.30: below the best, whatever the seed
        return [0.30 + 0.03 * ((7 * e + 3 * seed) % 5 - 2) for e in range(1, 40)] + [0.30]
    assert chapter.claims(s, _long_rows(declining))[c6]["verdict"] == "confirmed"
    rows = _long_rows(flat)
    biased = claims_module.best_minus_last(rows, "val_pgd", 5000, variant=chapter.LONG_RUN)
    assert claims_module.judge(claims_module.Claim("declines", "", "greater"), biased).verdict == "confirmed"
    assert chapter.claims(s, rows)[c6]["verdict"] != "confirmed"
    # a seed that never learned holds the claim, and says so even where the bounds leave it undecided
    failed = _long_rows(flat)
    failed[3] = {**failed[3], "clean": 0.09, "model_clean": 0.09, "val_pgd": [0.10] * 40}
    held = chapter.claims(s, failed)[c6]
    assert held["verdict"] == "inconclusive at this scale" and "did not learn" in held["why"]
    # without long runs the profile's own 6-epoch curve is read, and decides nothing
    short = _long_rows(lambda seed: [0.3, 0.3, 0.3, 0.5, 0.5, 0.2 + 0.002 * seed], "PGD-inf")
    held = chapter.claims(chapter.CHAPTER.settings("cpu", overfitting_epochs=0), short)[c6]
    assert held["verdict"] == "inconclusive at this scale" and "6 epochs" in held["why"]


def test_the_takeaway_on_c6_reads_each_seed_and_names_one_that_never_learned():
    s = chapter.CHAPTER.settings("cpu")
    rows = [{**r, "chance": 0.1} for r in _long_rows(lambda seed: [0.30] * 20 + [0.32] * 18 + [0.29, 0.29])]
    rows[3] = {**rows[3], "clean": 0.10, "val_pgd": [0.10] * 40}
    (line,) = [t for t in chapter.takeaways(s, rows) if t.startswith("**Robust overfitting")]
    assert "+3.0 (seed 0)" in line and "+0.0 (seed 3)" in line and "not a decline in every seed" in line
    assert "seed 3 never left chance" in line


def _record(variant, seed, outcomes, draws=1):
    """A chapter record of one BasicNet whose evaluations hold `outcomes` ({name: per-image text of
    4 images, repeated, or of 2,000}), every evaluation on the seed's own 2,000 test images."""
    evaluations = {}
    for name, text in outcomes.items():
        text = text * 500 if len(text) == 4 else text
        evaluations[name] = {"test": {"test": 500, "seed": seed},
                             "spec": {"name": name, "attack": "pgd", **({"draws": draws} if draws > 1 else {})},
                             "result": {"n": len(text), "per_image": text,
                                        "accuracy": sum(int(c) for c in text) / draws / len(text)}}
    return {"key": f"{variant}-{seed}", "config": {"variant": variant, "arch": "basicnet", "train": {"seed": seed},
                                                   "evaluate": []},
            "evaluations": evaluations, "metrics": {k: e["result"]["accuracy"] for k, e in evaluations.items()},
            "history": [{"train_acc": 0.5, "val_accuracy": 0.3, "epoch": 1, "seconds": 1.0}], "train_seconds": 1.0,
            "dataset": {"num_classes": 10, "display_name": "CIFAR-10"}}


def _noisy_and_plain(eot_last):
    """PGD-inf + noise (2 draws) and its plain twin over 5 seeds: the plain model keeps half of
    the images under PGD (one or two more or fewer in most seeds, so that the seeds differ); the noisy one keeps
    three quarters under EOT's best iterate and under `eot_last`, and all of them under every
    weaker threat model."""
    whole = "2222"
    noisy = {"clean": whole, **{f"{t}{a}": whole for t in ("", "unaware ", "eot ") for a in ("pgd-l2", "fgsm")},
             "pgd-linf": whole, "unaware pgd-linf": whole, "eot pgd-linf": "2220", "eot-last pgd-linf": eot_last}
    plain = {"clean": "1111", "fgsm": "1111", "pgd-l2": "1111"}
    return [_record("PGD-inf + noise", s, noisy, draws=2) for s in range(5)] + \
        [_record("PGD-inf", s, {**plain, "pgd-linf": ("1000" if s < 2 else "1110") * abs(s - 2) + "1100" * (500 - abs(s - 2))})
         for s in range(5)]


def test_robust_accuracy_is_the_per_image_worst_case_over_every_threat_model():
    """EOT's best and last iterates each leave three quarters of the images, different quarters:
    the noisy model's robust L-inf accuracy is the half that survives both (not the lower of the two
    accuracies, 75 %); each attack's own number stays in the row."""
    rows = chapter.summary(chapter.CHAPTER.settings("cpu"), _noisy_and_plain("2202"))
    noisy = next(r for r in rows if r["variant"] == "PGD-inf + noise")
    assert noisy[chapter.ROBUST["pgd-linf"]] == pytest.approx(0.5) and noisy["eot pgd-linf"] == 0.75
    assert noisy[chapter.HIGH[chapter.ROBUST["pgd-linf"]]] == pytest.approx(0.75)  # EOT alone, the high end
    table = chapter.threat_table(rows)
    assert table.loc[("PGD-inf + noise", "per image, the worst of all (low end)"), "L-inf PGD"] == "50.0 ± 0.0"
    assert table.loc[("PGD-inf + noise", "EOT alone, on the same images (high end)"), "L-inf PGD"] == "75.0 ± 0.0"
    assert table.loc[("PGD-inf + noise", "(iii) EOT, its last iterate"), "L-inf PGD"] == "75.0 ± 0.0"


@pytest.mark.parametrize("eot, eot_last, verdict", [
    ("2220", "2220", "confirmed"),  # ahead by 25 points at both ends
    ("2000", "2000", "not confirmed"),  # behind by 25 points at both ends
    ("2220", "2202", "inconclusive at this scale")])  # level at the low end (biased low), ahead at the high end
def test_a_randomized_models_verdict_must_hold_at_both_ends_of_its_robust_accuracy(eot, eot_last, verdict):
    """The lowest share of draws any attack left an image is biased low, EOT's own accuracy (fixed in
    advance) is not: a gain of the noisy model is refuted only if the high end refutes it too (catches
    a refutation made by the noise of the draws), and confirmed only if the low end confirms it."""
    s = chapter.CHAPTER.settings("cpu")
    records = _noisy_and_plain(eot_last)
    for r in records[:5]:
        r["evaluations"]["eot pgd-linf"]["result"]["per_image"] = eot * 500
    rows = chapter.summary(s, records)
    claim = chapter.Claim("noise raises L-inf robustness", "", "greater", paper_effect=1.07)
    parts = chapter.Evidence(s, rows).metric_parts(claim, "PGD-inf + noise", "PGD-inf", {"pgd-linf": 1.07})
    assert parts.verdict == verdict
    if verdict.startswith("inconclusive"):
        assert "not confirmed at the low end, confirmed at the high end" in parts.parts[0][1].reason


def test_a_suite_missing_an_attack_gives_no_worst_case():
    """A randomized model whose EOT attack is not stored (a partial store) has no worst case, rather
    than a weaker one over the attacks that are: its row has no robust L-inf accuracy."""
    records = _noisy_and_plain("2202")
    for r in records:
        r["evaluations"].pop("eot-last pgd-linf", None)
    rows = chapter.summary(chapter.CHAPTER.settings("cpu"), records)
    assert all(chapter.ROBUST["pgd-linf"] not in r for r in rows if r["variant"] == "PGD-inf + noise")
    assert all(chapter.ROBUST["pgd-linf"] in r for r in rows if r["variant"] == "PGD-inf")


def test_autoattack_is_shown_beside_the_worst_case_on_its_own_images():
    """AutoAttack runs on the first 20 images; the worst case beside it is taken on those 20, not
    on all 2,000 (catches a table pairing numbers of different images)."""
    record = _record("PGD-inf", 0, {"clean": "1111", "pgd-linf": "1100", "fgsm": "1111", "pgd-l2": "1111"})
    record["evaluations"]["autoattack"] = {"test": {"test": 500, "seed": 0}, "spec": {"name": "autoattack"},
                                           "result": {"n": 20, "per_image": "0" * 20, "accuracy": 0.0}}
    record["evaluations"]["pgd-linf"]["result"]["per_image"] = "1" * 20 + "0" * 1980
    record["metrics"]["autoattack"] = 0.0
    (row,) = chapter.autoattack_table([record])
    assert row["images"] == 20 and row["AutoAttack (%)"] == 0.0
    assert row["L-inf worst case on its images (%; a randomized model's low end)"] == 100.0


def test_where_both_ends_agree_holm_reads_the_end_that_refutes_less():
    """Both ends refute a gain of the randomized side; the low end's tiny p-value (biased low) must
    not reach Holm's correction, or a claim of several parts could be refuted on the bias alone;
    where the ends disagree, the part is undecided and carries the larger p-value too."""
    claim = chapter.Claim("noise raises robustness", "", "greater", paper_effect=2.0)
    low, high = [-3.0, -3.1, -2.9, -3.05, -2.95], [-1.0, -1.6, -0.4, -1.3, -0.7]
    agreed = chapter.bracketed(claim, chapter.Bracket(low, high))
    assert agreed.verdict == "not confirmed" == chapter.judge(claim, low).verdict
    assert agreed.p_refute == chapter.judge(claim, high).p_refute > chapter.judge(claim, low).p_refute
    ahead = [5.0, 5.2, 4.8, 5.1, 4.9]
    split = chapter.bracketed(claim, chapter.Bracket(low, ahead))
    assert split.verdict == "inconclusive at this scale"
    assert split.p_refute == chapter.judge(claim, ahead).p_refute > chapter.judge(claim, low).p_refute


def test_the_drop_from_clean_pairs_clean_accuracy_on_the_worst_cases_images():
    """C3's drops compare clean accuracy with the worst case on the same images: clean accuracy
    carries the worst case's identity there (or guard 1 would decline every drop), and none where
    clean accuracy was measured on other images."""
    s = chapter.CHAPTER.settings("cpu")
    records = [_record("PGD-inf", seed, {"clean": "1110", "pgd-linf": "1100", "fgsm": "1010", "pgd-l2": "1100"})
               for seed in range(5)]
    rows = chapter.summary(s, records)
    worst = chapter.ROBUST["pgd-linf"]
    drop = chapter.Evidence(s, rows).diffs("PGD-inf", "PGD-inf", chapter.CLEAN_ON[worst], worst)
    assert not isinstance(drop, chapter.Declined) and drop == pytest.approx([50.0] * 5)  # 75 % clean, 25 % worst
    records[0]["evaluations"]["clean"]["test"] = {"test": 1000, "seed": 0}
    assert chapter.CLEAN_ON[worst] not in chapter.summary(s, records[:1])[0]
