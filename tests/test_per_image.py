"""Per-image outcomes (advbook.per_image): the worst case over a suite of attacks, and the images'
share of a paired difference's variance, measured where both sides recorded their outcomes."""
import math
import random

import pytest

from advbook import claims
from advbook.claims import CONFIRMED, Claim
from advbook.per_image import Suite, image_variance, worst_case

SUITE = Suite("FGSM and PGD", ("fgsm", "pgd"))


def _evaluation(per_image, *, n=None, test=500, draws=1):
    spec = {"attack": "x", **({"draws": draws} if draws > 1 else {})}
    result = {"n": n or len(per_image or "0000"), "accuracy": 0.0}
    if per_image is not None:
        result["per_image"] = per_image
    return {"test": {"test": test, "seed": 0}, "spec": spec, "result": result}


def _record(evaluations, key="m"):
    return {"key": key, "config": {"evaluate": []}, "evaluations": evaluations, "metrics": {},
            "dataset": {"num_classes": 10}}


def test_the_worst_case_is_taken_image_by_image_not_over_the_accuracies():
    """Catches a worst case that is the lower of the two accuracies: each attack leaves half the
    images, different halves, so the per-image worst case is 0 while either attack reads 50 %."""
    record = _record({"fgsm": _evaluation("1100"), "pgd": _evaluation("0011")})
    accuracy, images, values = worst_case(record, SUITE)
    assert accuracy == 0.0 and values == (0, 0, 0, 0)
    assert images == "test subset 500 (seed 0), first 4, worst case of FGSM and PGD"
    assert worst_case(_record({"fgsm": _evaluation("1101"), "pgd": _evaluation("1011")}), SUITE)[0] == 0.5


def test_a_randomized_model_counts_each_image_at_its_lowest_share_of_draws():
    record = _record({"fgsm": _evaluation("5310", draws=5), "pgd": _evaluation("4500", draws=5)})
    accuracy, _, values = worst_case(record, SUITE)
    assert values == pytest.approx((0.8, 0.6, 0.0, 0.0)) and accuracy == pytest.approx(0.35)


def test_attacks_on_more_images_join_on_the_first_images_they_share():
    """An evaluation of the first 6 images holds the first 4: the worst case is taken there (and
    says so), never over the 2 images only one attack saw."""
    accuracy, images, values = worst_case(_record({"fgsm": _evaluation("1101"), "pgd": _evaluation("111100")}),
                                          SUITE)
    assert values == (1, 1, 0, 1) and accuracy == 0.75 and "first 4, worst case" in images


def test_a_suite_on_different_images_is_the_chapters_error_and_a_missing_attack_leaves_none():
    with pytest.raises(ValueError, match="FGSM and PGD: its attacks were measured on different images"):
        worst_case(_record({"fgsm": _evaluation("1100"), "pgd": _evaluation("1100", test=200)}), SUITE)
    # a record without one of the attacks (a partial store) has no worst case, nor one made before
    # per-image outcomes (never the lower accuracy in its place)
    assert worst_case(_record({"fgsm": _evaluation("1100")}), SUITE) is None
    assert worst_case(_record({"fgsm": _evaluation(None, n=4), "pgd": _evaluation("0011")}), SUITE) is None


def test_worst_cases_over_different_suites_do_not_pair():
    """The suite is part of the images' identity, so guard 1 refuses a worst case over FGSM and
    PGD against one over PGD alone (the side with fewer attacks would look more robust)."""
    def row(variant, seed, suite):
        record = _record({"fgsm": _evaluation("1100"), "pgd": _evaluation("1110")})
        return {"variant": variant, "seed": seed, "model_clean": 0.9, "chance": 0.1,
                **claims.cell_fields({**record, "metrics": {"clean": 0.9}}, worst={"robust": suite})}
    alone = Suite("PGD", ("pgd",))
    rows = [row("A", s, SUITE) for s in range(3)] + [row("B", s, alone) for s in range(3)]
    with pytest.raises(claims.MismatchedImages, match="worst case of FGSM and PGD.*worst case of PGD"):
        claims.diffs(rows, "A", "B", "robust")
    same = [row("A", s, SUITE) for s in range(3)] + [row("B", s, SUITE) for s in range(3)]
    assert claims.diffs(same, "A", "B", "robust") == [0.0, 0.0, 0.0]


