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
                                 {"precision": "fp8"}, {"optimizer": "lbfgs"}, {"lr": float("nan")}])
def test_train_config_is_validated(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_adam_is_adam_and_sgd_is_sgd(digits, make_model):
    """The optimizer choice reaches the loop: one Adam step moves every weight by about lr
    (its normalized update), one SGD step by lr times the gradient."""
    import torch

    from advbook.train import make_optimizer

    for name, kind in (("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)):
        opt = make_optimizer(TrainConfig(optimizer=name, lr=0.01), make_model(digits).parameters(), CPU)
        assert isinstance(opt, kind)
    model = make_model(digits)
    before = [p.detach().clone() for p in model.parameters()]
    fit(model, digits.subset(64, 10), TrainConfig(optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=1, batch_size=64,
                                                   schedule="constant"), device=CPU, progress=False)
    steps = torch.cat([(p.detach() - b).abs().flatten() for p, b in zip(model.parameters(), before)])
    moved = steps[steps > 0]
    assert moved.median() == pytest.approx(1e-3, rel=0.05)  # Adam's first step is lr * sign-like


def test_before_epoch_hook_runs_once_per_epoch_and_replaces_samples(digits, make_model):
    import torch

    calls = []

    class Replace:
        count = 1

        def apply(self, idx, x):
            return torch.zeros_like(x)  # every image blank: training accuracy falls to chance

    def hook(model, x_u8, y, generator):
        calls.append(len(y))
        return Replace()

    history = fit(make_model(digits), digits, TrainConfig(epochs=2, batch_size=128), device=CPU, progress=False,
                  before_epoch=hook)
    assert calls == [len(digits.y_train)] * 2
    assert all(h["perturbed"] == 1 for h in history)
    assert history[-1]["train_acc"] < 0.3


def test_drop_last_trains_on_full_batches_only(digits, make_model):
    n = len(digits.y_train)
    history = fit(make_model(digits), digits, TrainConfig(epochs=1, batch_size=100, drop_last=True), device=CPU,
                  progress=False)
    assert history[0]["gradient_images"] == (n // 100) * 100
