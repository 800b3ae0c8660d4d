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


def test_attack_specs_give_their_metrics(trained, digits):
    specs = [{"name": "clean", "attack": "clean", "n": 100},
             {"name": "fgsm", "attack": "fgsm", "params": {"eps": 0.1}, "n": 100},
             *evaluate.sweep({"attack": "pgd", "params": {"eps": 0.1, "alpha": 0.025}, "n": 100}, "steps", [1, 5],
                             name="steps"),
             *evaluate.sweep({"attack": "pgd", "params": {"steps": 5}, "n": 100}, "eps", [0.0, 0.1],
                             scale={"alpha": 0.25})]
    out = {s["name"]: evaluate.evaluate_spec(trained, digits, s, device=CPU)["accuracy"] for s in specs}
    assert out["eps_sweep:0.0"] == out["clean"]
    assert out["steps:5"] <= out["steps:1"] <= out["clean"]
    assert out["fgsm"] < out["clean"]


def test_a_bad_spec_is_refused_by_name():
    import pytest

    with pytest.raises(ValueError, match="unknown attack 'pgdd' in 'x'"):
        evaluate.check_spec({"name": "x", "attack": "pgdd"})
    with pytest.raises(ValueError, match="eps must be a finite number"):
        evaluate.check_spec({"name": "x", "attack": "pgd", "params": {"eps": float("nan")}})
    # an attack's argument outside `params` would be taken for something else: refused, saying where it goes
    with pytest.raises(ValueError, match="unknown spec key.*eps.*go under 'params'"):
        evaluate.check_spec({"name": "x", "attack": "pgd", "eps": 0.1})
    with pytest.raises(ValueError, match="takes no attack params"):
        evaluate.check_spec({"name": "x", "attack": "clean", "params": {"eps": 0.1}})
    with pytest.raises(ValueError, match="sweep must be"):
        evaluate.check_spec({"name": "x", "attack": "pgd", "params": {}, "sweep": {"name": "eps"}})


def test_require_clean_false_scores_the_transformed_images_alone(trained, digits):
    """Catches a benign-disturbance score still capped by the clean one (or a robust score that is not):
    the "disturbance" swaps every image for a correctly classified image of its class."""
    x_u8, y = digits.x_test[:200], digits.y_test[:200]
    with torch.no_grad():
        clean_ok = trained(x_u8.float() / 255).argmax(1) == y
    exemplar = {int(c): x_u8[(y == c) & clean_ok][0].float() / 255 for c in y[clean_ok].unique()}
    assert not clean_ok.all() and len(exemplar) == len(y.unique())  # else the test shows nothing
    swap = lambda model, x, labels: torch.stack([exemplar[int(c)] for c in labels])  # noqa: E731
    alone = evaluate.correct_per_draw(trained, x_u8, y, swap, device=CPU, require_clean=False)
    joint = evaluate.correct_per_draw(trained, x_u8, y, swap, device=CPU)
    assert alone == [1.0]
    assert joint == [clean_ok.sum().item() / len(y)]


def test_evaluation_is_fp32_inside_an_enclosing_autocast(digits, make_model):
    """Catches evaluation that inherits a caller's bf16 autocast (fit's per-epoch validation runs in a
    training loop that may use one): every layer of the model computes in fp32, checks and attack included."""
    model = make_model(digits).eval()
    dtypes = []
    for layer in model.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            layer.register_forward_hook(lambda m, inputs, out: dtypes.append(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(digits.x_test[:4].float() / 255).dtype == torch.bfloat16  # the autocast is on
        dtypes.clear()
        evaluate.evaluate_spec(model, digits, {"name": "pgd", "attack": "pgd", "n": 20,
                                               "params": {"eps": 0.1, "alpha": 0.05, "steps": 2}}, device=CPU)
        evaluate.accuracy(model, digits.x_test[:20], digits.y_test[:20], device=CPU)
    assert dtypes and set(dtypes) == {torch.float32}


def test_per_image_outcomes_are_the_images_own_in_their_order(trained, digits):
    """Catches a per-image record that is not the model's per-image verdict (shuffled, summed over the
    wrong axis, or taken from the clean pass alone): it must read back to the accuracy and, image by
    image, to the model's own predictions on FGSM images recomputed here."""
    spec = {"name": "fgsm", "attack": "fgsm", "params": {"eps": 0.15}, "n": 120}
    result = evaluate.evaluate_spec(trained, digits, spec, device=CPU)
    counts = evaluate.per_image_counts(result["per_image"])
    assert len(counts) == 120 and set(counts) <= {0, 1}
    assert sum(counts) / 120 == result["accuracy"]
    x, y = digits.x_test[:120].float() / 255, digits.y_test[:120]
    trained.eval()
    with torch.no_grad():
        clean_ok = trained(x).argmax(1) == y
    adv_ok = trained(attacks.fgsm(trained, x, y, eps=0.15)).argmax(1) == y
    assert counts == (clean_ok & adv_ok).long().tolist()
    assert 0 < sum(counts) < clean_ok.sum()  # the attack fooled some images, not all: the order matters


def test_per_image_counts_the_draws_an_image_was_right_in():
    right = torch.tensor([[True, False, True, False], [True, False, False, False], [True, True, False, False]])
    assert evaluate.per_image_text(right) == "3110"
    assert evaluate.per_image_counts("3110") == [3, 1, 1, 0]
    many = torch.ones(35, 2, dtype=torch.bool)
    assert evaluate.per_image_counts(evaluate.per_image_text(many)) == [35, 35]
    # the claims' floor reads the same format with its own reader (advbook.per_image, below evaluate)
    from advbook import per_image
    assert per_image.counts("3110") == [3, 1, 1, 0] and per_image.DIGITS[35] == evaluate.per_image_text(many)[0]


def test_draws_beyond_one_digit_of_the_record_are_refused():
    import pytest

    with pytest.raises(ValueError, match="draws must be a whole number from 1 to 35"):
        evaluate.check_spec({"name": "x", "attack": "clean", "draws": 36})
    evaluate.check_spec({"name": "x", "attack": "clean", "draws": 35})
