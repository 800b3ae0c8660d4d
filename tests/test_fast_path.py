"""The speed tricks of `fit` change how a step is computed, not what it computes: channels_last
and torch.compile give the eager fp32 weights to float rounding, and the bf16 fast path gives
a different but close step (and really is bf16: a silently disabled autocast would pass the
closeness check, so the test also asks for a difference)."""
import pytest
import torch

from advbook import defenses
from advbook.device import autocast
from advbook.train import TrainConfig, fit

from conftest import tiny_model

CPU = torch.device("cpu")
PGD = {"eps": 0.1, "alpha": 0.05, "steps": 2}


def _weights_after_pgd_training(digits, **flags):
    model = tiny_model(digits)
    cfg = TrainConfig(defense="pgd", defense_params=PGD, epochs=1, batch_size=64, lr=0.05, schedule="constant",
                      drop_last=True, seed=3, **flags)
    history = fit(model, digits.subset(256, 0), cfg, device=CPU, progress=False)
    return {k: v.float().contiguous() for k, v in model.state_dict().items()}, history[0]["train_loss"]


def _assert_same_training(a, b, atol):
    (wa, loss_a), (wb, loss_b) = a, b
    assert loss_a == pytest.approx(loss_b, abs=atol)
    for name in wa:
        assert torch.allclose(wa[name], wb[name], atol=atol, rtol=1e-4), name


def test_channels_last_trains_the_same_weights(digits):
    """Catches a layer that reads NHWC memory as NCHW (a flatten or view on the raw storage)."""
    eager = _weights_after_pgd_training(digits)
    _assert_same_training(eager, _weights_after_pgd_training(digits, channels_last=True), atol=1e-5)


def test_compiled_training_matches_eager(digits):
    """torch.compile's fused kernels may reorder sums, nothing more: the same weights after four
    PGD training steps (catches a compiled graph that drops the attack or the input gradient)."""
    eager = _weights_after_pgd_training(digits)
    _assert_same_training(eager, _weights_after_pgd_training(digits, compile=True), atol=1e-4)


def test_bf16_fast_path_step_is_close_to_fp32_and_really_bf16(digits):
    model = tiny_model(digits).train()
    x, y = digits.x_train[:64].float() / 255, digits.y_train[:64]

    def step(bf16: bool):
        torch.manual_seed(0)  # the same random start
        model.zero_grad(set_to_none=True)
        with autocast(CPU, "bf16" if bf16 else "fp32"):
            loss, _ = defenses.get("pgd")(model, x, y, **PGD)
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])

    (loss32, grad32), (loss16, grad16) = step(False), step(True)
    assert loss16 == pytest.approx(loss32, rel=0.03)
    assert torch.nn.functional.cosine_similarity(grad16, grad32, dim=0) > 0.98
    assert not torch.equal(grad16, grad32)  # autocast did run in bf16
