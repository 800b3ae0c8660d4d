"""Each mechanism's defining equation, checked against a hand-written reference or an exact
count, so that a plausible bug in it makes a test fail.

Every test is deterministic (fixed seeds, fixed generators) and, where it measures something
random, its tolerance is derived from the sample size, so it does not pass by a seed's luck.
"""
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advbook import attacks, defenses, evaluate, models
from advbook.train import TrainConfig, fit

CPU = torch.device("cpu")
CE = attacks.LOSSES["ce"]


def floats(dataset, n, split="test"):
    x = getattr(dataset, f"x_{split}")[:n].float() / 255
    return x, getattr(dataset, f"y_{split}")[:n]


def record_modes(model):
    """A forward pre-hook on every module of `model` recording `module.training` at each call."""
    seen = []
    handles = [m.register_forward_pre_hook(lambda mod, args: seen.append(mod.training)) for m in model.modules()]
    return seen, handles


def bn_buffers(model):
    return [b.clone() for name, b in model.named_buffers() if "running" in name]


# ----------------------------------------------------------------------------------------
# 1. Evaluation (and the adaptive perturbation pass) runs in eval mode
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("start_training", [True, False])
def test_evaluation_runs_every_forward_in_eval_mode_and_restores_the_mode(digits, make_model, start_training):
    """Catches an evaluation (clean or attacked, direct or by spec) that forgets model.eval(), sets it on only
    part of the model, or does not put the caller's mode back."""
    model = make_model(digits, width=4).train(start_training)
    before = bn_buffers(model)
    seen, handles = record_modes(model)
    try:
        x, y = digits.x_test[:40], digits.y_test[:40]
        evaluate.robust_accuracy(model, x, y, attacks.pgd, device=CPU, eps=0.1, alpha=0.025, steps=2)
        evaluate.accuracy(model, x, y, device=CPU)
        for spec in ({"name": "pgd", "attack": "pgd", "n": 40, "params": {"eps": 0.1, "alpha": 0.025, "steps": 2}},
                     {"name": "fgsm", "attack": "fgsm", "n": 40, "params": {"eps": 0.1}},
                     {"name": "clean", "attack": "clean", "n": 40}):
            evaluate.evaluate_spec(model, digits, spec, device=CPU)
    finally:
        for h in handles:
            h.remove()
    assert len(seen) > 0 and not any(seen), f"{sum(seen)} of {len(seen)} module calls ran in train mode"
    assert all(m.training == start_training for m in model.modules())
    # eval-mode batch norm never updates its running statistics
    assert all(torch.equal(a, b) for a, b in zip(before, bn_buffers(model)))


def test_evaluation_restores_each_submodules_own_mode(digits, make_model):
    """Catches an evaluation that restores the mode with a blanket model.train(flag) instead of putting back
    each submodule's own mode (e.g. batch norms frozen in eval mode while the rest trains)."""
    model = make_model(digits, width=4).train()
    frozen = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in frozen:
        m.eval()
    evaluate.accuracy(model, digits.x_test[:20], digits.y_test[:20], device=CPU)
    assert model.training and not any(m.training for m in frozen)


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_adaptive_perturbation_pass_runs_in_eval_mode(digits, make_model, attack):
    """Catches Algorithm 1's epoch hook computing its sampling gradients and perturbations in train mode
    (batch statistics of the whole training set, running statistics updated by the pass)."""
    model = make_model(digits, width=4).train()
    before = bn_buffers(model)
    hook = defenses.epoch_hook(selection="gradient-norm", n=20, eps=0.1, attack=attack, steps=2)
    seen, handles = record_modes(model)
    try:
        replaced = hook(model, digits.x_train[:100], digits.y_train[:100], torch.Generator().manual_seed(0))
    finally:
        for h in handles:
            h.remove()
    assert 0 < replaced.count <= 20
    assert len(seen) > 0 and not any(seen)
    assert all(torch.equal(a, b) for a, b in zip(before, bn_buffers(model)))


