import pytest
import torch
import torch.nn.functional as F

from advbook import attacks, evaluate


def batch(dataset, n=128):
    return dataset.x_test[:n].float() / 255, dataset.y_test[:n]


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("loss", ["ce", "cw"])
def test_pgd_stays_in_ball_and_image_range(trained, digits, norm, loss):
    x, y = batch(digits)
    eps = 0.1 if norm == "linf" else 0.5
    x_adv = attacks.pgd(trained, x, y, eps, eps / 4, 10, norm=norm, loss=loss, restarts=2)
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert size.max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1


@pytest.mark.parametrize("random_start", [False, True])
def test_fgsm_stays_in_ball_and_image_range(trained, digits, random_start):
    x, y = batch(digits)
    x_adv = attacks.fgsm(trained, x, y, 0.1, alpha=0.125, random_start=random_start)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert not torch.equal(x_adv, x)


def test_pgd_loss_at_least_fgsm_loss(trained, digits):
    x, y = batch(digits, 256)
    torch.manual_seed(0)
    with torch.no_grad():
        fgsm_loss = F.cross_entropy(trained(attacks.fgsm(trained, x, y, 0.1)), y)
    # the last iterate: keep_best stops at the first fooling iterate, not at the highest loss
    pgd_x = attacks.pgd(trained, x, y, 0.1, 0.025, 20, keep_best=False)
    with torch.no_grad():
        pgd_loss = F.cross_entropy(trained(pgd_x), y)
    assert pgd_loss >= fgsm_loss


def test_more_steps_never_raise_robust_accuracy(trained, digits):
    x, y = digits.x_test[:200], digits.y_test[:200]
    accs = [evaluate.robust_accuracy(trained, x, y, attacks.pgd, device=torch.device("cpu"), seed=3,
                                     eps=0.08, alpha=0.01, steps=k) for k in (0, 1, 2, 5, 10, 20, 40)]
    assert all(b <= a for a, b in zip(accs, accs[1:])), accs
    assert accs[-1] < accs[0]  # and the attack does something


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_attacks_leave_mode_and_parameter_gradients_alone(digits, make_model, mode):
    model = make_model(digits)
    model.train(mode == "train")
    x, y = batch(digits, 32)
    attacks.fgsm(model, x, y, 0.1)
    attacks.pgd(model, x, y, 0.1, 0.02, 3)
    assert model.training == (mode == "train")
    assert all(p.grad is None for p in model.parameters())


def test_negative_eps_is_refused(trained, digits):
    x, y = batch(digits, 8)
    with pytest.raises(ValueError, match="restarts"):
        attacks.pgd(trained, x, y, 0.1, 0.01, 3, restarts=2, keep_best=False)
    with pytest.raises(ValueError, match="eps"):
        attacks.pgd(trained, x, y, -0.1, 0.01, 3)
    with pytest.raises(ValueError, match="eps"):
        attacks.fgsm(trained, x, y, -0.1)


def test_pgd_matches_torchattacks_without_random_start(trained, digits):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = batch(digits)
    ours = attacks.pgd(trained, x, y, 0.1, 0.02, 10, random_start=False, keep_best=False)
    theirs = torchattacks.PGD(trained, eps=0.1, alpha=0.02, steps=10, random_start=False)(x, y)
    assert trained.training is False
    # identical algorithm; allow a rare sign flip where a gradient entry is ~0
    assert (ours - theirs).abs().gt(1e-5).float().mean() < 1e-3


def test_fgsm_matches_torchattacks(trained, digits):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = batch(digits)
    ours = attacks.fgsm(trained, x, y, 0.1)
    theirs = torchattacks.FGSM(trained, eps=0.1)(x, y)
    assert (ours - theirs).abs().gt(1e-5).float().mean() < 1e-3


def test_margin_loss_sign_matches_misclassification():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    y = torch.tensor([0, 0])
    margin = attacks.margin_loss(logits, y)
    assert margin.tolist() == [-2.0, 2.0]


class InputRecorder(torch.nn.Module):
    """A linear classifier that keeps every input it is called with."""

    def __init__(self, shape, classes=10):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(int(torch.tensor(shape).prod()), classes)
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.linear(x.flatten(1))


def test_fgsm_rs_takes_its_gradient_at_the_unclipped_start():
    """Catches FGSM-RS's start clipped into [0, 1] before the gradient (Wong et al.'s MNIST code does not
    clip it): on saturated pixels, 0 and 1, the clipped start keeps only half of its randomness."""
    eps = 0.3
    x = torch.cat([torch.zeros(64, 1, 8, 8), torch.ones(64, 1, 8, 8)])
    y = torch.arange(128) % 10
    model = InputRecorder(x.shape[1:])
    torch.manual_seed(0)
    attacks.fgsm(model, x, y, eps, alpha=0.375, random_start=True)
    (seen,) = model.inputs
    start = seen - x  # the random start the gradient was taken at
    assert start.abs().max() <= eps
    assert (seen[:64] < 0).float().mean() > 0.45 and (seen[64:] > 1).float().mean() > 0.45
    assert start.std().item() == pytest.approx(eps / 3 ** 0.5, rel=0.05)  # U(-eps, eps) untouched
    clipped = InputRecorder(x.shape[1:])
    attacks.fgsm(clipped, x, y, eps, alpha=0.375, random_start=True, clip_start=True)
    assert clipped.inputs[0].min() >= 0 and clipped.inputs[0].max() <= 1  # the CIFAR-10 code's variant, by name


