"""`advbook audit` (advbook.model_audit): a user's checkpoint through the book's evaluation, offline."""
import json
import sys

import pytest
import torch

from advbook import cli

# a user's own models, imported by `--model audit_nets:NAME` from the working directory
NETS = '''
import torch
from torch import nn
from advbook import models


def small():
    return models.build("small-cnn", 10, 1, width=8)


class Quantize(nn.Module):
    """Rounds pixels to digits' 17 levels: the images stay as they are, every input gradient is zero."""
    def forward(self, x):
        return torch.round(x * 16) / 16


def masked():
    return nn.Sequential(Quantize(), small())


class Noise(nn.Module):
    def forward(self, x):
        return x + 0.05 * torch.randn_like(x)


def noisy():
    return nn.Sequential(Noise(), small())


class Pixels255(nn.Module):
    """A model trained on 0-255 pixels: it divides them back."""
    def forward(self, x):
        return x / 255


def wants_255():
    return nn.Sequential(Pixels255(), small())


class FirstFive(nn.Module):
    def forward(self, x):
        return x[:, :5]


def five_outputs():
    return nn.Sequential(small(), FirstFive())
'''

SOUND = ["--arch", "small-cnn", "--width", "8", "--weights", "sound.pt"]
COMMON = ["--dataset", "digits", "--eps", "0.1", "--n", "32"]


@pytest.fixture(scope="module")
def nets(tmp_path_factory, trained):
    """A folder holding audit_nets.py and weights: the trained small CNN's state dict (sound.pt) and
    the same weights behind each of audit_nets' wrappers (NAME.pt)."""
    folder = tmp_path_factory.mktemp("nets")
    (folder / "audit_nets.py").write_text(NETS)
    weights = {k: v.detach().clone() for k, v in trained.state_dict().items()}
    torch.save(weights, folder / "sound.pt")
    torch.save({f"1.{k}": v for k, v in weights.items()}, folder / "wrapped.pt")
    torch.save({f"0.{k}": v for k, v in weights.items()}, folder / "first.pt")
    yield folder
    sys.modules.pop("audit_nets", None)


@pytest.fixture
def in_nets(nets, monkeypatch):
    monkeypatch.chdir(nets)
    monkeypatch.syspath_prepend(str(nets))
    return nets


def audit(args, capsys):
    """Exit code, stdout lines, stderr lines of `advbook audit ARGS`."""
    code = cli.main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def report_of(folder):
    return json.loads((folder / "report.json").read_text())


@pytest.fixture(scope="module")
def reports(nets, tmp_path_factory):
    """The reports of a sound model (two seeds) and of the same weights behind an input quantizer."""
    out = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(nets)
        mp.syspath_prepend(str(nets))
        mp.setenv("ADVBOOK_RESULTS", str(out / "results"))
        assert cli.main(["audit", *SOUND, *COMMON, "--seeds", "0,1", "--output", str(out / "sound")]) == 0
        assert cli.main(["audit", "--model", "audit_nets:masked", "--weights", "wrapped.pt", *COMMON,
                         "--output", str(out / "masked")]) == 0
    assert not (out / "results").exists(), "an audit wrote into the results store"
    return {name: report_of(out / name) for name in ("sound", "masked")} | {"folder": out}


def checks(report):
    return {c["name"]: c for c in report["checklist"]}


def test_the_checklist_flags_masked_gradients_and_passes_a_sound_model(reports):
    sound, masked = checks(reports["sound"]), checks(reports["masked"])
    assert all(c["passed"] is True for c in sound.values()), [c for c in sound.values() if not c["passed"]]
    # the quantizer zeroes every input gradient: the gradient attacks see nothing, black-box ones do
    assert masked["gradients not zero or NaN"]["passed"] is False
    assert "all zero on 100%" in masked["gradients not zero or NaN"]["saw"]
    assert masked["PGD <= AutoAttack + 5"]["passed"] is False
    assert masked["eps sweep reaches ~0"]["passed"] is False
    for c in [*sound.values(), *masked.values()]:
        assert c["checked"] and c["saw"] and c["passed"] in (True, False)