def test_fit_perturbs_in_eval_mode_and_trains_in_train_mode(digits, make_model):
    """Catches fit leaving the model in the hook's eval mode for the training steps, or the hook running in
    train mode (the perturbation pass sees all 96 training images at once, a training step 32)."""
    small = digits.subset(n_train=96)
    model = make_model(digits, width=4)
    calls = []
    handle = model.register_forward_pre_hook(lambda mod, args: calls.append((len(args[0]), mod.training)))
    try:
        fit(model, small, TrainConfig(epochs=1, batch_size=32, epoch_perturbation={"selection": "gradient-norm",
                                                                                    "n": 10, "eps": 0.1}),
            device=CPU, progress=False)
    finally:
        handle.remove()
    perturbation = [training for size, training in calls if size == 96]
    training_steps = [training for size, training in calls if size == 32]
    assert len(perturbation) == 1 and not any(perturbation)
    assert len(training_steps) == 3 and all(training_steps)


# ----------------------------------------------------------------------------------------
# 2. PGD steps: L2 normalised per sample; both norms agree with torchattacks
# ----------------------------------------------------------------------------------------

def test_l2_pgd_matches_torchattacks_pgdl2(trained, digits):
    """Catches an L2 step normalised over the whole batch (or not at all), or a projection that differs
    from Madry's per-sample one, by comparing with torchattacks' PGDL2 (same algorithm, no random start)."""
    pytest.importorskip("torchattacks")
    x, y = floats(digits, 128)
    ours = attacks.pgd(trained, x, y, 1.0, 0.2, 10, norm="l2", random_start=False, keep_best=False)
    theirs = attacks.torchattacks_pgd(trained, x, y, 1.0, 0.2, 10, norm="l2", random_start=False)
    assert not trained.training
    moved = (ours - x).flatten(1).norm(dim=1)
    assert moved.min() > 0.5 and moved.max() <= 1.0 + 1e-5  # the attack went far into the ball
    assert (ours - theirs).abs().max() < 1e-4


def test_linf_pgd_matches_torchattacks_pgd(trained, digits):
    """Catches an L-inf step that is not alpha * sign(grad) followed by the eps clip and the [0, 1] clip,
    by comparing with torchattacks' PGD without random start (the wrapper's `norm` mapping included)."""
    pytest.importorskip("torchattacks")
    x, y = floats(digits, 128)
    ours = attacks.pgd(trained, x, y, 0.1, 0.02, 10, norm="linf", random_start=False, keep_best=False)
    theirs = attacks.torchattacks_pgd(trained, x, y, 0.1, 0.02, 10, norm="linf", random_start=False)
    assert (ours - x).abs().amax() > 0.09
    # the same algorithm; allow a rare sign flip where a gradient entry is ~0
    assert (ours - theirs).abs().gt(1e-5).float().mean() < 1e-3


def _unit_sign_vectors(n, dims, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (n, dims), generator=g).double() * 2 - 1) / math.sqrt(dims)


def test_l2_step_and_project_is_per_sample():
    """Catches the L2 step's gradient normalisation or the ball projection computed over the batch (or a
    wrong axis): samples with gradient norms 1e-3 .. 1e4 must each move by exactly alpha, then be projected
    to their own eps-ball."""
    dims, eps, alpha = 64, 1.0, 0.1
    u = _unit_sign_vectors(4, dims, 0)  # unit vectors, every entry +-1/8
    v = _unit_sign_vectors(4, dims, 1)
    grad = u * torch.tensor([1e-3, 1.0, 10.0, 1e4], dtype=torch.float64)[:, None]
    delta = torch.zeros(4, dims, dtype=torch.float64)
    delta[2] = 0.95 * v[2]   # another direction: stays inside the ball after the step (if u, v differ)
    delta[3] = 0.95 * u[3]   # the gradient's direction: 1.05 after the step, projected back to 1.0
    x = torch.full((4, dims), 0.5, dtype=torch.float64)  # far from the [0, 1] bounds

    expected = torch.empty_like(delta)
    for i in range(4):
        d = delta[i] + alpha * grad[i] / grad[i].norm()
        if d.norm() > eps:
            d = d * (eps / d.norm())
        expected[i] = d
    shape = (4, 1, 8, 8)
    got = attacks.step_and_project(delta.view(shape).float(), grad.view(shape).float(), x.view(shape).float(),
                                   eps, alpha, "l2").view(4, dims).double()
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(got[:2].norm(dim=1), torch.tensor([alpha, alpha], dtype=torch.float64), atol=1e-6)
    assert abs(got[3].norm() - eps) < 1e-6 and got[2].norm() < eps


