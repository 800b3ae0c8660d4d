import os
from pathlib import Path

import pytest
import torch

from advbook import data, models
from advbook.train import TrainConfig, fit

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_results(tmp_path, monkeypatch):
    """Every test writes results into its own folder, never into data/results/."""
    monkeypatch.setenv("ADVBOOK_RESULTS", str(tmp_path / "results"))


@pytest.fixture(scope="session")
def digits():
    return data.load("digits")


def tiny_model(dataset, seed=0, width=8):
    torch.manual_seed(seed)
    mean, std = dataset.channel_stats()
    return models.build("small-cnn", dataset.num_classes, dataset.in_channels, mean=mean, std=std, width=width)


@pytest.fixture(scope="session")
def trained(digits):
    """A small CNN trained briefly on digits, in eval mode (shared; tests must not train it)."""
    model = tiny_model(digits)
    fit(model, digits, TrainConfig(epochs=4, batch_size=64, lr=0.1, schedule="cyclic"), device=torch.device("cpu"),
        progress=False)
    return model.eval()


def offline_root():
    """The folder holding the offline dataset copies, or None."""
    env = os.environ.get("ADVBOOK_DATA")
    for candidate in ([Path(env)] if env else []) + [SHARED_DATA]:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture
def make_model():
    return tiny_model
