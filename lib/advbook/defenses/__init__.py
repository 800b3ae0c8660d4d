"""Defenses: each one is a small function that turns a training batch into a loss.

    loss, logits = defense(model, x, y, **hyperparameters)

`logits` are the ones the loss was computed on (for the training accuracy). The model's mode is
the caller's: `fit` trains in train mode, so examples are generated in train mode as in the
reference implementations. One file per method family: `baselines.py`, `mixture.py` (AdvProp,
ALS, SAT), `adaptive.py` (Kamath et al.'s epoch-level perturbation, a hook of `fit`).
"""
from .adaptive import EpochReplacement, adaptive_selection, epoch_hook, input_gradients, perturb_epoch
from .baselines import fgsm_at, fgsm_rs, pgd_at, standard
from .biparo import mat_rand, natural_mix, pgd_norm_at
from .efgsm import efgsm_training, label_smoothing_ce, reconstruction_only
from .free import free_training
from .goodfellow import fgsm_mix
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


def get(name: str):
    if name not in DEFENSES:
        raise ValueError(f"unknown defense '{name}'; known: {', '.join(sorted(DEFENSES))}")
    return DEFENSES[name]


__all__ = ["DEFENSES", "get", "standard", "fgsm_at", "fgsm_rs", "pgd_at", "mixture", "als_targets", "fgsm_mix",
           "EpochReplacement", "adaptive_selection", "epoch_hook", "input_gradients", "perturb_epoch"]
