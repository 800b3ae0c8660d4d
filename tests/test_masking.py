"""The book's one masking checklist (advbook.masking)."""
from advbook import masking


def _record(metrics, n=None):
    n = n or {}
    evaluations = {}
    for name, value in metrics.items():
        points = value.items() if isinstance(value, dict) else [(None, value)]
        for point, _ in points:
            key = name if point is None else f"{name}:{point}"
            evaluations[key] = {"test": {"test": 500, "seed": 0}, "spec": {"attack": "x"},
                                "result": {"n": n.get(name, 500)}}
    return {"metrics": metrics, "evaluations": evaluations, "config": {"variant": "M", "train": {"seed": 0}}}


ROLES = {"clean": "clean", "fgsm": "fgsm", "pgd": "pgd", "autoattack": "autoattack", "steps_sweep": "steps_sweep",
         "eps_sweep": "eps_sweep"}
GOOD = {"clean": 0.9, "fgsm": 0.6, "pgd": 0.5, "autoattack": 0.45, "steps_sweep": {"1": 0.6, "10": 0.5, "50": 0.5},
        "eps_sweep": {"0.0": 0.9, "0.3": 0.5, "1.0": 0.0}}


def test_a_healthy_model_passes_every_check():
    row = masking.checklist(_record(GOOD), ROLES)
    assert all(v is True for k, v in row.items()
               if k not in ("model", "seed", "sanity checks") and not k.startswith("largest"))
    assert masking.violations([row]) == []


def test_the_sanity_checks_findings_reach_the_checklist():
    """What advbook.checks found before any evaluation is shown in the model's row, each finding once."""
    clean = {"n": 32, "randomized": False, "zero_gradients": 0.0, "probabilities": False, "non_finite": 0.0}
    record = _record(GOOD)
    assert masking.checklist(record, ROLES)["sanity checks"] == "n/a: not recorded"
    for evaluation in record["evaluations"].values():
        evaluation["result"]["checks"] = clean
    assert masking.checklist(record, ROLES)["sanity checks"] == "none"
    for evaluation in record["evaluations"].values():
        evaluation["result"]["checks"] = {**clean, "zero_gradients": 0.25}
    found = masking.checklist(record, ROLES)["sanity checks"]
    assert found.startswith("25% of the images have an all-zero input gradient") and found.count("25%") == 1


def test_each_check_fails_on_its_own_symptom():
    cases = {"robust <= clean": {"pgd": 0.95}, "steps sweep never rises": {"steps_sweep": {"1": 0.5, "10": 0.6}},
             "eps 0 = clean": {"eps_sweep": {"0.0": 0.8, "1.0": 0.0}},
             "eps sweep reaches ~0": {"eps_sweep": {"0.0": 0.9, "1.0": 0.1}},
             "PGD <= FGSM": {"pgd": 0.62}, "AutoAttack <= PGD": {"autoattack": 0.51},
             "PGD <= AutoAttack + 5": {"autoattack": 0.44}}
    for check, change in cases.items():
        row = masking.checklist(_record({**GOOD, **change}), ROLES)
        assert row[check] is False, (check, row)
    construction = masking.violations([masking.checklist(_record({**GOOD, "pgd": 0.95}), ROLES)])
    assert construction == ["M seed 0: robust <= clean"]


def test_pgd_far_above_autoattack_is_flagged_and_named():
    """The other direction of AutoAttack against PGD: PGD more than 5 points above AutoAttack on the same
    images overstates robustness (the primer's PGD-20 read up to 44 points above AutoAttack while every row
    passed); within 5 it passes, and a flagged model is named in the page's sentence."""
    assert masking.checklist(_record({**GOOD, "autoattack": 0.46}), ROLES)["PGD <= AutoAttack + 5"] is True
    rows = [masking.checklist(_record({**GOOD, "autoattack": 0.06}), ROLES)]
    assert rows[0]["PGD <= AutoAttack + 5"] is False
    assert masking.flagged(rows) .startswith("**Not believed**") and "M seed 0: PGD <= AutoAttack + 5" in masking.flagged(rows)
    assert masking.flagged([masking.checklist(_record(GOOD), ROLES)]).startswith("**No sign of gradient masking**")
    # on different images the two are not compared
    row = masking.checklist(_record({**GOOD, "autoattack": 0.06}, n={"autoattack": 50}), ROLES)
    assert row["PGD <= AutoAttack + 5"] == masking.NOT_COMPARABLE


