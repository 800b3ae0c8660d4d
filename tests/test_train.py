import pytest
import torch

from advbook.train import TrainConfig, fit, learning_rate

CPU = torch.device("cpu")


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values() if p.is_floating_point()])


@pytest.mark.parametrize("defense,params", [("standard", {}), ("fgsm-rs", {"eps": 0.1, "alpha": 0.125}),
                                            ("pgd", {"eps": 0.1, "alpha": 0.05, "steps": 2})])
def test_training_is_seeded_and_deterministic(digits, make_model, defense, params):
    cfg = TrainConfig(defense=defense, defense_params=params, epochs=2, batch_size=128, seed=3)
    a, b = make_model(digits, seed=1), make_model(digits, seed=1)
    fit(a, digits, cfg, device=CPU, progress=False)
    fit(b, digits, cfg, device=CPU, progress=False)
    assert torch.equal(weights(a), weights(b))
    c = make_model(digits, seed=1)
    fit(c, digits, TrainConfig(defense=defense, defense_params=params, epochs=2, batch_size=128, seed=4),
        device=CPU, progress=False)
    assert not torch.equal(weights(a), weights(c))


def test_resumed_training_ends_with_the_same_weights(digits, make_model, tmp_path):
    cfg = TrainConfig(defense="fgsm-rs", defense_params={"eps": 0.1, "alpha": 0.125}, epochs=4, batch_size=128,
                      augment=True, seed=7, schedule="cosine")
    straight = make_model(digits)
    history = fit(straight, digits, cfg, device=CPU, progress=False)

    ckpt = tmp_path / "run.pt"
    interrupted = make_model(digits)
    fit(interrupted, digits, cfg, checkpoint=ckpt, device=CPU, progress=False, stop_after=2)
    assert ckpt.exists()
    resumed = make_model(digits, seed=99)  # other initial weights: everything must come from the checkpoint
    resumed_history = fit(resumed, digits, cfg, checkpoint=ckpt, device=CPU, progress=False)
    assert torch.equal(weights(straight), weights(resumed))
    assert [h["train_loss"] for h in history] == [h["train_loss"] for h in resumed_history]


def test_checkpoint_of_another_config_is_refused(digits, make_model, tmp_path):
    ckpt = tmp_path / "run.pt"
    fit(make_model(digits), digits, TrainConfig(epochs=1), checkpoint=ckpt, device=CPU, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        fit(make_model(digits), digits, TrainConfig(epochs=2), checkpoint=ckpt, device=CPU, progress=False)


def test_training_learns(digits, trained):
    from advbook.evaluate import accuracy

    assert accuracy(trained, digits.x_test, digits.y_test, device=CPU) > 0.8


def test_schedules():
    cyclic = TrainConfig(lr=0.2, schedule="cyclic")
    assert learning_rate(cyclic, 0.0) == 0.0
    assert learning_rate(cyclic, 0.4) == pytest.approx(0.2)
    assert learning_rate(cyclic, 1.0) == pytest.approx(0.0)
    piecewise = TrainConfig(lr=0.1, schedule="piecewise")
    assert [learning_rate(piecewise, p) for p in (0.1, 0.6, 0.9)] == pytest.approx([0.1, 0.01, 0.001])
    cosine = TrainConfig(lr=0.1, schedule="cosine")
    assert learning_rate(cosine, 0.5) == pytest.approx(0.05)


@pytest.mark.parametrize("bad", [{"schedule": "linear"}, {"epochs": 0}, {"lr": -1.0}, {"defense": "magic"},
                                 {"precision": "fp8"}])
def test_train_config_is_validated(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)
