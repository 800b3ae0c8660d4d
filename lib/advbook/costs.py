"""What an attack or a defense costs, in the units the planner turns into seconds.

Each registry declares the cost of every name it registers, beside the name (`attacks.COSTS`,
`defenses.COSTS`: a function of the entry's parameters), and a contract test fails on a registered
name without one; `advbook.planning` reads costs from there and nowhere else, and `advbook.bench`
counts its methods' passes with the same functions.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AttackCost:
    """Per image, as if no image were misclassified early (an upper bound for attacks that stop)."""
    gradients: float = 0.0  # input-gradient passes (a forward and a backward to the input)
    forwards: float = 0.0   # forward passes besides scoring the image (restarts' picks, queries, crops)
    operators: float = 0.0  # the attack's own tensor operators per batch (launch overhead)


@dataclass(frozen=True)
class DefenseCost:
    """Per training image and step."""
    attack: float    # input-gradient passes to make the training examples
    training: float  # training passes (forward and backward through the parameters)


def iterative(params: dict, default_steps: int = 10, operators_per_step: float = 15.0) -> AttackCost:
    """An iterative gradient attack: restarts x steps x EOT draws gradient passes, one forward per
    restart to keep the best, `operators_per_step` of its own per step."""
    restarts, steps, eot = params.get("restarts", 1), params.get("steps", default_steps), params.get("eot", 1)
    return AttackCost(restarts * steps * eot, restarts, operators_per_step * restarts * steps)
