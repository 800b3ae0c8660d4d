import re

import pytest
import torch
from torch import nn

from advbook import defenses, models, published
from advbook.chapters import mixture
from conftest import SHARED_DATA


def test_smooth_grad_relu_forward_is_relu_and_backward_is_sigmoid():
    x = torch.linspace(-3, 3, 61, requires_grad=True)
    y = models.SmoothGradReLU(alpha=10.0)(x)
    assert torch.equal(y, torch.relu(x))
    y.sum().backward()
    assert torch.allclose(x.grad, torch.sigmoid(10.0 * x.detach()))


def test_parametric_softplus_derivative_is_sigmoid():
    x = torch.linspace(-3, 3, 61, requires_grad=True)
    models.parametric_softplus(x, 5.0).sum().backward()
    assert torch.allclose(x.grad, torch.sigmoid(5.0 * x.detach()), atol=1e-6)


def test_sat_build_swaps_every_relu():
    net = models.build("resnet18", 10, 3, width=8, activation="sat")
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())
    assert sum(isinstance(m, models.SmoothGradReLU) for m in net.modules()) == 17  # stem + 2 per block x 8
    with pytest.raises(ValueError):
        models.build("resnet18", activation="gelu")


def test_auxiliary_bn_routes_only_inside_its_block():
    net = models.build("small-cnn", 10, 1, width=4, advprop=True).train()
    dual = next(m for m in net.modules() if isinstance(m, models.DualBatchNorm2d))
    x = torch.rand(16, 1, 8, 8)
    with models.auxiliary_bn(net):
        net(x)
    assert dual.aux.num_batches_tracked == 1 and dual.main.num_batches_tracked == 0
    net(x)
    assert dual.main.num_batches_tracked == 1
    with pytest.raises(RuntimeError):
        with models.auxiliary_bn(net):
            raise RuntimeError("boom")
    assert not dual.route_aux  # reset even after an error
    with pytest.raises(ValueError, match="advprop"):
        with models.auxiliary_bn(models.build("small-cnn", 10, 1, width=4)):
            pass
    with pytest.raises(ValueError, match="no batch norm"):
        models.build("std-cnn", 10, 1, image_size=28, advprop=True)


def test_als_targets():
    logits = torch.tensor([[1.0, 5.0, -2.0, 0.0], [-9.0, 0.0, 1.0, 2.0]])
    targets = defenses.als_targets(logits, torch.tensor([1, 0]), 0.1)
    assert torch.allclose(targets.sum(1), torch.ones(2))
    assert targets[0].tolist() == pytest.approx([0.0, 0.9, 0.1, 0.0])
    # the true class may score lowest; the smoothing mass then goes to the lowest other class
    assert targets[1].tolist() == pytest.approx([0.9, 0.1, 0.0, 0.0])


def test_mixture_step_trains_both_batch_norms_and_returns_clean_logits(digits):
    net = models.build("small-cnn", 10, 1, width=4, advprop=True).train()
    x, y = digits.x_train[:32].float() / 255, digits.y_train[:32]
    loss, logits = defenses.mixture(net, x, y, adversarial=True, advprop=True, als_alpha=0.1, eps=0.1,
                                    alpha=0.05, steps=2)
    loss.backward()
    dual = next(m for m in net.modules() if isinstance(m, models.DualBatchNorm2d))
    assert logits.shape == (32, 10)
    assert dual.aux.weight.grad is not None and dual.main.weight.grad is not None
    # 1 clean pass on main; 2 attack steps + 1 adversarial pass on aux
    assert dual.main.num_batches_tracked == 1 and dual.aux.num_batches_tracked == 3


def test_published_tables_match_the_paper_text():
    paper = SHARED_DATA.parent / "papers" / "mixture-advprop-als-sat.md"
    if not paper.exists():
        pytest.skip(f"paper text not present at {paper}")
    text = paper.read_text()
    frame = published.load("mixture")
    for (table, row), group in frame.groupby(["table", "row"], sort=False):
        values = [f"{v:.2f}" for v in group["value"]]
        # the row's five numbers appear in order on one line of the paper (bold marks stripped)
        lines = [re.sub(r"</?b>", "", line) for line in text.splitlines() if line.startswith(row + "\t")]
        assert any(line.split("\t")[1:] == values for line in lines), (table, row, values)