@pytest.mark.parametrize("alpha", [0.02, 0.05])
def test_fgsm_rs_steps_by_alpha_from_its_start(alpha):
    """Catches FGSM-RS's alpha not reaching the step (eps used instead, or a scaled alpha): from the
    start the gradient was taken at, the image moves by alpha * sign(grad), then into the eps-ball."""
    eps = 0.1
    x = torch.rand(64, 1, 8, 8) * 0.6 + 0.2  # away from 0 and 1: no image-range clipping
    y = torch.arange(64) % 10
    model = InputRecorder(x.shape[1:])
    x_adv = attacks.fgsm(model, x, y, eps, alpha=alpha, random_start=True)
    seen = model.inputs[0].requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model.linear(seen.flatten(1)), y, reduction="sum"), seen)
    seen = seen.detach()
    expected = x + (seen - x + alpha * grad.sign()).clamp(-eps, eps)
    assert torch.allclose(x_adv, expected, atol=1e-6)
    inside = (seen - x).abs() < eps - alpha  # where the eps-ball does not cut the step
    assert inside.float().mean() > 0.3
    assert torch.allclose((x_adv - seen).abs()[inside], torch.full_like(x_adv[inside], alpha), atol=1e-6)


def test_autoattack_never_leaves_robust_an_image_that_apgd_ce_fools(trained, digits):
    """Catches AutoAttack's APGD-CE component drifting from our `apgd` spec (other steps, seed, loss,
    or another batch): its result is APGD-CE-100's on every image that one fools, so AutoAttack's
    robust accuracy can never be above APGD-CE's on the same images."""
    pytest.importorskip("torchattacks")
    x, y = batch(digits, 100)
    eps = 0.06
    alone = attacks.apgd(trained, x, y, eps, steps=100)
    # the later components cut short: this test is about the first one and the merging
    combined = attacks.autoattack(trained, x, y, eps, apgdt_steps=5, fab_steps=5, square_queries=20)
    with torch.no_grad():
        fooled_alone = trained(alone).argmax(1) != y
        fooled_combined = trained(combined).argmax(1) != y
    assert 0 < fooled_alone.sum() < len(y)  # else the test shows nothing
    assert torch.equal(combined[fooled_alone], alone[fooled_alone])
    assert fooled_combined[fooled_alone].all()
    assert (combined - x).abs().max() <= eps + 1e-6 and combined.min() >= 0 and combined.max() <= 1
    # and through an evaluation spec (the same batch of 100): never above APGD-CE's robust accuracy
    with torch.no_grad():
        apgd_accuracy = ((trained(x).argmax(1) == y) & ~fooled_alone).sum().item() / len(y)
    spec = {"name": "aa", "attack": "autoattack", "n": 100,
            "params": {"eps": eps, "apgdt_steps": 5, "fab_steps": 5, "square_queries": 20}}
    out = evaluate.evaluate_spec(trained, digits, spec, device=torch.device("cpu"))
    assert out["accuracy"] <= apgd_accuracy
    assert out["attack_label"] == "AutoAttack standard (APGD-CE 100, APGD-T 5x9, FAB-T 5x9, Square 20, p_init 0.8)"


class LabelInPixel(torch.nn.Module):
    """Classifies an image by its pixel (0, 0) (class c at c / 10); pixel (0, 1) holds the image's id."""

    def __init__(self, classes=10):
        super().__init__()
        self.classes = classes
        self.scale = torch.nn.Parameter(torch.ones(()))  # torchattacks reads the device off a parameter

    def forward(self, x):
        return F.one_hot((x[:, 0, 0, 0] * 10).round().long().clamp(0, self.classes - 1), self.classes).float() * self.scale


def _fake_components(monkeypatch, fooled_by):
    """Replace AutoAttack's components by fakes that record what they were built with and given, and
    fool the images whose id is in `fooled_by[name]` (by moving pixel (0, 0) to another class)."""
    import torchattacks

    from advbook.attacks import external
    log = []

    def fool(name, x):
        ids = (x[:, 0, 0, 1] * 100).round().long()
        out = x.clone()
        hit = torch.tensor([int(i) in fooled_by.get(name, ()) for i in ids], dtype=torch.bool)
        out[hit, 0, 0, 0] = (out[hit, 0, 0, 0] + 0.1) % 1.0
        log.append((name, sorted(ids.tolist())))
        return out

    def fake_apgd(model, x, y, eps, **kwargs):
        log.append(("apgd kwargs", kwargs))
        return fool(f"apgd-{kwargs['loss']}", x)

    def fake(name):
        class Fake:
            def __init__(self, model, **kwargs):
                log.append((f"{name} kwargs", kwargs))
                self.n_target_classes = kwargs.get("n_classes", 10) - 1

            def __call__(self, x, y):
                log.append((f"{name} targets", self.n_target_classes))
                return fool(name, x)
        return Fake

    monkeypatch.setattr(external, "apgd", fake_apgd)
    for name in ("APGDT", "FAB", "Square"):
        monkeypatch.setattr(torchattacks, name, fake(name))
    return log