def test_robust_above_clean_on_other_images_is_not_a_violation():
    """'robust <= clean' compares only numbers measured on the same images: PGD on 200 images above clean
    accuracy on 500 says nothing; on the same 500 it is a bug."""
    row = masking.checklist(_record({**GOOD, "pgd": 0.95}, n={"pgd": 200}), ROLES)
    assert row["robust <= clean"] is True
    assert masking.checklist(_record({**GOOD, "pgd": 0.95}), ROLES)["robust <= clean"] is False


def test_numbers_on_different_images_are_not_compared():
    row = masking.checklist(_record({**GOOD, "autoattack": 0.9}, n={"autoattack": 50}), ROLES)
    assert row["AutoAttack <= PGD"] == masking.NOT_COMPARABLE


def test_autoattack_on_fewer_images_meets_pgd_on_its_own_images():
    """With PGD also run on AutoAttack's images (the role pgd_aa), the check is made there, and
    fails when AutoAttack is above it."""
    n = {"autoattack": 50, "pgd-aa": 50}
    roles = {**ROLES, "pgd_aa": "pgd-aa"}
    assert masking.checklist(_record({**GOOD, "autoattack": 0.4, "pgd-aa": 0.42}, n=n), roles)["AutoAttack <= PGD"] is True
    assert masking.checklist(_record({**GOOD, "autoattack": 0.44, "pgd-aa": 0.42}, n=n), roles)["AutoAttack <= PGD"] is False


def test_the_provenance_names_the_autoattack_each_evaluation_ran():
    """An AutoAttack number is shown with the parameters it ran with; one computed by the 10-iteration
    packaging says so, never passing for the published strength."""
    from advbook import reporting

    def record(result):
        return {"evaluations": {"autoattack": {"spec": {"attack": "autoattack", "eps": 0.3}, "result": result}}}
    labels = reporting.autoattack_labels([record({"accuracy": 0.5}),
                                          record({"accuracy": 0.4, "attack_label": "AutoAttack standard (APGD-CE 100)"})])
    assert labels == {reporting.LEGACY_AUTOATTACK: 1, "AutoAttack standard (APGD-CE 100)": 1}
    assert "10 iterations" in reporting.LEGACY_AUTOATTACK


def test_pgd_far_above_apgd_on_the_same_images_is_flagged():
    """Catches the direction a chapter without AutoAttack needs: PGD overstating robustness
    against APGD-CE (adaptive's check), compared only on the same images."""
    roles = {"clean": "clean", "pgd": "pgd", "apgd": "apgd"}
    name = "PGD <= APGD-CE + 5"
    assert masking.checklist(_record({"clean": 0.9, "pgd": 0.5, "apgd": 0.47}), roles)[name] is True
    assert masking.checklist(_record({"clean": 0.9, "pgd": 0.5, "apgd": 0.44}), roles)[name] is False
    assert name in masking.SIGNS_OF_MASKING
    apart = masking.checklist(_record({"clean": 0.9, "pgd": 0.5, "apgd": 0.44}, n={"apgd": 200}), roles)
    assert apart[name] == masking.NOT_COMPARABLE


def test_adaptive_checks_pgd_against_apgd_at_the_budget_both_ran_at():
    from advbook.chapters import adaptive

    s = adaptive.CHAPTER.settings("cpu")
    record = _record({"clean": 0.99, "APGD-CE 0.15": 0.40,
                      "eps_sweep": {"0.0": 0.99, "0.15": 0.60, "0.45": 0.0}})
    record["config"].update(dataset="mnist")
    record["dataset"] = {"display_name": "MNIST"}
    row = adaptive.masking_checks(s, [record])[0]
    assert row["PGD <= APGD-CE + 5"] is False and row["eps sweep reaches ~0"] is True


