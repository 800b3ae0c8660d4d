"""What would decide an undecided claim (advbook.deciding, claims.seeds_to_decide): each branch,
and the seeds it plans checked against the rule's own smallest detectable effect."""
import math

import pytest

from advbook import claims, deciding
from advbook.claims import CONFIRMED, INCONCLUSIVE, LEVEL, POWER, Claim, judge, part_data, seeds_to_decide


def part(diffs, claim, label="A vs B", records=()):
    return {**part_data(label, judge(claim, diffs)), "records": list(records)}


def detectable(sd, n, images=0.0):
    return (claims.t_quantile(LEVEL, n - 1) + claims.t_quantile(POWER, n - 1)) * math.sqrt(sd * sd / n + images)


GREATER = Claim("A above B", "", "greater", paper_effect=4.0)  # needs half: 2 points


def test_seeds_are_the_fewest_whose_detectable_effect_reaches_the_need():
    diffs = [0.5, 3.0, -1.0, 2.5, 1.0]
    n, why = seeds_to_decide(part(diffs, GREATER))
    sd = claims._spread(diffs)[1]
    assert detectable(sd, n) <= 2.0 < detectable(sd, n - 1)
    assert "2 points" in why


def test_shared_images_that_alone_exceed_the_need_plan_no_seeds():
    p = {**part([0.5, 3.0, -1.0, 2.5, 1.0], GREATER), "image_variance": 1.0}  # (z + z) * 1 > 2
    n, why = seeds_to_decide(p)
    assert n is None and "own test images" in why
    # a smaller image term is added to every seed count, never ignored
    with_images = seeds_to_decide({**p, "image_variance": 0.1})[0]
    assert with_images > seeds_to_decide({**p, "image_variance": 0.0})[0]


def test_a_within_claim_is_sized_by_the_room_left_inside_its_margin():
    within = Claim("A within 1 of B", "", "within", margin=1.0)
    n, _ = seeds_to_decide(part([0.2, 0.9, -0.4, 0.6, 0.3], within))
    sd = claims._spread([0.2, 0.9, -0.4, 0.6, 0.3])[1]
    assert detectable(sd, n) <= 1.0 - 0.32 < detectable(sd, n - 1)
    outside = seeds_to_decide(part([1.5, 1.2, 1.9, 1.4, 1.6], within))
    assert outside == (None, "the measured difference lies outside the margin itself")


def test_no_effect_size_plans_no_seeds():
    assert seeds_to_decide(part([0.5, 3.0, -1.0], Claim("A above B", "")))[0] is None


def entry(parts, verdict=INCONCLUSIVE, profile="cpu", chapter="adaptive"):
    return {"chapter": chapter, "verdict": verdict, "scale": {"profile": profile}, "parts": parts}


def test_decided_and_smoke_claims_need_nothing():
    p = part([5.0, 6.0, 7.0], GREATER)
    assert p["verdict"] == CONFIRMED
    assert deciding.what_decides(entry([p], verdict=CONFIRMED)) is None
    assert deciding.what_decides(entry([part([0.5, 3.0, -1.0], GREATER)], profile="smoke")) is None


def test_a_part_held_by_a_guard_asks_for_another_design():
    p = {**part([0.5, 3.0, -1.0], GREATER), "reason": "a compared model did not learn: X seed 3 at 7.8 % clean"}
    text = deciding.what_decides(entry([p])).text
    assert "did not learn" in text and "more seeds of this one do not" in text


def test_a_claim_not_computed_names_the_next_profile_and_its_plan(monkeypatch):
    monkeypatch.setattr(deciding, "_profile_minutes", lambda chapter, profile: {"CPU": 600.0, "GPU": 12.0})
    decision = deciding.what_decides(entry([{"label": "", "verdict": INCONCLUSIVE, "lower": None, "reason": "x"}]))
    assert decision.profile == "fast" and decision.gpu_minutes == 12.0
    assert "fast profile computes it" in decision.text and "12 GPU-minutes" in decision.text


