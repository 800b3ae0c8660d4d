"""advbook.reference_cifar: Wong et al.'s CIFAR-10 FGSM-RS loop written out beside fit."""
import json

import pytest
import torch

from advbook import data, reference_cifar as rc, store
from advbook.train import TrainConfig, learning_rate


@pytest.fixture(scope="module")
def colours():
    """48 RGB 16x16 images whose class is the brightest channel: learnable in a few steps."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(48) % 3
    x = torch.randint(0, 120, (48, 3, 16, 16), generator=g)
    x[torch.arange(48), y] += 120
    return data.Dataset("colours", "colours", x.to(torch.uint8), y, x[:12].to(torch.uint8), y[:12],
                        ("r", "g", "b"), "synthetic", None)


SETTINGS = dict(epochs=3, batch_size=16, lr_max=0.05, momentum=0.9, weight_decay=5e-4, eps=8 / 255,
                alpha=10 / 255, seed=1)


def model_pair(width=2):
    torch.manual_seed(0)
    first, second = rc.narrow_preact_resnet18(width), rc.narrow_preact_resnet18(width)
    second.load_state_dict(first.state_dict())
    return first, second


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_the_schedule_is_torchs_cyclic_lr_peaking_at_half_with_momentum_cycled():
    total = 20
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.2, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=0.0, max_lr=0.2, step_size_up=total / 2,
                                                  step_size_down=total / 2)
    theirs, mine = [], []
    for k in range(total):
        theirs.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["momentum"]))
        mine.append(rc.cyclic(k, total, 0.2))
        optimizer.step()  # no gradient: nothing moves
        scheduler.step()
    assert [v for pair in mine for v in pair] == pytest.approx([v for pair in theirs for v in pair])
    lrs = [lr for lr, _ in mine]
    assert lrs[0] == 0 and max(lrs) == pytest.approx(0.2) and lrs.index(max(lrs)) == total // 2
    assert mine[total // 2][1] == pytest.approx(0.8) and mine[0][1] == pytest.approx(0.9)
    # the switches: fit's peak at 2/5 (train.learning_rate), a fixed momentum
    ours = [learning_rate(TrainConfig(lr=0.2, schedule="cyclic"), k / total) for k in range(total)]
    assert [rc.cyclic(k, total, 0.2, peak=0.4)[0] for k in range(total)] == pytest.approx(ours)
    assert {rc.cyclic(k, total, 0.2, cycle_momentum=False)[1] for k in range(total)} == {0.9}


def test_the_start_is_clipped_into_the_image():
    x = torch.tensor([0.0, 1.0, 0.5, 0.01]).repeat(1000).view(1000, 4)
    delta = rc.reference_start(x, 8 / 255)
    assert ((x + delta) >= 0).all() and ((x + delta) <= 1).all()
    assert delta.abs().max() <= 8 / 255 and (delta[:, 2] != 0).all()
    assert (delta[:, 0] >= 0).all() and (delta[:, 1] <= 0).all()


def test_each_arm_switches_one_difference_toward_ours():
    for arm, switches in rc.ARMS.items():
        if arm.startswith("reference-"):
            assert len(switches) == 1 and set(switches) <= set(rc.REFERENCE), arm
            key, value = next(iter(switches.items()))
            assert value != rc.REFERENCE[key], arm
    assert rc.ARMS["reference"] == {}
    # their shortcut: other outputs from the very same weights
    model, rewired = model_pair()
    before = {k: v.clone() for k, v in rewired.state_dict().items()}
    rc.their_shortcut(rewired)
    x = torch.rand(4, 3, 16, 16)
    model.eval(), rewired.eval()
    assert not torch.allclose(model(x), rewired(x))
    assert all(torch.equal(before[k], v) for k, v in rewired.state_dict().items())


def test_the_reference_loop_with_fits_schedule_computes_what_fit_does(colours):
    """Same data order, augmentation and random starts: switched to fit's schedule peak and fixed
    momentum, the plain loop follows fit (up to rounding); with its own schedule it does not."""
    ours, reference = model_pair()
    history, _ = rc.train_ours(ours, colours, **SETTINGS)
    switched = rc.reference_loop(reference, colours, peak=0.4, cycle_momentum=False, **SETTINGS)
    assert [h["train_loss"] for h in switched] == pytest.approx([h["train_loss"] for h in history], abs=1e-4)
    assert torch.allclose(weights(ours), weights(reference), atol=1e-4)
    _, own = model_pair()
    rc.reference_loop(own, colours, **SETTINGS)
    assert not torch.allclose(weights(ours), weights(own), atol=1e-4)


def test_the_reference_loop_trains(colours):
    model, _ = model_pair(width=4)
    history = rc.reference_loop(model, colours, **{**SETTINGS, "epochs": 6, "lr_max": 0.1})
    assert history[-1]["train_loss"] < history[0]["train_loss"] and history[-1]["train_acc"] > 0.5
    assert not model.training


def test_the_command_line_writes_a_resumable_record(colours, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(rc, "load", lambda s, root: colours)
    out = tmp_path / "record.json"
    argv = ["--output", str(out), "--epochs", "1", "--n-eval", "4", "--width", "2", "--n-train", "48",
            "--seeds", "0", "--arms", "reference", "ours", "reference-batch-512"]
    rc.main(argv)
    record = store.read(out)
    assert [(r["arm"], r["seed"]) for r in record["runs"]] == [("reference", 0), ("ours", 0), ("reference-batch-512", 0)]
    assert record["settings"]["width"] == 2 and "untested" in record
    assert "ours - reference pgd" in record["summary"] and "reference-batch-512 - reference clean" in record["summary"]
    assert record["runs"][1]["train_config"]["defense_params"]["clip_start"] is True
    rc.main(argv + ["--resume"])
    assert len(store.read(out)["runs"]) == 3
    with pytest.raises(SystemExit):
        rc.main(argv[:2] + ["--epochs", "2"] + argv[4:] + ["--resume"])
    json.dumps(record)


def test_every_arm_has_a_label():
    assert list(rc.ARM_LABELS) == list(rc.ARMS)


def test_the_primer_table_pairs_each_arm_with_the_reference_on_its_seeds(tmp_path, monkeypatch):
    from advbook import paths
    from advbook.chapters.primer import fgsm_rs_reference_cifar

    monkeypatch.setattr(paths, "REFERENCE", tmp_path)
    assert fgsm_rs_reference_cifar() is None
    runs = [{"arm": "reference", "seed": s, "clean": c, "pgd": p} for s, c, p in ((0, 0.40, 0.20), (1, 0.44, 0.22))]
    runs += [{"arm": "ours", "seed": s, "clean": c, "pgd": p} for s, c, p in ((0, 0.38, 0.17), (1, 0.40, 0.21))]
    runs += [{"arm": "reference-batch-512", "seed": 0, "clean": 0.30, "pgd": 0.15}]
    (tmp_path / "reference-fgsm-rs-cifar10.json").write_text(
        json.dumps({"commit": "abc", "device": "cpu", "torch": "2", "runs": runs}))
    table = fgsm_rs_reference_cifar()
    assert list(table.index) == [rc.ARM_LABELS[a] for a in ("reference", "ours", "reference-batch-512")]
    ours = table.loc[rc.ARM_LABELS["ours"]]
    assert ours["seeds"] == 2 and ours["clean"] == "39.0 ± 1.4" and ours["PGD-50-10"] == "19.0 ± 2.8"
    # paired differences -3 and -1 points: mean -2, standard error 1
    assert ours["PGD − reference"] == "-2.0 ± 1.0 (n=2)" and ours["clean − reference"] == "-3.0 ± 1.0 (n=2)"
    one = table.loc[rc.ARM_LABELS["reference-batch-512"]]
    assert one["PGD − reference"] == "-5.0 (n=1)" and table.loc[rc.ARM_LABELS["reference"]]["PGD − reference"] == ""
    assert "reference-fgsm-rs-cifar10.json: commit abc" in table.attrs["provenance"]