def test_linf_step_and_project_and_the_image_box():
    """Catches an L-inf step that is not clip_eps(delta + alpha sign g) followed by x + delta kept in [0, 1]."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 4, 4, generator=g)
    x[0] = 0.99  # near the top of the image range
    x[1] = 0.01  # near the bottom
    grad = torch.randn(3, 1, 4, 4, generator=g) * torch.tensor([1e-4, 1.0, 1e3]).view(3, 1, 1, 1)
    delta = (torch.rand(3, 1, 4, 4, generator=g) * 2 - 1) * 0.1
    eps, alpha = 0.1, 0.04
    expected = (x + (delta + alpha * grad.sign()).clamp(-eps, eps)).clamp(0, 1) - x
    got = attacks.step_and_project(delta, grad, x, eps, alpha, "linf")
    assert torch.allclose(got, expected, atol=1e-7)


# ----------------------------------------------------------------------------------------
# 3. Robust accuracy requires clean correctness
# ----------------------------------------------------------------------------------------

class MeanBrightness(nn.Module):
    """Two classes: 1 if the mean pixel is above 0.5, else 0 (deterministic, no parameters)."""

    def forward(self, x):
        m = x.flatten(1).mean(1)
        return torch.stack([0.5 - m, m - 0.5], dim=1)


def _four_cases():
    bright, dark = torch.full((1, 2, 2), 255, dtype=torch.uint8), torch.zeros((1, 2, 2), dtype=torch.uint8)
    # all labelled 1: A, B clean-correct; C, D clean-wrong
    x_u8 = torch.stack([bright, bright, dark, dark])
    y = torch.ones(4, dtype=torch.long)
    # the "attack" keeps A correct, fools B, makes C correct (!) and leaves D wrong
    plan = torch.stack([bright, dark, bright, dark]).float() / 255

    def attack(model, x, y):
        return plan.clone()

    return x_u8, y, attack


def test_robust_accuracy_requires_clean_correctness(digits, monkeypatch):
    """Catches robust accuracy counting an image that is wrong clean but right after the attack (the
    `& clean` condition dropped, or clean OR adversarial): only A of the four cases counts."""
    model = MeanBrightness()
    x_u8, y, attack = _four_cases()
    assert evaluate.accuracy(model, x_u8, y, device=CPU) == 0.5
    assert evaluate.robust_accuracy(model, x_u8, y, attack, device=CPU) == 0.25
    assert evaluate.correct_per_draw(model, x_u8, y, attack, device=CPU, draws=3) == [0.25] * 3
    # the same through an attack spec
    monkeypatch.setitem(attacks.ATTACKS, "plan", attack)
    dataset = dataclasses.replace(digits, x_test=x_u8, y_test=y, classes=(0, 1))
    out = evaluate.evaluate_spec(model, dataset, {"name": "plan", "attack": "plan"}, device=CPU)
    assert out["accuracy"] == 0.25 and out["n"] == 4


# ----------------------------------------------------------------------------------------
# 4. Kamath et al.'s sampler: p_i proportional to ||g_i||_2 ** power
# ----------------------------------------------------------------------------------------

def _known_gradients():
    """Per-sample L2 norms 1, 2, 3, 4 and 0 (L1 norms 1, 4, 3, 8, 0: an L1 bug shows)."""
    grads = torch.zeros(5, 1, 2, 2)
    grads[0].view(-1)[0] = 1.0
    grads[1] = 1.0
    grads[2].view(-1)[0] = -3.0
    grads[3] = -2.0
    return grads


@pytest.mark.parametrize("power", [1, 2])
def test_adaptive_sampling_frequencies_follow_the_power(power):
    """Catches the sampler ignoring `power`, using another norm (L1, L-inf, over the batch), or drawing a
    zero-gradient sample: single draws must occur with frequency ||g_i||^power / sum_j ||g_j||^power."""
    grads = _known_gradients()
    norms = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0], dtype=torch.float64)
    p = norms ** power / (norms ** power).sum()
    gen = torch.Generator().manual_seed(0)
    trials = 10_000
    counts = torch.zeros(5, dtype=torch.float64)
    for _ in range(trials):
        chosen = defenses.adaptive_selection(grads, 1, power, True, gen)
        assert len(chosen) == 1
        counts[chosen] += 1
    freq = counts / trials
    se = (p * (1 - p) / trials).sqrt()
    # 5 binomial standard errors (about 0.02); the other power's or the L1 norm's p differ by >= 0.037
    assert ((freq - p).abs() <= 5 * se + 1e-12).all(), (freq.tolist(), p.tolist())
    assert counts[4] == 0


def test_adaptive_sampling_without_replacement_gives_exactly_n_distinct():
    """Catches a draw without replacement that repeats indices or returns fewer or more than n of them."""
    grads = _known_gradients()[:4]
    for n in (1, 3, 4):
        chosen = defenses.adaptive_selection(grads, n, 2, False, torch.Generator().manual_seed(n))
        assert len(chosen) == n and len(chosen.unique()) == n
    assert defenses.adaptive_selection(grads, 4, 1, False, torch.Generator().manual_seed(0)).tolist() == [0, 1, 2, 3]
    big = torch.randn(50, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    assert len(defenses.adaptive_selection(big, 30, 1, False, torch.Generator().manual_seed(0))) == 30


# ----------------------------------------------------------------------------------------
# 5. The mixture trainer's single step
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("als_alpha", [0.0, 0.2])
@pytest.mark.parametrize("eps,alpha", [(0.1, 0.05), (0.03, 0.05)])
def test_mixture_one_step_equals_the_hand_computation(digits, make_model, eps, alpha, als_alpha):
    """Catches a random start, a best-iterate (instead of last) example, a loss that sums the clean and
    adversarial means instead of one mean over both, or ALS mass put on the wrong class."""
    model = make_model(digits, width=4).train()
    x, y = floats(digits, 32, "train")
    # the hand computation, in the mode the defense runs in (train)
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xg), y, reduction="sum"), xg)
    x_adv = (x + (alpha * g.sign()).clamp(-eps, eps)).clamp(0, 1)
    with torch.no_grad():
        clean, adv = model(x), model(x_adv)
    logits, labels = torch.cat([clean, adv]), torch.cat([y, y])
    if als_alpha > 0:
        others = logits.clone()
        others[torch.arange(len(labels)), labels] = float("inf")
        targets = torch.zeros_like(logits)
        targets[torch.arange(len(labels)), labels] = 1 - als_alpha
        targets[torch.arange(len(labels)), others.argmin(1)] = als_alpha
        expected = -(targets * logits.log_softmax(1)).sum(1).mean()
    else:
        expected = F.cross_entropy(logits, labels)

    inputs = []
    handle = model.register_forward_pre_hook(lambda mod, args: inputs.append(args[0].detach().clone()))
    try:
        loss, returned = defenses.mixture(model, x, y, adversarial=True, als_alpha=als_alpha, eps=eps, alpha=alpha,
                                          steps=1)
    finally:
        handle.remove()
    assert torch.allclose(inputs[-1], x_adv, atol=1e-6)  # the last forward is the adversarial batch
    assert torch.allclose(loss.detach(), expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(returned.detach(), clean, atol=1e-6)


# ----------------------------------------------------------------------------------------
# 6. SAT: ReLU forward, sigmoid(sat_alpha * x) backward
# ----------------------------------------------------------------------------------------

def test_smooth_grad_relu_gradient_is_sigmoid_of_alpha_x():
    """Catches an ignored alpha (a hard-coded 10), or sigmoid(x / alpha) instead of sigmoid(alpha x)."""
    for a in (0.5, 3.0):
        x = torch.linspace(-3, 3, 61, requires_grad=True)
        out = models.SmoothGradReLU(alpha=a)(x)
        assert torch.equal(out, torch.relu(x))
        out.backward(torch.linspace(1, 2, 61))
        assert torch.allclose(x.grad, torch.linspace(1, 2, 61) * torch.sigmoid(a * x.detach()), atol=1e-6)


class _ReferenceSAT(nn.Module):
    """relu(x) forward, d/dx softplus(a x) / a = sigmoid(a x) backward, by the stop-gradient trick."""

    def __init__(self, a):
        super().__init__()
        self.a = a

    def forward(self, x):
        smooth = models.parametric_softplus(x, self.a)
        return torch.relu(x).detach() + (smooth - smooth.detach())


def _input_gradient(model, x, y):
    return attacks.input_gradient(model, x, y, CE)[2]


def test_sat_alpha_is_honoured_by_build(digits):
    """Catches `build(..., sat_alpha=a)` dropping a (every model getting alpha 10): two alphas give identical
    outputs but different input gradients, each equal to a hand-written relu/sigmoid(a x) reference."""
    x, y = floats(digits, 16)
    nets = {}
    for a in (1.0, 20.0):
        torch.manual_seed(0)
        nets[a] = models.build("small-cnn", 10, 1, width=4, activation="sat", sat_alpha=a).eval()
        assert all(m.alpha == a for m in nets[a].modules() if isinstance(m, models.SmoothGradReLU))
    nets[20.0].load_state_dict(nets[1.0].state_dict())
    with torch.no_grad():
        assert torch.equal(nets[1.0](x), nets[20.0](x))
    grads = {a: _input_gradient(net, x, y) for a, net in nets.items()}
    assert not torch.allclose(grads[1.0], grads[20.0], rtol=0.05, atol=1e-4 * grads[1.0].abs().max())
    for a, net in nets.items():
        reference = models.build("small-cnn", 10, 1, width=4).eval()
        reference.load_state_dict(net.state_dict())
        assert models.replace_relu(reference, lambda: _ReferenceSAT(a)) == 3
        assert torch.allclose(grads[a], _input_gradient(reference, x, y), rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------------------
# 7. PreAct ResNet block against a hand-written forward
# ----------------------------------------------------------------------------------------

def _randomize_bn(bn, g):
    with torch.no_grad():
        bn.weight.copy_(torch.rand(bn.weight.shape, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(bn.bias.shape, generator=g))
        bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g))
        bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


@pytest.mark.parametrize("in_planes,planes,stride", [(4, 8, 2), (4, 4, 1)])
def test_preact_block_matches_a_hand_written_forward(in_planes, planes, stride):
    """Catches a PreAct block whose projection shortcut reads the raw input (He et al. 2016 use the
    pre-activated one), whose identity shortcut reads the pre-activated input (it must be x), or whose
    BN-ReLU-conv order, stride placement or residual sum is wrong."""
    torch.manual_seed(0)
    block = models.PreActBlock(in_planes, planes, stride, nn.BatchNorm2d)
    g = torch.Generator().manual_seed(1)
    _randomize_bn(block.bn1, g)
    _randomize_bn(block.bn2, g)
    block.eval()
    x = torch.randn(3, in_planes, 8, 8, generator=g)

    pre = F.relu(_bn(x, block.bn1))
    if stride != 1 or in_planes != planes:
        shortcut = F.conv2d(pre, block.shortcut.weight, stride=stride)
    else:
        assert block.shortcut is None or not any(p.numel() for p in block.shortcut.parameters())
        shortcut = x
    out = F.conv2d(pre, block.conv1.weight, stride=stride, padding=1)
    out = F.conv2d(F.relu(_bn(out, block.bn2)), block.conv2.weight, stride=1, padding=1)
    expected = out + shortcut
    with torch.no_grad():
        got = block(x)
    assert got.shape == (3, planes, 8 // stride, 8 // stride)
    assert torch.allclose(got, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(pre[:, :planes], x[:, :planes], atol=0.1)  # the two shortcut readings differ


# ----------------------------------------------------------------------------------------
# 8. bf16 autocast against fp32, the same fp32-trained weights
# ----------------------------------------------------------------------------------------

class Bf16Forward(nn.Module):
    """The wrapped model's forward under CPU bf16 autocast, logits returned as fp32."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.model(x).float()


