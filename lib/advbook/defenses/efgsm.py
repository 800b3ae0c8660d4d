"""Chen and Lee (2021): eFGSM adversarial training with a classifier C and a re-constructor R
(their Sections 3.1-3.3), the re-constructor alone ("REC", Section 4.2), and label smoothing.

The eFGSM defense keeps a sign memory Gamma per training image (N x C x H x W), so it is a
`stateful` factory (`fit` calls it once per run with the training-set size) whose defense
`wants_index`: the batch's dataset indices say whose memory to read and update. It also counts,
per epoch, the share of "high-risk" images (Delta < eps or misclassified at x^e), the paper's
free early-stopping estimate, which `end_epoch` hands to the epoch's history as `high_risk`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attacks.efgsm import efgsm_example, update_sign_memory
from ..models.reconstructor import reconstructor_of


def label_smoothing_ce(logits, y, smoothing: float = 0.1):
    """Cross-entropy against the smoothed target (1 - s) onehot(y) + s / K (Szegedy et al. 2016)."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    return F.cross_entropy(logits, y, label_smoothing=smoothing)


def joint_loss(model, x_hat, x, y, lam: float, smoothing: float, reconstruct: bool = True):
    """Eq. 16: min_theta L_R(R(softmax C(x_hat)), x) + lambda L_C(C(x_hat), y_smooth), with L_R the
    pixel-mean squared error and L_C the label-smoothing cross-entropy; the gradient of L_R flows
    through C's probabilities into C. Without `reconstruct`: L_C alone (the "AdvTrain" ablation)."""
    logits = model(x_hat)
    classification = label_smoothing_ce(logits, y, smoothing)
    if not reconstruct:
        return classification, logits
    reconstruction = reconstructor_of(model)(logits.float().softmax(1))
    return F.mse_loss(reconstruction, x) + lam * classification, logits


def reconstruction_only(model, x, y, lam: float = 0.1, smoothing: float = 0.1):
    """The "REC" ablation (Section 4.2): Eq. 16 on unmodified images, x_hat = x."""
    return joint_loss(model, x, x, y, lam, smoothing)


class EfgsmRun:
    """One run's eFGSM training defense: Eqs. 11-14 and 16 with a sign memory per image."""

    wants_index = True

    def __init__(self, n_train: int, device):
        self.n_train, self.device = n_train, torch.device(device)
        self.gamma = None       # allocated at the first batch, when the image shape is known
        self._risky = self._seen = 0

    def __call__(self, model, x, y, eps: float, sigma: float, lam: float = 0.1, smoothing: float = 0.1,
                 reconstruct: bool = True, decay: float = 0.95, classes: str = "runner-up",
                 project: bool = True, *, index):
        if self.gamma is None:  # fp16 on a GPU: the memory is 4 bytes a pixel otherwise (188 MB on MNIST)
            dtype = torch.float16 if self.device.type == "cuda" else torch.float32
            self.gamma = torch.zeros(self.n_train, *x.shape[1:], dtype=dtype, device=self.device)
        example = efgsm_example(model, x, y, eps, sigma, self.gamma[index], classes=classes, project=project)
        # each image is seen once per epoch, so updating its row now equals an end-of-epoch update
        self.gamma[index] = update_sign_memory(self.gamma[index].float(), example.x_adv, x, decay).to(self.gamma.dtype)
        self._risky += example.at_risk.sum()  # a device tensor: read once per epoch, no host sync per step
        self._seen += len(y)
        return joint_loss(model, example.x_adv, x, y, lam, smoothing, reconstruct)

    def end_epoch(self) -> dict:
        """The epoch's share of high-risk images among those trained on (`fit` calls it)."""
        share = float(self._risky) / self._seen if self._seen else float("nan")
        self._risky = self._seen = 0
        return {"high_risk": share}


def efgsm_training(n_train: int, device):
    """The DEFENSES entry: a fresh `EfgsmRun` (zero sign memory) per training run."""
    return EfgsmRun(n_train, device)


efgsm_training.stateful = True
