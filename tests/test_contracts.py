"""Contract tests over the registries, in the manner of torchattacks' test over everything it
exports: every registered attack, defense and architecture is held to what its kind must do, so
a new entry is covered by one registry line and no new test. Arguments are given by name from
one table of small values (a new required argument needs a value there, and the test says so)."""
import inspect

import pytest
import torch

from advbook import attacks, defenses, models
from advbook.attacks import ATTACKS
from advbook.defenses import DEFENSES
from advbook.models.registry import INPUT_SHAPES

SMALL = {"eps": 0.1, "alpha": 0.05, "steps": 2, "sigma": 0.05, "step": 0.05, "adversarial": True,
         "p_natural": 0.5, "linf": {"eps": 0.1, "alpha": 0.05, "steps": 2},
         "l2": {"eps": 0.5, "alpha": 0.2, "steps": 2, "norm": "l2"}}
# optional arguments lowered so that every attack runs in a moment (AutoAttack's at full strength is slow)
CHEAP = {"steps": 2, "restarts": 1, "apgd_steps": 2, "apgdt_steps": 2, "fab_steps": 2, "targets": 2,
         "square_queries": 10}


def _arguments(function, skip=("model", "x", "y")):
    params = inspect.signature(function).parameters
    required = [p.name for p in params.values() if p.default is inspect.Parameter.empty and p.name not in skip
                and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    missing = [name for name in required if name not in SMALL and name != "source"]
    assert not missing, f"{function.__qualname__} requires {missing}: give them a small value in SMALL"
    kwargs = {name: SMALL[name] for name in required if name in SMALL}
    kwargs.update({k: v for k, v in CHEAP.items() if k in params})
    return kwargs


def _model(seed=0, **options):
    torch.manual_seed(seed)
    return models.build("small-cnn", 10, 1, image_size=8, width=4, **options)


def _batch():
    torch.manual_seed(1)
    return torch.rand(6, 1, 8, 8), torch.randint(0, 10, (6,))


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_every_attack_stays_in_the_ball_and_the_image_and_leaves_the_model_alone(name, mode):
    attack = ATTACKS[name]
    model, (x, y) = _model(), _batch()
    kwargs = _arguments(attack)
    if "source" in inspect.signature(attack).parameters:
        kwargs["source"] = _model(seed=2).eval()
    model.train(mode == "train")
    modes = [m.training for m in model.modules()]
    x_adv = attack(model, x, y, **kwargs)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    if "eps" in kwargs:
        assert (x_adv - x).abs().max() <= kwargs["eps"] + 1e-6
    assert [m.training for m in model.modules()] == modes, "the attack changed the model's mode"
    assert all(p.grad is None for p in model.parameters()), "the attack left gradients in the model"


def _defense_model():
    torch.manual_seed(0)  # a classifier with a re-constructor serves every defense (REC needs one)
    return models.build("efgsm-mnist", 10, 1, image_size=28, options={"reconstructor": True})


@pytest.mark.parametrize("name", sorted(DEFENSES))
def test_every_defense_gives_a_finite_scalar_loss_that_trains(name):
    defense = defenses.get(name)
    torch.manual_seed(1)
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    if getattr(defense, "stateful", False):
        defense = defense(n_train=8, device=torch.device("cpu"))
    call = defense.__call__ if not inspect.isfunction(defense) else defense
    kwargs = _arguments(call, skip=("self", "model", "x", "y", "index"))
    if getattr(defense, "wants_index", False):
        kwargs["index"] = torch.arange(8)
    model = _defense_model().train()
    loss, logits = defense(model, x, y, **kwargs)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert logits.shape[-1] == 10
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", sorted(INPUT_SHAPES))
def test_every_architecture_builds_and_runs_on_the_inputs_it_declares(name):
    for channels, height, width in INPUT_SHAPES[name]:
        torch.manual_seed(0)
        net = models.build(name, 10, channels, image_size=height)
        out = net.eval()(torch.rand(2, channels, height, width))
        assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_every_registered_name_is_covered():
    """The registries are what the tests above walk: a name added there is tested by them."""
    assert set(INPUT_SHAPES) == set(models.ARCHITECTURES)
    assert attacks.ATTACKS is ATTACKS and defenses.DEFENSES is DEFENSES


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_declares_its_cost(name):
    """The planner reads an attack's cost where it is registered (`attacks.COSTS`): a name without one
    would be planned blind. Its cost grows with the steps it is given (or does not depend on them)."""
    from advbook.costs import AttackCost

    assert name in attacks.COSTS, f"attack '{name}' declares no cost in attacks.COSTS"
    small, large = attacks.COSTS[name]({"steps": 2}), attacks.COSTS[name]({"steps": 20})
    assert isinstance(small, AttackCost) and min(small.gradients, small.forwards, small.operators) >= 0
    assert large.gradients >= small.gradients


@pytest.mark.parametrize("name", sorted(DEFENSES))
def test_every_defense_declares_its_cost(name):
    from advbook.costs import DefenseCost

    assert name in defenses.COSTS, f"defense '{name}' declares no cost in defenses.COSTS"
    cost = defenses.COSTS[name](SMALL)
    assert isinstance(cost, DefenseCost) and cost.attack >= 0 and cost.training >= 1


def test_no_cost_is_declared_for_a_name_nobody_registered():
    assert set(attacks.COSTS) == set(ATTACKS) and set(defenses.COSTS) == set(DEFENSES)
