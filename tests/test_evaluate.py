import torch

from advbook import attacks, evaluate

CPU = torch.device("cpu")


def test_evaluation_restores_the_models_mode(trained, digits):
    trained.train()
    try:
        evaluate.accuracy(trained, digits.x_test[:50], digits.y_test[:50], device=CPU)
        assert trained.training
    finally:
        trained.eval()


def test_robust_accuracy_never_exceeds_clean(trained, digits):
    x, y = digits.x_test[:200], digits.y_test[:200]
    clean = evaluate.accuracy(trained, x, y, device=CPU)
    for eps in (0.0, 0.05, 0.2):
        robust = evaluate.robust_accuracy(trained, x, y, attacks.pgd, device=CPU, eps=eps, alpha=eps / 4, steps=5)
        assert robust <= clean
    assert evaluate.robust_accuracy(trained, x, y, attacks.pgd, device=CPU, eps=0.0, alpha=0.0, steps=3) == clean


def test_evaluate_spec_gives_every_metric(trained, digits):
    spec = {"n": 100, "eps": 0.1, "alpha": 0.025, "steps": 5, "attacks": ["fgsm", "pgd", "pgd-cw"],
            "eps_sweep": [0.0, 0.1], "steps_sweep": [1, 5]}
    out = evaluate.evaluate(trained, digits, spec, device=CPU)
    assert set(out) >= {"clean", "fgsm", "pgd", "pgd-cw", "eps_sweep", "steps_sweep"}
    assert out["eps_sweep"]["0.0"] == out["clean"]
    assert out["steps_sweep"]["5"] <= out["steps_sweep"]["1"]


def test_bf16_and_fp32_robust_accuracy_agree(trained, digits):
    """The numerics guard for the bf16 fast path: the same weights, evaluated with bf16
    autocast and in fp32, give robust accuracies within 0.5 points."""
    x = torch.cat([digits.x_test, digits.x_train])
    y = torch.cat([digits.y_test, digits.y_train])
    accs = {p: evaluate.robust_accuracy(trained, x, y, attacks.pgd, device=CPU, precision=p,
                                        eps=0.1, alpha=0.025, steps=10) for p in ("fp32", "bf16")}
    assert abs(accs["fp32"] - accs["bf16"]) <= 0.005, accs