def test_worst_case_is_never_above_any_attack(reports):
    for report in (reports["sound"], reports["masked"]):
        worst = report["worst_case"]["accuracy"]
        names = {a["key"] for a in report["attacks"]}
        assert {"clean", "fgsm", "pgd", "apgd-ce", "autoattack", "transfer"} <= names
        for attack in report["attacks"]:
            assert worst <= attack["accuracy"]
            assert all(worst <= v for v in attack["per_seed"].values())
        # per image too: an image counted robust in the worst case is robust under every attack and seed
        bits = report["worst_case"]["per_image"]
        assert len(bits) == report["worst_case"]["n"] and bits.count("1") / len(bits) == worst
        for attack in report["attacks"]:
            if not attack["key"].startswith("eps_sweep"):
                for seed, row in attack["per_image"].items():
                    assert row.count("1") / len(row) == attack["per_seed"][seed]
                    assert all(r == "1" for w, r in zip(bits, row) if w == "1"), (attack["key"], seed)
    assert reports["sound"]["seeds"] == [0, 1]


def test_the_report_holds_every_number_and_a_self_contained_page(reports):
    report = reports["sound"]
    pgd = next(a for a in report["attacks"] if a["key"] == "pgd")
    assert pgd["params"]["restarts"] > 1 and set(pgd["per_seed"]) == {"0", "1"}
    autoattack = next(a for a in report["attacks"] if a["key"] == "autoattack")
    assert autoattack["name"].startswith("AutoAttack standard (APGD-CE 100, APGD-T 100x9")
    assert report["eps_sweep"]["points"][-1]["eps"] == 1.0
    assert {"torch", "torchattacks", "python"} <= set(report["versions"])
    assert report["device"] and report["wall_seconds"] > 0 and report["model"]["weights_sha256"]
    page = (reports["folder"] / "sound" / "report.html").read_text()
    assert 'src="data:image/png;base64,' in page and page.count("<table>") == 2
    assert "http://" not in page and "https://" not in page  # nothing to fetch: it reads offline


def test_a_second_run_gives_the_same_numbers(reports, in_nets, tmp_path, capsys):
    code, _, _ = audit([*SOUND, *COMMON, "--seeds", "0,1", "--output", str(tmp_path / "again")], capsys)
    again, first = report_of(tmp_path / "again"), reports["sound"]
    assert code == 0
    def numbers(report):
        return [(a["name"], a["per_seed"]) for a in report["attacks"]]

    assert numbers(again) == numbers(first)
    assert again["worst_case"] == first["worst_case"] and again["eps_sweep"] == first["eps_sweep"]
    assert [(c["name"], c["saw"], c["passed"]) for c in again["checklist"]] == \
        [(c["name"], c["saw"], c["passed"]) for c in first["checklist"]]


def test_a_test_seed_audits_the_images_a_chapter_drew(in_nets, tmp_path, capsys):
    """--test-seed S takes the --n images that `Dataset.subset(n_test=N, seed=S)` gives the book's records."""
    from advbook import data, model_audit

    dataset = data.load("digits")
    model, _ = model_audit._model(cli._parser().parse_args(["audit", *SOUND, *COMMON, "--output", "x"]), dataset,
                                  model_audit.load_state_dict(in_nets / "sound.pt"), None, None, {})
    audit = model_audit.of_model(model, {}, dataset, norm="linf", eps_text="0.1", n=32, test_seed=3)
    drawn = dataset.subset(n_test=32, seed=3)
    assert torch.equal(audit.x, drawn.x_test) and torch.equal(audit.y, drawn.y_test)
    assert not torch.equal(audit.x, dataset.x_test[:32]) and "seed 3" in audit.images


