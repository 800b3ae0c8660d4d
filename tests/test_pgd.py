"""PGD's own bookkeeping, tested against models whose answers are known: the random start (uniform
in the ball, used, fresh for every restart), the iterate that `keep_best` returns (the first
misclassified one, else the highest loss, across steps and restarts), and the early exit of the
strong evaluation (the full computation's images with fewer input gradients)."""
import pytest
import torch

from advbook import attacks

CLASSES = 3
BASE, SPACING = 0.2, 0.1  # image i is constant BASE + SPACING * i before the attack moves it


class Scripted(torch.nn.Module):
    """A 3-class model whose logits on call k for image i are [0, a, b] with (a, b) =
    `table[k][i]` (true class 0: fooled when a or b > 0). The image is recognized from its
    pixel mean, so batches the attack has compacted are read right. A small tilt, increasing
    with the pixel sum, gives every pixel a positive loss gradient: each step moves every pixel
    by +alpha, so the iterates are distinct and the returned one can be found among the inputs.
    Every input is recorded as (call, image ids, images)."""

    def __init__(self, table=None):
        super().__init__()
        self.table = None if table is None else torch.tensor(table, dtype=torch.float32)
        self.inputs = []

    def forward(self, x):
        ids = ((x.flatten(1).mean(1) - BASE) / SPACING).round().long()
        call = len(self.inputs)
        self.inputs.append((call, ids, x.detach().clone()))
        ab = torch.full((len(x), 2), -1.0) if self.table is None else self.table[call][ids]
        tilt = 1e-3 * x.flatten(1).sum(1, keepdim=True)
        return torch.cat([torch.zeros_like(tilt), ab + tilt], 1)

    def calls_returning(self, x_adv, i):
        """The calls whose input for image i is x_adv[i]."""
        return [call for call, ids, x in self.inputs for row in (ids == i).nonzero().flatten().tolist()
                if torch.equal(x[row], x_adv[i])]


def constant_images(n, side=8):
    x = (BASE + SPACING * torch.arange(n, dtype=torch.float32)).view(n, 1, 1, 1).expand(n, 1, side, side)
    return x.contiguous(), torch.zeros(n, dtype=torch.long)


FOOLED, UNFOOLED_HIGH, UNFOOLED_LOW = [0.2, -9.0], [-0.2, -0.2], [-3.0, -3.0]
# CE with true class 0: FOOLED 0.80, UNFOOLED_HIGH 0.97 (higher, yet not fooled), UNFOOLED_LOW 0.05


def ce_of(a, b):
    return torch.logsumexp(torch.tensor([0.0, a, b]), 0).item()


def test_the_table_means_what_the_tests_say():
    assert ce_of(*UNFOOLED_HIGH) > ce_of(*FOOLED) > ce_of(*UNFOOLED_LOW)


def ladder(*margins):
    """(a, b) pairs for losses that grow with `margins` (all negative: never fooled)."""
    return [[m, -9.0] for m in margins]


@pytest.mark.parametrize("early_exit", [False, True])
def test_keep_best_returns_the_first_fooled_iterate_else_the_highest_loss(early_exit):
    steps = 5  # calls 0..4 take the input gradient of iterates 0..4; call 5 scores iterate 5
    per_image = [
        # fooled at calls 2 and 4: the first success, iterate 2
        [UNFOOLED_LOW, UNFOOLED_LOW, FOOLED, UNFOOLED_LOW, FOOLED, UNFOOLED_LOW],
        # never fooled: the highest loss, iterate 1
        ladder(-3.0, -0.5, -2.0, -4.0, -2.5, -5.0),
        # fooled at call 1: kept though call 3 has a higher loss without being fooled
        [UNFOOLED_LOW, FOOLED, UNFOOLED_LOW, UNFOOLED_HIGH, UNFOOLED_LOW, UNFOOLED_LOW],
        # never fooled, its highest loss at the last iterate, scored after the loop
        ladder(-2.0, -2.5, -3.0, -1.5, -4.0, -0.5),
        # fooled only at the last iterate
        ladder(-1.0, -1.5, -2.0, -3.0, -4.0) + [FOOLED],
    ]
    expected = [2, 1, 1, 5, 5]
    table = [[image[call] for image in per_image] for call in range(steps + 1)]
    model = Scripted(table).eval()
    x, y = constant_images(len(per_image))
    alpha = 0.002
    x_adv = attacks.pgd(model, x, y, steps * alpha, alpha, steps, random_start=False, early_exit=early_exit)
    assert [model.calls_returning(x_adv, i) for i in range(len(x))] == [[k] for k in expected]
    assert _images_per_call(model) == _unfooled_before(table, early_exit)