def test_image_variance_is_the_variance_over_images_of_the_seed_mean_difference():
    rng = random.Random(4)
    a = [tuple(float(rng.random() < 0.6) for _ in range(50)) for _ in range(3)]
    b = [tuple(float(rng.random() < 0.4) for _ in range(50)) for _ in range(3)]
    per = [sum(a[s][j] - b[s][j] for s in range(3)) / 3 for j in range(50)]
    centre = sum(per) / 50
    assert image_variance(a, b) == pytest.approx(sum((d - centre) ** 2 for d in per) / 49 / 50)
    assert image_variance(a, a) == 0.0
    with pytest.raises(ValueError, match="unequal lengths"):
        image_variance(a, [x[:49] for x in b])


def _rows(a_outcomes, b_outcomes, recorded=True):
    images = f"test subset 500 (seed 0), first {len(a_outcomes[0])}, attack seed 0"

    def row(variant, seed, values):
        return {"variant": variant, "seed": seed, "pgd": sum(values) / len(values), "model_clean": 0.95,
                "chance": 0.1, "images": {"pgd": images}, "outcomes": {"pgd": tuple(values) if recorded else None}}
    return [row("A", s, v) for s, v in enumerate(a_outcomes)] + [row("B", s, v) for s, v in enumerate(b_outcomes)]


def test_paired_differences_use_the_measured_image_variance_where_both_sides_recorded_it():
    """Catches the bound kept where outcomes exist (or the measure used where they do not): two
    models that agree on every image but 25 of 1,000 get the images' variance those 25 give, far
    below the bound's, and confirm what the bound leaves undecided."""
    agree = [1.0] * 500 + [0.0] * 475
    a = [tuple(agree + [1.0] * 25)] * 5
    b = [tuple(agree + [0.0] * 25)] * 5
    measured = claims.diffs(_rows(a, b), "A", "B", "pgd")
    bounded = claims.diffs(_rows(a, b, recorded=False), "A", "B", "pgd")
    assert measured == bounded == pytest.approx([2.5] * 5)
    assert measured.image_variance() == pytest.approx(image_variance(a, b) * 100 ** 2)
    assert measured.image_variance() < bounded.image_variance() / 10
    claim = Claim("A above B", "", "greater", paper_effect=2.0)
    assert claims.judge(claim, measured).verdict == CONFIRMED
    assert claims.judge(claim, bounded).verdict != CONFIRMED
    assert math.isclose(claims.judge(claim, measured).image_variance, measured.image_variance())


@pytest.mark.parametrize("profile", ["smoke", "cpu", "fast", "paper"])
def test_every_chapters_worst_cases_name_attacks_its_models_run(profile):
    """Catches a suite naming a spec a profile renamed or dropped: its worst case would silently
    vanish from every row (a record without one of its attacks has none: a partial store)."""
    from advbook.chapters import adaptive, biparo, efgsm, mixture, primer, random_sign

    def names(config):
        return {spec["name"] for spec in config["evaluate"]}

    s = efgsm.CHAPTER.settings(profile)
    for config in efgsm.experiments(s):
        if config.get("variant") in efgsm.VARIANTS and config["variant"] != "source":
            assert set(efgsm.ROBUST.names) <= names(config), config["variant"]
            if config["variant"] in ("combined", "combined-nols"):
                assert set(efgsm.ROBUST_DLR.names) <= names(config)
    s = primer.CHAPTER.settings(profile)
    for detailed in (False, True):
        specs = names({"evaluate": primer.evaluation(s, detailed)})
        assert set(primer.suites(s)["robust"].names) <= specs
        if detailed and s["autoattack_n"]:
            assert set(primer.suites(s)[primer.AA_IMAGES].names) <= specs
    s = mixture.CHAPTER.settings(profile)
    for sat in (False, True):
        specs = names({"evaluate": mixture.evaluation(s, sat)})
        assert all(set(suite.names) <= specs for suite in mixture.suites(sat).values())
    s = random_sign.CHAPTER.settings(profile)
    for config in random_sign.experiments(s):
        b = random_sign.block(s, config["dataset"])
        assert set(random_sign.suites(b, names(config))) == {f"robust {e}" for e in b["attack_eps"]}
    s = adaptive.CHAPTER.settings(profile)
    specs = {spec["name"]: spec for spec in adaptive.evaluation_specs(s, s["eps_mnist"])}
    first = round(s["apgd_eps_factors"][0] * s["eps_mnist"], 6)
    assert adaptive.robust_name(first) in adaptive.suites(s, specs)
    s = biparo.CHAPTER.settings(profile)
    for randomized in (False, True):
        for detailed in (False, True):
            specs = names({"evaluate": biparo.evaluation(s, randomized, detailed)})
            assert all(set(suite.names) <= specs for suite in biparo.suites(randomized).values())