def _rows(clean_advprop, pgd05_als_sat):
    rows = []
    base = {"Test Accuracy": 0.90, "FGSM 0.1": 0.40, "PGD 0.1": 0.35, "FGSM 0.5": 0.30, "PGD 0.5": 0.10}
    for seed, noise in enumerate((-0.002, 0.0, 0.002)):
        for name in mixture.TECHNIQUES:
            row = {k: v + noise for k, v in base.items()}
            if "AdvProp" in name:
                row.update({k: v + 0.1 for k, v in row.items()})
                row["Test Accuracy"] = clean_advprop + noise - (0.01 if name != "AdvProp" else 0)
            if name == "ALS":
                row["Test Accuracy"] -= 0.01
                row["PGD 0.5"] += 0.03
            if name in ("SAT", "ALS + SAT", "Adversarial"):
                row["Test Accuracy"] -= 0.005 * (name != "Adversarial")
                row["PGD 0.5"] = 0.2 + 0.03 * (name != "Adversarial") + noise
            if name == "ALS + SAT":
                row["PGD 0.5"] = pgd05_als_sat + noise
            row["strong 8/255"] = row["PGD 0.5"]  # the restated claim's column ranks as PGD 0.5 does here
            # the claims' robust accuracies: per image the worst case, here the lower of the two (nested) attacks
            row.update({f"robust {e}": min(row[f"FGSM {e}"], row[f"PGD {e}"]) for e in ("0.1", "0.5")})
            rows.append({"table": "1", "configuration": name, "seed": seed, **row})
    return rows


def test_claims_verdicts_follow_the_evidence():
    s = mixture.CHAPTER.settings("cpu")
    good = mixture.claims(s, _rows(0.92, 0.5))
    # "most robust at PGD 0.5" (eps 128/255) is untestable as stated, whatever the numbers; its
    # restatement at 8/255 is judged
    assert [c["verdict"] for c in good] == ["confirmed"] * 4 + ["untestable as stated"] + ["confirmed"] * 2, good
    bad = mixture.claims(s, _rows(0.85, 0.05))
    verdicts = [c["verdict"] for c in bad]
    assert verdicts[0] == "not confirmed" and verdicts[4] == "untestable as stated" and verdicts[5] == "not confirmed"
    assert {c["verdict"] for c in mixture.CHAPTER.judge(mixture.CHAPTER.settings("smoke"), _rows(0.92, 0.5))} == \
        {"inconclusive at this scale", "untestable as stated"}


def test_a_win_over_adversarial_training_at_the_floor_decides_nothing():
    """SAT above Adversarial at eps 0.5 confirms nothing when Adversarial sits at 0 % there: the
    paper's adversarially trained baseline is robust, ours did not become so."""
    s = mixture.CHAPTER.settings("cpu")
    rows = _rows(0.92, 0.5)
    for r in rows:
        if r["configuration"] == "Adversarial":
            r["robust 0.5"] = 0.0
    sat = next(c for c in mixture.claims(s, rows) if c["claim"].startswith("SAT costs"))
    assert sat["verdict"] == "inconclusive at this scale" and "Adversarial did not become robust" in sat["why"]


def test_experiments_cover_both_tables():
    s = mixture.CHAPTER.settings("smoke", seeds=[0])
    configs = mixture.CHAPTER.experiments(s)
    assert len(configs) == 9 + 3
    als = next(c for c in configs if c["configuration"] == "ALS")
    assert als["train"]["defense_params"]["adversarial"] is False and als["train"]["defense_params"]["als_alpha"] > 0
    table2 = [c for c in configs if c["table"] == "2"]
    assert all(c["train"]["defense_params"]["eps"] == 0.5 for c in table2)


