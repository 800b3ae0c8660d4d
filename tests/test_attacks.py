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
