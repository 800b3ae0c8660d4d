"""Defenses: each turns a training batch into a loss. The protocol, in one place (`fit` follows it):

    loss, logits = defense(model, x, y, **hyperparameters)

- `logits` are the ones the loss was computed on (for the training accuracy); the loss is a
  finite scalar that backpropagates to the model's parameters (the contract tests check every
  registered defense). The model's mode is the caller's: `fit` trains in train mode, so examples
  are generated in train mode as in the reference implementations.
- A defense with `wants_index = True` is also given the batch's dataset indices (`index=`).
- A registry entry with `stateful = True` is a factory, called once per training run as
  `factory(n_train=..., device=...)`; what it returns is the defense (per-image memories:
  eFGSM's sign memory, Free-AT's carried perturbation).
- A defense that works per epoch rather than per batch is a before-epoch hook of `fit`, named by
  `TrainConfig.epoch_perturbation` (Kamath et al.'s epoch-level perturbation).

Files are named by the method they hold: `baselines.py` (standard, FGSM, FGSM-RS, PGD-AT),
`fgsm_mix.py` (Goodfellow et al.'s mixed objective), `mat_rand.py` (L2/L-inf PGD training,
MAT-Rand and the natural-batch mix), `mixture.py` (AdvProp, ALS, SAT in one loop), `efgsm.py`
(eFGSM and its re-constructor), `free.py` (Free-AT), `trades.py` (TRADES), `epoch_perturbation.py`
(the per-epoch hook). Adding one: its file, one line in `DEFENSES` and one in `COSTS` (what a
training step costs, `advbook.costs`; see the README).
"""
from ..costs import DefenseCost
from .epoch_perturbation import EpochReplacement, adaptive_selection, epoch_hook, input_gradients, perturb_epoch
from .baselines import fgsm_at, fgsm_rs, pgd_at, standard
from .mat_rand import mat_rand, natural_mix, pgd_norm_at
from .efgsm import efgsm_training, label_smoothing_ce, reconstruction_only
from .free import free_training
from .fgsm_mix import fgsm_mix
from .mixture import als_targets, mixture
from .trades import trades

DEFENSES = {
    "standard": standard,
    "fgsm": fgsm_at,
    "fgsm-rs": fgsm_rs,
    "pgd": pgd_at,
    "mixture": mixture,
    "fgsm-mix": fgsm_mix,
    "efgsm": efgsm_training,        # Chen and Lee: eFGSM (+ re-constructor); stateful, per-image sign memory
    "rec": reconstruction_only,     # Chen and Lee's "REC" ablation
    "trades": trades,
    "free": free_training,          # Shafahi et al.; stateful, with TrainConfig.replay = m
    "pgd-norm": pgd_norm_at,        # PGD training in the L-inf or L2 ball (BIPARO Table 1)
    "mat-rand": mat_rand,           # BIPARO / Araujo et al.: L-inf or L2 PGD at random, per batch
    "natural-mix": natural_mix,     # BIPARO Section 3.3: natural batches among MAT-Rand ones
}


def _steps(p: dict) -> float:
    return float(p.get("steps", 10))


def _mat_rand(p: dict) -> DefenseCost:  # the longer of the two attacks it draws from
    return DefenseCost(float(max(p.get("linf", {}).get("steps", 10), p.get("l2", {}).get("steps", 10))), 1.0)


# what a training step costs per image, from the defense's parameters
COSTS = {
    "standard": lambda p: DefenseCost(0.0, 1.0),
    "fgsm": lambda p: DefenseCost(1.0, 1.0),
    "fgsm-rs": lambda p: DefenseCost(1.0, 1.0),
    "pgd": lambda p: DefenseCost(_steps(p), 1.0),
    "mixture": lambda p: DefenseCost(_steps(p), 2.0) if p.get("adversarial") else DefenseCost(0.0, 1.0),
    "fgsm-mix": lambda p: DefenseCost(1.0, 2.0),
    "efgsm": lambda p: DefenseCost(2.0, 2.0),   # the runner-up step and the sign step; classifier and re-constructor
    "rec": lambda p: DefenseCost(0.0, 2.0),     # classifier and re-constructor
    "trades": lambda p: DefenseCost(_steps(p), 2.0),  # the KL steps; the clean and adversarial forwards
    "free": lambda p: DefenseCost(0.0, 1.0),    # the training backward gives the attack its gradient
    "pgd-norm": lambda p: DefenseCost(_steps(p), 1.0),
    "mat-rand": _mat_rand,
    "natural-mix": _mat_rand,
}


def get(name: str):
    if name not in DEFENSES:
        raise ValueError(f"unknown defense '{name}'; known: {', '.join(sorted(DEFENSES))}")
    return DEFENSES[name]


__all__ = ["COSTS", "DEFENSES", "get", "standard", "fgsm_at", "fgsm_rs", "pgd_at", "mixture", "als_targets", "fgsm_mix",
           "efgsm_training", "label_smoothing_ce", "reconstruction_only", "free_training", "trades", "mat_rand",
           "natural_mix", "pgd_norm_at", "EpochReplacement", "adaptive_selection", "epoch_hook", "input_gradients",
           "perturb_epoch"]
