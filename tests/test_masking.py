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
             "PGD <= FGSM": {"pgd": 0.62}, "AutoAttack <= PGD": {"autoattack": 0.51}}
    for check, change in cases.items():
        row = masking.checklist(_record({**GOOD, **change}), ROLES)
        assert row[check] is False, (check, row)
    construction = masking.violations([masking.checklist(_record({**GOOD, "pgd": 0.95}), ROLES)])
    assert construction == ["M seed 0: robust <= clean"]


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