def test_bf16_forward_gives_the_fp32_robust_accuracy_within_sampling_error(trained, digits):
    """Catches gross bf16 breakage of the attack or the predictions under autocast (NaN or vanishing input
    gradients, many flipped argmaxes): with the same fp32-trained weights, the PGD robust accuracy averaged
    over 3 attack seeds must be within 3 standard errors (of a difference of two proportions on n images)
    of fp32's, and the clean predictions must agree on at least 97% of the images."""
    n = 300
    x, y = digits.x_test[:n], digits.y_test[:n]
    bf16 = Bf16Forward(trained).eval()  # a new module starts in train mode: evaluation would restore that
    with torch.no_grad():
        xf = x.float() / 255
        agree = (trained(xf).argmax(1) == bf16(xf).argmax(1)).float().mean().item()
    assert agree >= 0.97  # the same weights: bf16 may flip only near-tied predictions

    def mean_robust(model):
        return sum(evaluate.robust_accuracy(model, x, y, attacks.pgd, device=CPU, seed=s, eps=0.1, alpha=0.025,
                                            steps=5) for s in range(3)) / 3

    fp32, low = mean_robust(trained), mean_robust(bf16)
    assert 0.1 < fp32 < 0.9  # an attack that neither fails nor always wins: the comparison means something
    p = (fp32 + low) / 2
    se = math.sqrt(2 * p * (1 - p) / n)  # images are shared across seeds: n, not 3n, observations
    assert abs(fp32 - low) <= 3 * se, (fp32, low, se)
    assert not trained.training and not bf16.training