def test_adaptive_rows_carry_the_checklists_doubts_to_the_claims():
    """Catches a chapter that runs the checklist beside its claims but never tells them: a model
    whose sweep stays flat has its PGD and APGD-CE rows doubted (guard 6), its clean row not."""
    from advbook.chapters import adaptive

    s = adaptive.CHAPTER.settings("cpu")
    record = _record({"clean": 0.99, "pgd": 0.09, "APGD-CE 0.15": 0.09,
                      "eps_sweep": {"0.0": 0.99, "0.15": 0.09, "0.45": 0.09}})
    record["config"].update(dataset="mnist", variant="norm n=10000")
    record.update(dataset={"display_name": "MNIST", "n_train": 55000, "num_classes": 10}, key="k",
                  history=[{"seconds": 30.0, "perturbed": 9000, "gradient_images": 110000}])
    row = adaptive.summary(s, [record])[0]
    assert set(row["not_believed"]) == {"pgd", "APGD-CE 0.15", "robust 0.15"}
    assert row["not_believed"]["APGD-CE 0.15"].startswith("eps sweep reaches ~0 failed (9.0 % left at eps 0.45)")
    # PGD far above APGD-CE doubts PGD alone: the worst case of the two is at most APGD's, which is believed
    weak_pgd = _record({"clean": 0.99, "pgd": 0.6, "APGD-CE 0.15": 0.40, "eps_sweep": {"0.0": 0.99, "0.15": 0.60,
                                                                                        "0.45": 0.0}})
    weak_pgd["config"].update(dataset="mnist", variant="norm n=10000")
    weak_pgd.update({k: record[k] for k in ("dataset", "key", "history")})
    assert set(adaptive.summary(s, [weak_pgd])[0]["not_believed"]) == {"pgd"}


def _with_outcomes(outcomes: dict[str, str], draws: dict | None = None):
    """A record whose evaluations carry per-image outcomes (one digit an image), all drawn from one
    selection, each on the first len(digits) images: metrics are what the digits give."""
    draws = draws or {}
    evaluations, metrics = {}, {}
    for name, digits in outcomes.items():
        d = draws.get(name, 1)
        value = sum(int(c, 36) for c in digits) / d / len(digits)
        group, _, point = name.partition(":")
        if point:
            metrics.setdefault(group, {})[point] = value
        else:
            metrics[name] = value
        evaluations[name] = {"test": {"test": 500, "seed": 0}, "spec": {"attack": "x", **({"draws": d} if d > 1 else {})},
                             "result": {"n": len(digits), "per_image": digits, "accuracy": value}}
    return {"metrics": metrics, "evaluations": evaluations, "config": {"variant": "M", "train": {"seed": 0}}}


def test_attacks_on_the_first_images_of_anothers_are_compared_there():
    """AutoAttack on the first 4 of PGD's 8 images: compared on those 4, image by image. There PGD
    leaves 3 of 4 and AutoAttack 1: PGD is 50 points above AutoAttack and flagged, although over its
    8 images PGD reads 37.5 %, within 5 of nothing comparable; where AutoAttack leaves more than PGD
    on the shared images, 'AutoAttack <= PGD' fails. Clean accuracy and the eps sweep's 0 meet on
    their shared images too."""
    base = {"clean": "11111111", "pgd": "11100000", "fgsm": "11110000", "eps_sweep:0.0": "1111",
            "eps_sweep:1.0": "0000"}
    roles = {"clean": "clean", "fgsm": "fgsm", "pgd": "pgd", "autoattack": "autoattack", "eps_sweep": "eps_sweep"}
    row = masking.checklist(_with_outcomes({**base, "autoattack": "1000"}), roles)
    assert row["PGD <= AutoAttack + 5"] is False and row["AutoAttack <= PGD"] is True
    assert row["robust <= clean"] is True and row["eps 0 = clean"] is True and row["PGD <= FGSM"] is True
    row = masking.checklist(_with_outcomes({**base, "pgd": "10000000", "autoattack": "1100"}), roles)
    assert row["AutoAttack <= PGD"] is False
    row = masking.checklist(_with_outcomes({**base, "eps_sweep:0.0": "1110"}), roles)
    assert row["eps 0 = clean"] is False
    # clean on the first 4 images reads 25 %, PGD over its 8 reads 37.5 %, and on those 4, 75 %
    row = masking.checklist(_with_outcomes({**base, "clean": "0001", "eps_sweep:0.0": "0001"}), roles)
    assert row["robust <= clean"] is False


def test_a_randomized_models_attacks_on_different_images_are_not_compared():
    """Its draws differ between evaluations: on shared images two of them may differ by chance, so
    a check there would flag noise; only numbers measured on the same images are compared."""
    roles = {"clean": "clean", "pgd": "pgd", "autoattack": "autoattack"}
    record = _with_outcomes({"clean": "55555555", "pgd": "55500000", "autoattack": "1000"}, draws={
        "clean": 5, "pgd": 5, "autoattack": 5})
    row = masking.checklist(record, roles)
    assert row["PGD <= AutoAttack + 5"] == masking.NOT_COMPARABLE == row["AutoAttack <= PGD"]