def test_advprop_test_time_attacks_meet_the_main_batch_norms():
    """At test time an AdvProp model is attacked and scored through its main batch norms only: the
    auxiliary ones see adversarial examples during training alone. Catches a routing flag left on
    after training, or an evaluation that routes through the auxiliary norms."""
    from types import SimpleNamespace

    from advbook.evaluate import evaluate_spec

    torch.manual_seed(0)
    net = models.build("small-cnn", 10, 1, image_size=8, width=4, advprop=True)
    duals = [m for m in net.modules() if isinstance(m, models.DualBatchNorm2d)]
    calls = {"main": 0, "aux": 0}
    for d in duals:
        d.main.register_forward_hook(lambda *a: calls.__setitem__("main", calls["main"] + 1))
        d.aux.register_forward_hook(lambda *a: calls.__setitem__("aux", calls["aux"] + 1))
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    net.train()
    defenses.DEFENSES["mixture"](net, x, y, adversarial=True, advprop=True, eps=0.1, alpha=0.05, steps=2)
    assert calls["aux"] > 0 and not any(d.route_aux for d in duals)  # training used the auxiliary norms, then let go
    calls.update(main=0, aux=0)
    dataset = SimpleNamespace(x_test=(x * 255).to(torch.uint8), y_test=y, num_classes=10)
    evaluate_spec(net, dataset, {"name": "pgd", "attack": "pgd", "params": {"eps": 0.1, "alpha": 0.05, "steps": 3}},
                  device=torch.device("cpu"))
    assert calls["main"] > 0 and calls["aux"] == 0


def test_every_model_gets_the_masking_checklist_at_both_strong_budgets():
    """Catches a robustness chapter without the book's checklist: a model whose PGD-20 reads above its
    FGSM at 0.1 is flagged, and one whose worst case at 8/255 (PGD-20 through both gradients) reads
    far above AutoAttack on the same images too."""
    from advbook import masking

    outcomes = {"Test Accuracy": "1111100000", "FGSM 0.1": "1100000000", "PGD-20 0.1": "1110000000",
                "PGD-20 8/255": "1110000000", "PGD-20 8/255 (ReLU gradient)": "1101000000",
                "AutoAttack 8/255": "1000000000"}
    metrics = {k: v.count("1") / 10 for k, v in outcomes.items()}
    record = {"metrics": metrics, "config": {"configuration": "SAT", "model": {"activation": "sat"}, "train": {"seed": 0}},
              "evaluations": {k: {"test": {"test": 500, "seed": 0}, "spec": {"attack": "x"},
                                  "result": {"n": 10, "accuracy": metrics[k], "per_image": v}}
                              for k, v in outcomes.items()}}
    rows = mixture.masking_checks(mixture.CHAPTER.settings("cpu"), [record])
    assert [r["model"] for r in rows] == ["SAT, eps 0.1", "SAT, 8/255"]
    assert rows[0]["PGD <= FGSM"] is False and masking.WORST_OVER_AUTOATTACK not in rows[0]
    # the worst case of the two PGD-20s is 2 images of 10 (20 %), AutoAttack's 1: 10 points above
    assert rows[1][masking.WORST_OVER_AUTOATTACK] is False and rows[1]["PGD <= AutoAttack + 5"] is False
    assert set(masking.violations(rows, masking.SIGNS_OF_MASKING)) == {
        "SAT, eps 0.1 seed 0: PGD <= FGSM", "SAT, 8/255 seed 0: PGD <= AutoAttack + 5",
        f"SAT, 8/255 seed 0: {masking.WORST_OVER_AUTOATTACK}"}
    # within the tolerance when AutoAttack leaves the same 2 images
    record["metrics"]["AutoAttack 8/255"] = 0.2
    assert mixture.masking_checks(mixture.CHAPTER.settings("cpu"), [record])[1][masking.WORST_OVER_AUTOATTACK] is True


def test_a_worst_case_part_takes_the_smaller_of_the_papers_gaps_at_its_budget():
    """Catches claim 2's worst case at an eps judged against the larger of the paper's two attackers'
    gaps there (a refutation would then need less than the paper shows under its weaker attacker)."""
    judged = mixture.claims(mixture.CHAPTER.settings("cpu"), _rows(0.92, 0.5))
    c2 = next(c for c in judged if c["claim"].startswith("AdvProp is more robust"))
    effects = {p["label"]: p["paper_effect"] for p in c2["parts"]}
    for e in ("0.1", "0.5"):
        gaps = [mixture.paper_gap("AdvProp", "Traditional", f"{a} {e}") for a in ("FGSM", "PGD")]
        assert effects[f"eps {e}"] == pytest.approx(min(gaps, key=abs)) and len(set(gaps)) == 2