# ----------------------------------------------------------------------------------------
# 9. EOT and randomized models
# ----------------------------------------------------------------------------------------

class NoisyNet(nn.Module):
    """Adds fresh Gaussian noise to its input in every forward (eval mode included) while stochastic."""

    def __init__(self, sigma=0.3):
        super().__init__()
        self.stochastic = True
        self.sigma = sigma
        self.fc1, self.fc2 = nn.Linear(16, 12), nn.Linear(12, 3)

    def forward(self, x):
        if self.stochastic:
            x = x + self.sigma * torch.randn_like(x)
        return self.fc2(torch.tanh(self.fc1(x.flatten(1))))


def _noisy_batch(n=8):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_eot_gradient_is_the_mean_of_single_draw_gradients():
    """Catches EOT that reuses one noise draw, returns only the last draw, or divides by the wrong count."""
    torch.manual_seed(0)
    model = NoisyNet().eval()
    x, y = _noisy_batch()
    m = 5
    torch.manual_seed(1)
    logits, losses, grad = attacks.input_gradient(model, x, y, CE, eot=m)
    torch.manual_seed(1)
    singles = [attacks.input_gradient(model, x, y, CE, eot=1) for _ in range(m)]
    assert torch.allclose(grad, torch.stack([s[2] for s in singles]).mean(0), atol=1e-6)
    assert torch.allclose(logits, torch.stack([s[0] for s in singles]).mean(0), atol=1e-6)
    assert torch.allclose(losses, torch.stack([s[1] for s in singles]).mean(0), atol=1e-6)
    # the draws do differ, so the average is not trivially one draw
    assert (singles[0][2] - singles[1][2]).abs().max() > 1e-3


