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


def test_a_defense_with_end_epoch_puts_its_statistics_in_that_epochs_history(digits, make_model, monkeypatch):
    """The loop, not the defense, says where an epoch ends: with drop_last an epoch trains on fewer
    images than the training set holds, and a defense counting to n_train would drift."""
    from advbook import defenses

    class Counting:
        def __init__(self):
            self.seen = 0

        def __call__(self, model, x, y):
            self.seen += len(y)
            return defenses.standard(model, x, y)

        def end_epoch(self):
            seen, self.seen = self.seen, 0
            return {"images_seen": seen}

    monkeypatch.setitem(defenses.DEFENSES, "counting", lambda n_train, device: Counting())
    defenses.DEFENSES["counting"].stateful = True
    n, batch = len(digits.y_train), 128
    history = fit(make_model(digits), digits, TrainConfig(defense="counting", epochs=2, batch_size=batch,
                                                          drop_last=True), device=CPU, progress=False)
    assert n % batch and [h["images_seen"] for h in history] == [n // batch * batch] * 2


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


class _Recorder(torch.nn.Module):
    """A linear classifier that keeps every input it is called with (attack steps, then the training pass)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(64, 10)
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.linear(x.flatten(1))

    def sign_of_gradient(self, x, y):
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(self.linear(x.flatten(1)), y, reduction="sum"),
                                      x)
        return grad.sign()


def _mid_range_batch(n=64):
    torch.manual_seed(1)
    return torch.rand(n, 1, 8, 8) * 0.4 + 0.3, torch.arange(n) % 10  # far from 0 and 1: no image-range clipping


@pytest.mark.parametrize("alpha", [0.02, 0.06])
def test_fgsm_rs_defense_trains_on_one_alpha_step_from_its_start(alpha):
    """Catches the fgsm-rs defense's alpha not reaching the attack's step (dropped, or eps used in its place)."""
    from advbook import defenses

    eps = 0.1
    x, y = _mid_range_batch()
    model = _Recorder()
    defenses.fgsm_rs(model, x, y, eps=eps, alpha=alpha)
    start, trained_on = model.inputs
    expected = x + (start - x + alpha * model.sign_of_gradient(start, y)).clamp(-eps, eps)
    assert torch.allclose(trained_on, expected, atol=1e-6)
    assert not torch.allclose(trained_on, x + (start - x + eps * model.sign_of_gradient(start, y)).clamp(-eps, eps))


@pytest.mark.parametrize("steps", [1, 3])
def test_pgd_at_trains_on_steps_of_alpha_from_a_random_start(steps):
    """Catches PGD-AT's `steps` (or alpha) not reaching its training attack: `steps` gradient steps of
    alpha * sign(grad), each from the previous iterate, then one training pass on the last iterate."""
    from advbook import defenses

    eps, alpha = 0.2, 0.03
    x, y = _mid_range_batch()
    model = _Recorder()
    defenses.pgd_at(model, x, y, eps=eps, alpha=alpha, steps=steps)
    assert len(model.inputs) == steps + 1
    start = model.inputs[0]
    assert 0 < (start - x).abs().max() <= eps  # a random start in the ball
    for before, after in zip(model.inputs, model.inputs[1:]):
        expected = x + (before - x + alpha * model.sign_of_gradient(before, y)).clamp(-eps, eps)
        assert torch.allclose(after, expected, atol=1e-6)


def test_schedules_at_known_points():
    """Catches a moved peak or drop, a wrong slope, or a schedule that does not end where it should.
    Cyclic as Wong et al.'s MNIST code: 0 up to lr at 2/5 of training, back to 0 at the end (their
    CIFAR-10 code's CyclicLR peaks at 1/2 instead)."""
    lr = 0.2
    cyclic = TrainConfig(lr=lr, schedule="cyclic")
    points = [0.0, 0.1, 0.2, 0.4, 0.55, 0.7, 0.85, 1.0]
    assert [learning_rate(cyclic, p) for p in points] == pytest.approx([0, lr / 4, lr / 2, lr, 0.75 * lr, lr / 2,
                                                                        lr / 4, 0], abs=1e-12)
    grid = [i / 1000 for i in range(1001)]
    assert max(grid, key=lambda p: learning_rate(cyclic, p)) == 0.4
    piecewise = TrainConfig(lr=lr, schedule="piecewise")
    assert [learning_rate(piecewise, p) for p in (0.0, 0.4999, 0.5, 0.7499, 0.75, 1.0)] == pytest.approx(
        [lr, lr, lr / 10, lr / 10, lr / 100, lr / 100])
    cosine = TrainConfig(lr=lr, schedule="cosine")
    assert [learning_rate(cosine, p) for p in (0.0, 0.25, 0.5, 0.75, 1.0)] == pytest.approx(
        [lr, lr * (1 + 0.5 ** 0.5) / 2, lr / 2, lr * (1 - 0.5 ** 0.5) / 2, 0], abs=1e-12)
    constant = TrainConfig(lr=lr, schedule="constant")
    assert {learning_rate(constant, p) for p in grid} == {lr}


@pytest.mark.parametrize("schedule", ["cyclic", "piecewise"])
def test_fit_gives_the_optimizer_the_schedules_rate_at_every_step(digits, make_model, monkeypatch, schedule):
    """Catches the schedule computed but not applied, applied once per epoch, or at the wrong progress
    (each step's rate is the schedule's at (steps done) / (all steps))."""
    from advbook import train

    seen = []
    make = train.make_optimizer

    def recording(cfg, params, device):
        optimizer = make(cfg, params, device)
        step = optimizer.step

        def step_and_record(*args, **kwargs):
            seen.append(optimizer.param_groups[0]["lr"])
            return step(*args, **kwargs)
        optimizer.step = step_and_record
        return optimizer
    monkeypatch.setattr(train, "make_optimizer", recording)
    data = digits.subset(500, 10)
    cfg = TrainConfig(epochs=2, batch_size=100, lr=0.1, schedule=schedule)
    fit(make_model(data), data, cfg, device=CPU, progress=False)
    total = 2 * 5
    assert seen == pytest.approx([learning_rate(cfg, i / total) for i in range(total)])
    assert len(set(seen)) > 2


def test_fit_with_fgsm_rs_is_the_reference_loop_bit_for_bit(digits):
    """Catches any drift of fit + fgsm-rs from Wong et al.'s MNIST algorithm, written out plainly in
    advbook.reference_mnist (a clipped start, alpha, the cyclic rate and its timing, Adam, the loss):
    drawing its random numbers and rounding its learning rate as fit does, the plain loop ends with the
    very same weights."""
    from advbook.reference_mnist import reference_cnn, reference_loop, train_ours

    settings = dict(epochs=5, batch_size=100, lr_max=5e-3, eps=0.3, alpha=0.375, seed=1)
    torch.manual_seed(0)
    ours, reference, other_draws = (reference_cnn(image_size=8) for _ in range(3))
    reference.load_state_dict(ours.state_dict())
    other_draws.load_state_dict(ours.state_dict())
    train_ours(ours, digits, **settings)
    reference_loop(reference, digits, fit_streams=True, fit_arithmetic=True, **settings)
    assert torch.equal(weights(ours), weights(reference))
    reference_loop(other_draws, digits, **settings)  # the reference's own draws: another run
    assert not torch.equal(weights(ours), weights(other_draws))