def test_a_randomized_model_gets_eot_and_the_budget_skips_what_would_not_finish(in_nets, tmp_path, capsys):
    code, out, _ = audit(["--model", "audit_nets:noisy", "--weights", "wrapped.pt", "--dataset", "digits",
                          "--eps", "8/255", "--n", "16", "--budget", "3", "--output", str(tmp_path / "noisy")], capsys)
    report = report_of(tmp_path / "noisy")
    assert code == 0 and report["model"]["randomized"]
    assert any("randomized" in note for note in report["notes"])
    assert report["threat_model"]["eps"] == pytest.approx(8 / 255)
    eot = [a["key"] for a in report["attacks"] + report["skipped"] if a["key"].endswith("-eot")]
    assert sorted(eot) == ["apgd-ce-eot", "fgsm-eot", "pgd-eot"]
    # PGD-50 with 10 restarts and 20 draws a step cannot finish in 3 s here: skipped and said so
    assert "pgd-eot" in {s["key"] for s in report["skipped"]}
    assert any("skipped" in line for line in out) and out[1].startswith("the model is randomized")
    assert any(line.startswith("estimated at most") for line in out[:3])  # the estimate comes first


BAD = {
    "missing weights": (["--weights", "nowhere.pt"], "does not exist"),
    "corrupt weights": (["--weights", "junk.pt"], "is not a file torch.save wrote, or it is corrupt"),
    "truncated weights": (["--weights", "truncated.pt"], "is not a file torch.save wrote, or it is corrupt"),
    "a pickled model": (["--weights", "pickled.pt"], "refused: it holds a pickled Python object"),
    "a training checkpoint": (["--weights", "checkpoint.pt"], "not a state dict"),
    "keys that do not fit": (["--weights", "badkeys.pt"], "missing keys 1.classifier.bias; unexpected keys extra"),
    "output not (batch, classes)": (["--model", "audit_nets:five_outputs", "--weights", "first.pt"],
                                    "needs (batch, classes) logits"),
    "inputs outside [0, 1]": (["--model", "audit_nets:wants_255", "--weights", "wrapped.pt"],
                              "expects inputs outside [0, 1]"),
    "eps above 1": (["--eps", "2"], "out of range for linf"),
    "eps zero": (["--eps", "0/255"], "out of range: it must be above 0"),
    "eps not a number": (["--eps", "eight"], "a number or a fraction"),
    "l2 eps beyond the cube": (["--norm", "l2", "--eps", "9"], "out of range for l2"),
    "unknown norm": (["--norm", "l3"], "--norm takes linf or l2"),
    "unknown dataset": (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    "unknown architecture": (["--arch", "nonet"], "unknown architecture 'nonet'"),
    "a model that does not import": (["--model", "no_such_module:build"], "cannot import no_such_module"),
    "a non-empty output": (["--output", "full"], "exists and is not an empty folder"),
    "too many images": (["--n", "451"], "more than the 450 test images"),
    "a negative test seed": (["--test-seed", "-1"], "--test-seed must be a seed"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_and_exit_code_2_before_any_work(case, in_nets, tmp_path, capsys, monkeypatch):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file " * 20)
    good = (in_nets / "sound.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(good[:len(good) // 2])
    torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled.pt")
    weights = torch.load(in_nets / "sound.pt", weights_only=True)
    torch.save({"model": weights, "epoch": 3}, tmp_path / "checkpoint.pt")
    torch.save({**{k: v for k, v in weights.items() if k != "1.classifier.bias"}, "extra": torch.zeros(1)},
               tmp_path / "badkeys.pt")
    for name in ("sound.pt", "wrapped.pt", "first.pt"):
        (tmp_path / name).write_bytes((in_nets / name).read_bytes())
    (tmp_path / "audit_nets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    change, message = BAD[case]
    options = {"--arch": "small-cnn", "--width": "8", "--weights": "sound.pt", "--dataset": "digits", "--eps": "0.1",
               "--n": "32", "--output": "report"}
    options.update(zip(change[::2], change[1::2]))
    if "--model" in options:  # the user's own model instead of an architecture of the library
        del options["--arch"], options["--width"]
    args = [part for pair in options.items() for part in pair]
    code, out, err = audit(args, capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("advbook: error: ") and message in err[0], err
    assert out == []  # no progress: nothing ran
    assert not (tmp_path / "report").exists()
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