def test_noise_off_is_deterministic_inside_and_restores_after():
    """Catches noise_off leaving the noise on, or leaving it off after the block (even after an error)."""
    torch.manual_seed(0)
    model = NoisyNet().eval()
    x, _ = _noisy_batch()
    assert models.is_randomized(model)
    with models.noise_off(model):
        assert not model.stochastic and not models.is_randomized(model)
        assert torch.equal(model(x), model(x))
    assert model.stochastic and not torch.equal(model(x), model(x))
    with pytest.raises(RuntimeError):
        with models.noise_off(model):
            raise RuntimeError("boom")
    assert model.stochastic


def test_correct_per_draw_gives_one_fresh_value_per_draw():
    """Catches R draws that reuse one forward pass (identical values) or return the wrong count, and an
    attacker_noise=False attacker that still sees (or leaves off) the noise."""
    torch.manual_seed(0)
    model = NoisyNet(sigma=3.0).eval()
    g = torch.Generator().manual_seed(0)
    x_u8 = torch.randint(0, 256, (200, 1, 4, 4), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 3, (200,), generator=g)
    values = evaluate.correct_per_draw(model, x_u8, y, device=CPU, draws=4)
    assert len(values) == 4 and all(0 <= v <= 1 for v in values)
    assert len(set(values)) > 1  # heavy noise: four fresh draws of 200 predictions do not all agree
    assert evaluate.correct_per_draw(model, x_u8, y, device=CPU, draws=4) == values  # seeded
    assert evaluate.accuracy(model, x_u8, y, device=CPU, draws=4) == pytest.approx(sum(values) / 4)
    with models.noise_off(model):
        assert len(set(evaluate.correct_per_draw(model, x_u8, y, device=CPU, draws=3))) == 1

    seen = []

    def spy(model_, x, y_):
        seen.append(models.is_randomized(model_))
        return x

    out = evaluate.correct_per_draw(model, x_u8, y, spy, device=CPU, draws=2, attacker_noise=False)
    assert seen == [False] and model.stochastic and len(out) == 2


