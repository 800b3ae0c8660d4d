"""The book's profiles (its scales), the one place a profile's name is read.

A profile is a scale a chapter can be computed at: its rank among the scales (smallest first), the
kind of device it is sized for, whether its numbers may decide a claim, and the precision its
models train in by default. Every other module asks a `Profile` (`get(name)`) instead of comparing
its name, so adding a scale is one line of `TABLE` plus each chapter's settings for it (see the
README's "Adding a profile").
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ParameterError


@dataclass(frozen=True)
class Profile:
    name: str
    rank: int          # order among the scales, smallest first
    device: str        # "cpu" or "gpu": the device the profile is sized for
    decides: bool      # whether its runs may confirm or refute a claim
    precision: str     # the training precision its chapters use by default

    @property
    def on_gpu(self) -> bool:
        return self.device == "gpu"


# the cpu profiles train in fp32, which every CPU computes natively: without bf16 hardware (AVX2
# only, as on the machines the book is computed on now) bf16 is emulated and trained 5 to 7 times
# slower than fp32 there (timed by hand, not stored as a bench record); with it (AMX,
# AVX512-BF16), `-p precision bf16` with channels_last trains 1.3 to 3.2 times faster
# (data/bench/bench-cpu.json). The GPU profiles keep bf16 (`advbook.train.fast_path`).
TABLE = (
    Profile("smoke", 0, "cpu", False, "fp32"),   # toy data in seconds: proves the pipeline, decides nothing
    Profile("cpu", 1, "cpu", True, "fp32"),      # real data on two CPU cores
    Profile("fast", 2, "gpu", True, "bf16"),     # one GPU, a budgeted window
    Profile("paper", 3, "gpu", True, "bf16"),    # the paper's settings
)
PROFILES = {p.name: p for p in TABLE}
NAMES = tuple(PROFILES)          # smallest scale first
DEFAULT = TABLE[0].name          # what a command runs when no profile is named


def get(name: str) -> Profile:
    """The profile called `name`, or a ParameterError naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ParameterError(f"unknown profile {name!r}; known: {', '.join(NAMES)}") from None


def by_rank(names) -> list[str]:
    """`names` from the smallest scale to the largest."""
    return sorted(names, key=lambda n: get(n).rank)


def largest(names) -> str:
    return by_rank(names)[-1]


def smallest_on(device: str) -> str:
    """The smallest profile sized for a device kind ("cpu" or "gpu")."""
    return next(p.name for p in TABLE if p.device == device)
