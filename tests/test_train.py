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


def _spy_defense(monkeypatch, calls, **attributes):
    """Register a standard-training defense under 'spy' that records what each call was given."""
    from advbook import defenses

    def spy(model, x, y, **kwargs):
        calls.append({"x": x.clone(), "y": y.clone(), **kwargs})
        return defenses.standard(model, x, y)
    for name, value in attributes.items():
        setattr(spy, name, value)
    monkeypatch.setitem(defenses.DEFENSES, "spy", spy)


def test_replay_trains_each_minibatch_m_times_in_a_row(digits, make_model, monkeypatch):
    """Catches Free-AT's replay run once, or on different batches, or left out of the LR schedule."""
    calls = []
    _spy_defense(monkeypatch, calls)
    history = fit(make_model(digits), digits, TrainConfig(defense="spy", epochs=1, batch_size=256, replay=3,
                                                          schedule="cosine"), device=CPU, progress=False)
    steps = -(-len(digits.y_train) // 256)
    assert len(calls) == 3 * steps
    for group in range(steps):
        first, *rest = calls[3 * group:3 * group + 3]
        assert all(torch.equal(first["x"], c["x"]) for c in rest)
    assert not torch.equal(calls[0]["x"][:10], calls[3]["x"][:10])
    assert history[0]["lr_end"] < 0.01  # the cosine schedule reached its end over all 3 * steps updates


def test_a_defense_that_wants_indices_gets_each_batchs_own(digits, make_model, monkeypatch):
    """Catches per-example state keyed by the wrong images (indices from another batch or order)."""
    calls = []
    _spy_defense(monkeypatch, calls, wants_index=True)
    fit(make_model(digits), digits, TrainConfig(defense="spy", epochs=1, batch_size=100), device=CPU, progress=False)
    for c in calls:
        assert torch.equal(digits.y_train[c["index"]], c["y"])
        assert torch.equal(digits.x_train[c["index"]].float() / 255, c["x"])
    assert sorted(torch.cat([c["index"] for c in calls]).tolist()) == list(range(len(digits.y_train)))


def test_a_stateful_defense_is_made_once_per_run(digits, make_model, monkeypatch):
    from advbook import defenses
    made = []

    def factory(n_train, device):
        made.append(n_train)
        return defenses.standard
    factory.stateful = True
    monkeypatch.setitem(defenses.DEFENSES, "stateful", factory)
    fit(make_model(digits), digits, TrainConfig(defense="stateful", epochs=2), device=CPU, progress=False)
    assert made == [len(digits.y_train)]


def test_parameters_marked_no_weight_decay_are_not_decayed(digits, make_model):
    """Catches a learned noise scale pulled to zero by weight decay (their loss gradient is zero here)."""
    model = make_model(digits)
    exempt, decayed = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    exempt.no_weight_decay = True
    model.register_parameter("exempt", exempt)
    model.register_parameter("decayed", decayed)
    model.register_forward_hook(lambda m, inputs, out: out + 0 * (exempt.sum() + decayed.sum()))  # zero gradients
    fit(model, digits, TrainConfig(epochs=1, weight_decay=0.1, lr=0.1), device=CPU, progress=False)
    assert torch.equal(exempt.detach(), torch.ones(3))
    assert (decayed.detach() < 0.9).all()


def test_select_best_ends_with_the_best_validation_epoch(digits, make_model, monkeypatch):
    """Catches best-epoch selection that keeps the last weights or picks by another score."""
    from advbook import train
    scores, snapshots = iter([0.5, 0.9, 0.1]), []

    def scripted(model, dataset, spec, device):
        snapshots.append(weights(model).clone())
        return next(scores)
    monkeypatch.setattr(train, "validation_accuracy", scripted)
    held_out = digits.split_validation(200)
    model = make_model(held_out)
    history = fit(model, held_out, TrainConfig(epochs=3, validation_spec={"name": "clean", "attack": "clean"},
                                               select_best=True), device=CPU, progress=False)
    assert [h["selected"] for h in history] == [False, True, False]
    assert torch.equal(weights(model), snapshots[1]) and not torch.equal(snapshots[1], snapshots[2])


def test_random_erasing_fills_one_rectangle_with_noise_at_its_rate():
    """Catches erasing at the wrong rate, several or non-rectangular patches, or areas off Zhong et al.'s range."""
    from advbook.data import random_erasing
    x = torch.full((4000, 3, 32, 32), 0.5)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(random_erasing(x, 0.0, generator=g), x)
    out = random_erasing(x, 0.5, generator=g)
    changed = (out != x).any(1)                        # (n, h, w)
    touched = changed.flatten(1).any(1)
    assert abs(touched.float().mean().item() - 0.5) < 4 * (0.25 / len(x)) ** 0.5
    for mask in changed[touched][:200]:
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all()                                # one full rectangle
        assert mask.sum() <= 0.4 * 32 * 32 * 1.2        # area fraction at most 0.4 (plus rounding)
    assert 0.1 < changed[touched].float().mean().item() < 0.3   # E[s] = 0.21, less where clipped


def test_validation_accuracy_scores_the_held_out_split_not_the_test_split(digits, trained):
    from advbook import evaluate, train
    held_out = digits.split_validation(300)
    got = train.validation_accuracy(trained, held_out, {"name": "clean", "attack": "clean"}, CPU)
    assert got == evaluate.accuracy(trained, held_out.x_val, held_out.y_val, device=CPU)
    assert got != evaluate.accuracy(trained, held_out.x_test, held_out.y_test, device=CPU)