def _images_per_call(model):
    return [ids.tolist() for _, ids, _ in model.inputs]


def _unfooled_before(table, early_exit):
    """The images each call computes on: all of them, or with the early exit those that no
    earlier call fooled (in this restart or an earlier one)."""
    fooled_so_far, out = set(), []
    for call, row in enumerate(table):
        out.append([i for i in range(len(row)) if not (early_exit and i in fooled_so_far)])
        fooled_so_far |= {i for i, (a, b) in enumerate(row) if max(a, b) > 0}
    return out


@pytest.mark.parametrize("early_exit", [False, True])
def test_best_is_never_lost_across_restarts(early_exit):
    # two restarts of one step: calls 0, 1 are restart 1 (gradient, final score), calls 2, 3 restart 2
    per_image = [
        # fooled in restart 1; restart 2 fails with a higher loss: restart 1's success stays
        [UNFOOLED_LOW, FOOLED, UNFOOLED_HIGH, UNFOOLED_HIGH],
        # never fooled, highest loss in restart 1: restart 2's lower losses do not replace it
        ladder(-2.0, -0.5, -3.0, -1.0),
        # never fooled, highest loss in restart 2
        ladder(-2.0, -1.0, -0.5, -3.0),
        # fooled first in restart 2
        [UNFOOLED_HIGH, UNFOOLED_HIGH, UNFOOLED_LOW, FOOLED],
    ]
    expected = [1, 1, 2, 3]
    table = [[image[call] for image in per_image] for call in range(4)]
    model = Scripted(table).eval()
    x, y = constant_images(len(per_image))
    torch.manual_seed(0)
    x_adv = attacks.pgd(model, x, y, 0.02, 0.005, 1, restarts=2, early_exit=early_exit)
    assert [model.calls_returning(x_adv, i) for i in range(len(x))] == [[k] for k in expected]
    assert _images_per_call(model) == _unfooled_before(table, early_exit)


def _uniform_distance(samples, low, high):
    """Kolmogorov-Smirnov distance between `samples` and U(low, high)."""
    u = ((samples.flatten().double() - low) / (high - low)).sort().values
    n = len(u)
    ranks = torch.arange(1, n + 1, dtype=torch.float64) / n
    return max((ranks - u).abs().max().item(), (u - (ranks - 1 / n)).abs().max().item())


def _first_input(model):
    return model.inputs[0][2]


def test_linf_random_start_is_uniform_in_the_ball_and_is_where_pgd_starts():
    model = Scripted().eval()
    x = torch.full((64, 1, 8, 8), 0.5)  # mid-range: the clamp to [0, 1] plays no part
    y = torch.zeros(64, dtype=torch.long)
    eps = 0.1
    torch.manual_seed(0)
    attacks.pgd(model, x, y, eps, eps / 4, 1, keep_best=False)
    start = _first_input(model) - x
    assert start.abs().max() <= eps + 1e-6
    # 4,096 draws: U(-eps, eps) is within 0.03 of their distribution at the 99.9% level
    assert _uniform_distance(start, -eps, eps) < 0.05


def test_l2_random_start_has_a_uniform_direction_and_radius_and_is_where_pgd_starts():
    model = Scripted().eval()
    n = 400
    x = torch.full((n, 1, 8, 8), 0.5)
    y = torch.zeros(n, dtype=torch.long)
    eps = 0.5  # radius 0.5 moves no pixel of 0.5 out of [0, 1]
    torch.manual_seed(0)
    attacks.pgd(model, x, y, eps, eps / 4, 1, norm="l2", keep_best=False)
    start = (_first_input(model) - x).flatten(1)
    radius = start.norm(dim=1)
    assert radius.max() <= eps + 1e-6
    # 400 radii: U(0, eps) is within 0.1 of their distribution at the 99.9% level
    assert _uniform_distance(radius, 0.0, eps) < 0.12
    # 400 uniform directions in 64 dimensions: their mean has a norm near 1/sqrt(400) = 0.05
    assert (start / radius[:, None]).mean(0).norm() < 0.15


def test_without_random_start_pgd_starts_at_the_image():
    model = Scripted().eval()
    x, y = constant_images(3)
    attacks.pgd(model, x, y, 0.02, 0.005, 1, random_start=False)
    assert torch.equal(_first_input(model), x)


def test_every_restart_draws_a_fresh_start():
    model = Scripted().eval()
    x, y = constant_images(4)
    restarts, eps = 3, 0.02
    torch.manual_seed(0)
    attacks.pgd(model, x, y, eps, 0.005, 1, restarts=restarts)  # calls 0, 2, 4 see the starts
    starts = [model.inputs[2 * r][2] - x for r in range(restarts)]
    for start in starts:
        assert 0 < start.abs().max() <= eps + 1e-6
    for r in range(restarts):
        for s in range(r):
            assert not (starts[r] == starts[s]).flatten(1).all(1).any()  # no image starts where it did