# ----------------------------------------------------------------------------------------
# 10. The input-gradient counter
# ----------------------------------------------------------------------------------------

def test_gradient_counter_counts_images_times_steps(digits, make_model):
    """Catches a GRADIENTS counter that counts calls instead of images, misses EOT draws or restarts,
    or counts the gradient-free final check of keep_best."""
    model = make_model(digits, width=4).eval()
    x, y = floats(digits, 7)
    b, k = 7, 3

    def cost(fn):
        before = attacks.GRADIENTS.images
        fn()
        return attacks.GRADIENTS.images - before

    assert cost(lambda: attacks.pgd(model, x, y, 0.1, 0.03, k, keep_best=False)) == k * b
    # early_exit=False: every image attacked to the end (the early exit's savings: tests/test_pgd.py)
    assert cost(lambda: attacks.pgd(model, x, y, 0.1, 0.03, k, restarts=2, early_exit=False)) == 2 * k * b
    assert cost(lambda: attacks.pgd(model, x, y, 0.1, 0.03, k, keep_best=False, eot=2)) == 2 * k * b
    assert cost(lambda: attacks.fgsm(model, x, y, 0.1, eot=4)) == 4 * b
    assert cost(lambda: attacks.fgsm(model, x, y, 0.1, random_start=True, alpha=0.125)) == b
    assert cost(lambda: defenses.input_gradients(model, digits.x_train[:30], digits.y_train[:30])) == 30
