"""The "Audit your own model" page (advbook.chapters.auditing): its reports as records that a rerun
with other settings never replaces, the quantizer that masks by construction, and the comparison
with the primer's own numbers, which must say NO when the counts differ."""
import json

import pytest
import torch

from advbook import store
from advbook.chapters import auditing
from advbook.paths import results_root


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVBOOK_RESULTS", str(tmp_path / "results"))
    return auditing.CHAPTER.settings("smoke")


def test_the_quantizer_hides_every_input_gradient():
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    (auditing.Quantize(16)(x) * torch.randn(4, 1, 8, 8)).sum().backward()
    assert torch.count_nonzero(x.grad) == 0
    assert (auditing.Quantize(16)(x) - x).abs().max() <= 1 / 32 + 1e-6  # the image hardly changes


def test_other_settings_write_other_reports(settings):
    a = auditing.AUDITED[0]
    first = auditing.report_name(settings, a)
    assert first != auditing.report_name({**settings, "n": settings["n"] + 1}, a)
    assert first != auditing.report_name({**settings, "attack_seeds": [1]}, a)
    assert first != auditing.report_name(settings, auditing.AUDITED[1])  # the same weights, quantized
    assert auditing.arguments(settings, auditing.AUDITED[1])["model"] == auditing.arguments(settings, a)["model"]


def test_nothing_is_audited_without_weights_and_the_page_says_how(settings):
    found = auditing.reports(settings, compute=True)  # an empty store: no weights to audit
    assert found == {a.name: None for a in auditing.AUDITED}
    lines = auditing.missing(settings, found)
    assert len(lines) == 3 and all("advbook compute auditing --profile smoke" in line for line in lines)


def test_a_stored_report_is_read_not_recomputed(settings):
    a = auditing.AUDITED[0]
    path = results_root() / auditing.report_name(settings, a)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"stored": True}))
    assert auditing.reports(settings, compute=True)[a.name] == {"stored": True}


def _record(defense, n, autoattack):
    return {"config": {"train": {"defense": defense}, "evaluate": [{"name": "autoattack", "n": n},
                                                                   {"name": "apgd-aa", "n": n}]},
            "metrics": {"autoattack": autoattack, "apgd-aa": 0.5}}


def _report(n, autoattack):
    return {"worst_case": {"n": n},
            "attacks": [{"key": "autoattack", "name": "AutoAttack", "per_seed": {"0": autoattack}},
                        {"key": "apgd-ce", "name": "APGD-CE-100", "per_seed": {"0": 0.5}}]}


def test_the_reproduction_compares_counts_on_the_same_images_and_says_no_when_they_differ(settings):
    records = [_record("pgd", 20, 0.85), _record("fgsm", 20, 0.10)]
    found = {"pgd-at": _report(20, 0.85), "pgd-at-quantized": _report(20, 0.95), "fgsm-at": _report(20, 0.15)}
    table = auditing.reproduction(settings, records, found)
    assert list(table["network"]) == ["PGD-AT", "PGD-AT", "FGSM-AT", "FGSM-AT"]  # never the quantized one
    rows = {(r["network"], r["measurement"]): r for r in table.to_dict("records")}
    assert rows[("PGD-AT", "AutoAttack")]["the same"] == "yes"
    assert rows[("PGD-AT", "AutoAttack")]["primer's record"] == "17 of 20"
    assert rows[("FGSM-AT", "AutoAttack")]["the same"] == "NO"  # 2 of 20 against 3 of 20
    # on other images (another n) there is nothing to compare
    assert auditing.reproduction(settings, records, {"pgd-at": _report(10, 0.85)}).empty


def test_the_pages_networks_are_the_primers_of_the_same_profile_and_seed(settings):
    configs = auditing.experiments(settings)
    assert {c["chapter"] for c in configs} == {"auditing"} and {c["profile"] for c in configs} == {"smoke"}
    primers = {store.model_key(c) for c in auditing.primer.experiments(auditing.primer_settings(settings))}
    assert {store.model_key(c) for c in configs} <= primers  # the primer's very networks
    assert sorted(c["train"]["defense"] for c in configs) == ["fgsm", "pgd"]
    assert {c["train"]["seed"] for c in configs} == {settings["seed"]}
    assert auditing.arguments(settings, auditing.AUDITED[0])["model"] == store.model_key(
        next(c for c in configs if c["train"]["defense"] == "pgd"))
