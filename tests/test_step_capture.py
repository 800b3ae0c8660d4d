"""The training step and its capture by torch.compile (`TrainConfig.compile_step`): the default
step is the plain eager step, bit for bit; the captured step trains the eager weights to float
rounding, counts the same input gradients, and really is compiled (the attack included); the
attack inside training computes no parameter gradient; `advbook bench --compile` times it alone."""
from collections import Counter

import pytest
import torch
from torch._dynamo.eval_frame import _debug_get_cache_entry_list
from torch._dynamo.utils import counters

from advbook import bench, defenses
from advbook.attacks import gradient
from advbook.cli import main
from advbook.data import to_float
from advbook.train import TrainConfig, _seed_epoch, fit, make_optimizer

from conftest import tiny_model

CPU = torch.device("cpu")
PGD = {"eps": 0.1, "alpha": 0.05, "steps": 2}


def _config(**flags):
    return TrainConfig(**{"defense": "pgd", "defense_params": PGD, "epochs": 1, "batch_size": 64, "lr": 0.05,
                          "schedule": "cyclic", "seed": 3, **flags})


def test_the_default_step_is_the_plain_eager_step_bit_for_bit(digits):
    """A default TrainConfig trains exactly what the plain loop does (defense, zero_grad,
    backward, step, in fit's order of batches): none of the switches touches it."""
    dataset, cfg = digits.subset(200, 0), _config(schedule="constant", epochs=2)
    model = tiny_model(digits)
    fit(model, dataset, cfg, device=CPU, progress=False)

    reference = tiny_model(digits).train()
    optimizer = make_optimizer(cfg, reference.parameters(), CPU)
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(dataset.y_train), generator=_seed_epoch(cfg.seed, epoch, CPU))
        for idx in order.split(cfg.batch_size):
            loss, _ = defenses.get("pgd")(reference, to_float(dataset.x_train[idx]), dataset.y_train[idx], **PGD)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    for (name, ours), theirs in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(ours, theirs), name


def test_the_attack_inside_training_computes_no_parameter_gradient(digits):
    """PGD's input gradients go through torch.autograd.grad with respect to the input alone: a
    parameter's gradient is computed once a step, by the update's backward."""
    model = tiny_model(digits)
    computed = Counter()
    for name, p in model.named_parameters():
        p.register_hook(lambda grad, name=name: computed.update([name]))
    fit(model, digits.subset(128, 0), _config(), device=CPU, progress=False)  # 2 steps of PGD-2 training
    assert computed == {name: 2 for name, _ in model.named_parameters()}


def test_the_captured_step_trains_the_eager_weights_and_is_compiled(digits):
    """One compilation (tens of seconds on a small CPU) checks everything about the switch."""
    dataset = digits.subset(300, 0)  # 4 full batches and a partial one: a second shape
    graphs = counters["stats"]["unique_graphs"]

    eager_model = tiny_model(digits)
    eager = fit(eager_model, dataset, _config(), device=CPU, progress=False)[0]
    assert counters["stats"]["unique_graphs"] == graphs  # off: nothing compiled

    torch._dynamo.reset()
    captured_model = tiny_model(digits)
    captured = fit(captured_model, dataset, _config(compile_step=True), device=CPU, progress=False)[0]
    assert counters["stats"]["unique_graphs"] > graphs
    # the attack ran in compiled frames (its input gradient traced, not a frame left to eager)
    assert _debug_get_cache_entry_list(gradient.pgd)
    assert captured["gradient_images"] == eager["gradient_images"]  # counts made inside graphs kept
    assert captured["train_loss"] == pytest.approx(eager["train_loss"], abs=1e-5)
    for (name, a), b in zip(eager_model.state_dict().items(), captured_model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5, rtol=0), name


def test_bench_times_the_captured_step_alone_when_asked(tmp_path, monkeypatch):
    timed = []
    monkeypatch.setattr(bench, "ours", lambda *args, compile=False, **kw: timed.append((args[6], compile)) or 1.0)
    argv = ["bench", "--device", "cpu", "--quick", "--models", "small-cnn", "--methods", "standard",
            "--no-reference", "--workers", "0"]
    assert main(argv + ["--output", str(tmp_path / "plain.json")]) == 0
    assert not any(tricks.get("compile_step") for tricks, _ in timed)
    timed.clear()
    assert main(argv + ["--compile", "--output", str(tmp_path / "compiled.json")]) == 0
    assert ({"compile_step": True, "drop_last": True}, False) in timed  # alone: no other trick