def test_outcomes_that_do_not_give_the_value_judged_are_not_borrowed():
    """Catches a side whose value is computed otherwise (the lower of two attacks' accuracies, say)
    carrying one evaluation's outcomes: its variance would be another quantity's; the bound stays."""
    agree = [1.0] * 500 + [0.0] * 475
    a = [tuple(agree + [1.0] * 25)] * 5
    b = [tuple(agree + [0.0] * 25)] * 5
    rows = _rows(a, b)
    bounded = claims.diffs(_rows(a, b, recorded=False), "A", "B", "pgd").image_variance()
    for r in rows:
        if r["variant"] == "B":
            r["pgd"] -= 0.01  # B's value is no longer its outcomes' mean
    moved = claims.diffs(rows, "A", "B", "pgd")
    assert moved.image_variance() == pytest.approx(bounded, rel=0.05) and moved.image_variance() > 10 * \
        claims.diffs(_rows(a, b), "A", "B", "pgd").image_variance()


def test_a_test_subset_drawn_after_a_training_subset_is_named_by_what_changes_its_images():
    """`Dataset.subset` draws the training subset first, from the generator the test subset is
    drawn with, as a prefix of a permutation of the training images left after the validation
    split: the same test subset and seed hold other images after another validation split, or
    with no training subset drawn, and the same images whatever the training subset's size. The
    images' identity follows that (`experiments.combine` adds what it needs), so guard 1 pairs
    exactly the evaluations that share their images."""
    import itertools

    import torch
    from advbook import data, experiments

    def test_images(n_train, n_val):
        x = torch.arange(500).view(500, 1, 1, 1).expand(500, 1, 2, 2).to(torch.uint8)
        dataset = data.Dataset("toy", "toy", x, torch.arange(500) % 10, x[:200], torch.arange(200) % 10,
                               tuple("0123456789"), "synthetic", None)
        dataset = dataset.split_validation(n_val) if n_val else dataset
        return dataset.subset(n_train, 50, seed=0).x_test[:, 0, 0, 0].tolist()

    def identity(n_train, n_val):
        config = {"subset": {"train": n_train, "test": 50, "seed": 0}, "validation": n_val, "evaluate": [{"name": "pgd"}]}
        model = {"key": "m", "dataset": {"num_classes": 10}, "history": [], "train_seconds": 1, "created": "",
                 "torch": "", "torchvision": "", "python": "", "commit": "", "device": "cpu", "wall_seconds": 1,
                 "code_files": {}}
        evaluation = {**_evaluation("1100", test=50), "device": "cpu", "commit": "", "code_files": {}}
        return claims.images_of(experiments.combine(config, model, {"pgd": evaluation}))["pgd"]

    cases = [(100, 10), (150, 10), (100, 20), (None, 10), (None, 20)]
    same = {(a, b): (test_images(*a) == test_images(*b), identity(*a) == identity(*b))
            for a, b in itertools.combinations(cases, 2)}
    assert all(images == named for images, named in same.values()), same
    assert same[((100, 10), (150, 10))] == (True, True) and same[((100, 10), (100, 20))] == (False, False)
    assert "drawn after a training subset, 10 held out" in identity(100, 10)
    assert identity(None, 10) == "test subset 50 (seed 0), first 4, attack seed 0"