def _id_images(n, classes=10):
    x = torch.full((n, 1, 4, 4), 0.5)
    y = torch.arange(n) % classes
    x[:, 0, 0, 0] = y / 10
    x[:, 0, 0, 1] = torch.arange(n) / 100
    return x, y


def test_autoattack_attacks_only_the_images_still_robust_with_the_published_parameters(monkeypatch):
    """Catches a component attacking every image (or the wrong ones), a result not merged back, and the
    published parameters (APGD-CE 100, APGD-T 100 x 9 targets, FAB-T 100 x 9, Square 5000 with p_init 0.8)
    not reaching the components."""
    pytest.importorskip("torchattacks")
    log = _fake_components(monkeypatch, {"apgd-ce": {0, 1, 2}, "APGDT": {3}, "FAB": {4, 5}, "Square": {6}})
    x, y = _id_images(10)
    model = LabelInPixel()
    x_adv = attacks.autoattack(model, x, y, 0.3)
    calls = [entry for entry in log if not entry[0].endswith(("kwargs", "targets"))]
    assert calls == [("apgd-ce", list(range(10))), ("APGDT", list(range(3, 10))), ("FAB", list(range(4, 10))),
                     ("Square", list(range(6, 10)))]
    fooled = model(x_adv).argmax(1) != y
    assert fooled.tolist() == [True] * 7 + [False] * 3
    assert torch.equal(x_adv[7:], x[7:])
    kwargs = {name: value for name, value in log if name.endswith("kwargs")}
    assert kwargs["apgd kwargs"] == {"steps": 100, "loss": "ce", "norm": "Linf", "eot": 1}
    assert kwargs["APGDT kwargs"]["steps"] == 100 and kwargs["APGDT kwargs"]["n_restarts"] == 1
    assert kwargs["FAB kwargs"]["steps"] == 100 and kwargs["FAB kwargs"]["multi_targeted"] is True
    assert kwargs["Square kwargs"]["n_queries"] == 5000 and kwargs["Square kwargs"]["p_init"] == 0.8
    assert ("APGDT targets", 9) in log and ("FAB targets", 9) in log


def test_autoattack_rand_is_apgd_ce_then_dlr_with_eot_20(monkeypatch):
    pytest.importorskip("torchattacks")
    log = _fake_components(monkeypatch, {"apgd-ce": {0}})
    x, y = _id_images(4)
    attacks.autoattack(LabelInPixel(), x, y, 0.3, version="rand")
    assert [entry for entry in log if entry[0] == "apgd kwargs"] == [
        ("apgd kwargs", {"steps": 100, "loss": "ce", "norm": "Linf", "eot": 20}),
        ("apgd kwargs", {"steps": 100, "loss": "dlr", "norm": "Linf", "eot": 20})]
    assert ("apgd-dlr", [1, 2, 3]) in log
    assert attacks.autoattack_label(version="rand") == "AutoAttack rand (APGD-CE 100, APGD-DLR 100, EOT 20)"


def test_autoattack_reads_the_number_of_classes_from_the_model(monkeypatch):
    """Catches a fixed n_classes = 10 (the old special case in evaluate), targets beyond the classes, or
    `targets` not reaching APGD-T and FAB-T."""
    pytest.importorskip("torchattacks")
    log = _fake_components(monkeypatch, {})
    x, y = _id_images(5, classes=5)
    attacks.autoattack(LabelInPixel(classes=5), x, y, 0.3, targets=4)
    assert dict((k, v) for k, v in log if k.endswith("kwargs"))["APGDT kwargs"]["n_classes"] == 5
    log.clear()
    x, y = _id_images(10)
    attacks.autoattack(LabelInPixel(), x, y, 0.3, targets=3)  # fewer targets than the other classes
    assert ("APGDT targets", 3) in log and ("FAB targets", 3) in log
    with pytest.raises(ValueError, match="targets must be between 1 and 4"):
        attacks.autoattack(LabelInPixel(classes=5), x, y, 0.3)
    with pytest.raises(ValueError, match="version"):
        attacks.autoattack(LabelInPixel(), x, y, 0.3, version="plus")


def test_autoattack_label_names_its_parameters():
    assert attacks.autoattack_label() == ("AutoAttack standard (APGD-CE 100, APGD-T 100x9, FAB-T 100x9, "
                                          "Square 5000, p_init 0.8)")
    assert attacks.autoattack_label(apgd_steps=20, targets=3, eps=0.3, n=10, norm="L2") == (
        "AutoAttack standard L2 (APGD-CE 20, APGD-T 100x3, FAB-T 100x3, Square 5000, p_init 0.8)")
