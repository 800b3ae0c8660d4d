import pytest
import torch
from torch import nn

from advbook import evaluate
from advbook.checks import sanity_checks

CPU = torch.device("cpu")


def images(n=32):
    torch.manual_seed(0)
    return torch.rand(n, 1, 8, 8), torch.arange(n) % 10


class Linear(nn.Module):
    """A plain linear classifier; subclasses change one thing about its outputs."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Noisy(Linear):
    def forward(self, x):
        return super().forward(x + 0.1 * torch.randn_like(x))


class Softmax(Linear):
    def forward(self, x):
        return super().forward(x).softmax(1)


class HalfBlind(Linear):
    """Ignores the input of the images whose first pixel is below 0.5: their input gradient is zero."""

    def forward(self, x):
        blind = (x[:, 0, 0, 0] < 0.5).view(-1, 1, 1, 1)
        return super().forward(torch.where(blind, torch.zeros_like(x), x))


class NanForSome(Linear):
    def forward(self, x):
        out = super().forward(x)
        return torch.where((x[:, 0, 0, 0] < 0.25)[:, None], torch.full_like(out, float("nan")), out)


def test_a_plain_model_passes_every_check():
    checks = sanity_checks(Linear(), *images())
    assert checks == {"n": 32, "randomized": False, "zero_gradients": 0.0, "probabilities": False,
                      "non_finite": 0.0, "warnings": []}


def test_randomized_outputs_are_found():
    checks = sanity_checks(Noisy(), *images())
    assert checks["randomized"] and "randomized" in checks["warnings"][0]


def test_the_fraction_of_zero_input_gradients_is_found():
    x, y = images()
    checks = sanity_checks(HalfBlind(), x, y)
    assert checks["zero_gradients"] == pytest.approx((x[:, 0, 0, 0] < 0.5).float().mean().item())
    assert 0 < checks["zero_gradients"] < 1 and "all-zero input gradient" in checks["warnings"][0]


class OnePixelBlind(Linear):
    """Ignores one pixel of every image: its gradient there is zero, everywhere else it is not."""

    def forward(self, x):
        x = x.clone()
        x[:, 0, 0, 0] = 0
        return super().forward(x)


def test_a_model_blind_to_one_pixel_has_no_zero_gradient_image():
    """An image counts only when its gradient is zero at every pixel (a check that counted any zero pixel
    would call this model masked)."""
    assert sanity_checks(OnePixelBlind(), *images())["zero_gradients"] == 0.0


def test_probability_outputs_are_found():
    checks = sanity_checks(Softmax(), *images())
    assert checks["probabilities"] and "probabilities" in checks["warnings"][0]


def test_non_finite_outputs_are_found():
    x, y = images()
    checks = sanity_checks(NanForSome(), x, y)
    assert checks["non_finite"] == pytest.approx((x[:, 0, 0, 0] < 0.25).float().mean().item())
    assert checks["non_finite"] > 0 and any("non-finite" in w for w in checks["warnings"])


def test_every_evaluation_reports_its_checks_in_eval_mode(digits, make_model, monkeypatch):
    """Catches checks skipped by evaluate_spec, run more than once, or run in train mode (where the
    dropout of this model would make it look randomized)."""
    model = nn.Sequential(make_model(digits), nn.Dropout(0.5))
    model.train()
    calls = []
    original = evaluate.sanity_checks
    monkeypatch.setattr(evaluate, "sanity_checks", lambda *a: calls.append(a[1].shape) or original(*a))
    result = evaluate.evaluate_spec(model, digits, {"name": "fgsm", "attack": "fgsm", "params": {"eps": 0.1}, "n": 100},
                                    device=CPU)
    assert calls == [torch.Size([32, 1, 8, 8])]
    assert result["checks"]["randomized"] is False and result["checks"]["n"] == 32
    assert model.training
    softmax = nn.Sequential(make_model(digits), nn.Softmax(1))
    assert evaluate.evaluate_spec(softmax, digits, {"name": "clean", "attack": "clean", "n": 50},
                                  device=CPU)["checks"]["probabilities"]