@pytest.mark.parametrize("keep_best", [True, False])
def test_zero_steps_return_the_random_start(keep_best):
    model = Scripted().eval()
    x, y = constant_images(4)
    eps = 0.02
    torch.manual_seed(0)
    expected = (x + attacks.random_delta(x, eps, "linf")).clamp(0, 1)
    torch.manual_seed(0)
    x_adv = attacks.pgd(model, x, y, eps, 0.005, 0, keep_best=keep_best)
    assert torch.equal(x_adv, expected)
    assert not torch.equal(x_adv, x)


class Rowwise(torch.nn.Module):
    """A random two-layer network built from elementwise products and sums within one image:
    each image's logits and input gradient come out bit for bit the same whatever the batch's
    size (a convolution's kernel may be chosen by batch size, so a CNN's last bits can differ)."""

    def __init__(self, features=64, hidden=16):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.v = torch.nn.Parameter(torch.randn(hidden, features, generator=g) / 4)
        self.w = torch.nn.Parameter(torch.randn(CLASSES, hidden, generator=g))

    def forward(self, x):
        h = torch.tanh((x.flatten(1)[:, None, :] * self.v).sum(-1) - 1.0)
        return (h[:, None, :] * self.w).sum(-1)


def _images_and_gradient_count(model, x, y, **kwargs):
    torch.manual_seed(0)
    before = attacks.GRADIENTS.images
    x_adv = attacks.pgd(model, x, y, **kwargs)
    return x_adv, attacks.GRADIENTS.images - before, torch.rand(4)


@pytest.mark.parametrize("norm,eps", [("linf", 0.06), ("l2", 0.4)])
@pytest.mark.parametrize("loss", ["ce", "cw"])
def test_early_exit_returns_the_full_computations_images_with_fewer_gradients(norm, eps, loss):
    model = Rowwise().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(200, 1, 8, 8, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)  # all correct before the attack
    params = dict(eps=eps, alpha=eps / 4, steps=8, restarts=3, norm=norm, loss=loss)
    full, full_count, full_stream = _images_and_gradient_count(model, x, y, early_exit=False, **params)
    early, early_count, early_stream = _images_and_gradient_count(model, x, y, **params)
    assert torch.equal(early, full)
    assert torch.equal(early_stream, full_stream)  # and the random stream is left where it was
    with torch.no_grad():
        fooled = model(full).argmax(1) != y
    assert 0 < fooled.sum() < len(y)  # images fooled on the way, others attacked to the end
    assert full_count == 3 * 8 * len(y)
    assert early_count < full_count


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.5)])
def test_early_exit_on_a_cnn_fools_the_same_images(trained, digits, norm, eps):
    """On a CNN a smaller batch may run other kernels (last-bit differences): the same images
    fooled, the adversarial images equal to float rounding."""
    x, y = digits.x_test[:128].float() / 255, digits.y_test[:128]
    params = dict(eps=eps, alpha=eps / 4, steps=10, restarts=2, norm=norm)
    full, full_count, _ = _images_and_gradient_count(trained, x, y, early_exit=False, **params)
    early, early_count, _ = _images_and_gradient_count(trained, x, y, **params)
    with torch.no_grad():
        fooled_full, fooled_early = trained(full).argmax(1) != y, trained(early).argmax(1) != y
    assert torch.equal(fooled_early, fooled_full)
    assert 0 < fooled_full.sum() < len(y)
    assert torch.allclose(early, full, atol=1e-5, rtol=0)
    assert early_count < full_count


class Noisy(Rowwise):
    stochastic = True  # models.is_randomized: noise at test time
    
    def forward(self, x):
        return super().forward(x) + 0.01 * torch.randn(len(x), CLASSES)


@pytest.mark.parametrize("case", ["train mode", "randomized"])
def test_early_exit_is_skipped_where_images_of_a_batch_interact(case):
    """In train mode (batch norm mixes the batch) or for a model drawing noise (its draws depend
    on the batch's size), compacting the batch would change the result: PGD computes it all."""
    model = Noisy().eval() if case == "randomized" else Rowwise().train()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(50, 1, 8, 8, generator=g)
    y = torch.zeros(50, dtype=torch.long)
    _, count, _ = _images_and_gradient_count(model, x, y, eps=0.3, alpha=0.1, steps=4, restarts=2)
    assert count == 2 * 4 * len(y)
    with torch.no_grad():
        assert (model(x).argmax(1) != y).any()  # there were images to exit early on