def test_a_stand_in_names_the_profile_of_the_papers_model_not_more_seeds(monkeypatch):
    """Seeds of a stand-in (BIPARO's BasicNet for the paper's ResNet) would decide it, not the claim."""
    monkeypatch.setattr(deciding, "_profile_minutes", lambda chapter, profile: {"CPU": 600.0, "GPU": 12.0})
    sized = part([0.5, 3.0, -1.0, 2.5, 1.0], GREATER, records=[f"a{s}" for s in range(5)])
    assert deciding.what_decides(entry([sized], chapter="biparo")).profile is None
    decision = deciding.what_decides({**entry([sized], chapter="biparo"), "stand_in": "ResNet-18"})
    assert decision.profile == "fast" and decision.seeds is None and "fast profile computes it" in decision.text


def test_a_sized_claim_costs_its_extra_models_at_the_planned_rate(monkeypatch):
    diffs = [0.5, 3.0, -1.0, 2.5, 1.0]
    p = part(diffs, GREATER, records=[f"a{s}" for s in range(5)] + [f"b{s}" for s in range(5)])
    monkeypatch.setattr(deciding, "claim_configs", lambda chapter, profile: {k: {"key": k} for k in p["records"]})
    monkeypatch.setattr(deciding, "_minutes", lambda configs: {"CPU": 3.0 * len(configs), "GPU": 0.5 * len(configs)})
    decision = deciding.what_decides(entry([p]))
    seeds = seeds_to_decide(p)[0]
    assert decision.seeds == seeds and decision.models == (seeds - 5) * 2
    assert decision.cpu_minutes == pytest.approx(3.0 * decision.models)
    assert decision.gpu_minutes == pytest.approx(0.5 * decision.models)


def test_the_committed_book_states_what_the_planner_gives(monkeypatch):
    """book/verdicts.json's decisions are what `what_decides` plans from the committed records and
    bench files, on any machine (the datasets size the models)."""
    import json

    from advbook import verdicts
    from advbook.paths import BOOK

    from conftest import offline_root

    root = offline_root()
    if root is None:
        pytest.skip("the offline datasets (ADVBOOK_DATA) size the planned models; not found here")
    monkeypatch.setenv("ADVBOOK_DATA", str(root))
    deciding._profile_minutes.cache_clear()  # an earlier test may have planned without the data
    stored = json.loads((BOOK / "verdicts.json").read_text())
    assert [e["decide"] for e in stored] == json.loads(json.dumps([e["decide"] for e in verdicts.data(BOOK)]))
    assert any(e["decide"] and e["decide"]["gpu_minutes"] for e in stored)


def test_a_missing_dataset_is_said_not_written_over_in_silence(monkeypatch, capsys):
    """A build without the datasets writes What holds with 'cost not planned here': `advbook
    verdicts` must say why, naming the dataset, rather than leave a poorer page unremarked."""
    from advbook import cli, verdicts
    from advbook.errors import DataUnavailable

    def missing(config, rates, **_):
        raise DataUnavailable("dataset 'mnist' is not available offline: put mnist.npz into /nowhere.")
    monkeypatch.setattr(deciding, "UNPLANNED", set())
    monkeypatch.setattr(deciding.planning, "config_seconds", missing)
    assert deciding._minutes([{"dataset": "mnist"}]) is None

    def configs_need_data(chapter, profile):  # BIPARO sizes its noise from the pixels
        raise DataUnavailable("dataset 'cifar10-jpeg' is not available offline: put cifar10-jpeg.npz into /nowhere.")
    monkeypatch.setattr(deciding, "claim_configs", configs_need_data)
    deciding._profile_minutes.cache_clear()
    assert deciding._profile_minutes("biparo", "fast") is None
    deciding._profile_minutes.cache_clear()
    assert any("cifar10-jpeg" in why for why in deciding.UNPLANNED)
    monkeypatch.setattr(verdicts, "write", lambda: "book/verdicts.md")
    cli._write_verdicts()
    err = capsys.readouterr().err
    assert "cost not planned here" in err and "dataset 'mnist' is not available offline" in err
    assert "dataset 'cifar10-jpeg'" in err
