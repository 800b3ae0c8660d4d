"""Datasets: one registry, images kept as uint8 until used, pixels in [0, 1] when used.

`load(name, root=None)` returns a `Dataset` whatever the source: scikit-learn's bundled
digits (the embedded default, needs nothing), the offline `.npz` copies described in
`shared/data/README.md`, or torchvision's downloaders when a network is there.

Normalization is *not* applied here: it lives inside the model (`advbook.models`), so that
attacks work in pixel space [0, 1] as in torchattacks and RobustBench.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .errors import DataUnavailable  # noqa: F401  (raised here, part of this module's API)
from .paths import PROJECT_ROOT, data_root  # noqa: F401  (data_root is part of this module's API)




@dataclass(frozen=True)
class Dataset:
    name: str            # registry name, e.g. "cifar10-jpeg"
    display_name: str    # what tables and figures must call it
    x_train: torch.Tensor  # uint8, (N, C, H, W)
    y_train: torch.Tensor  # int64, (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple
    source: str          # file or origin the arrays came from
    sha256: str | None   # hash of the source file, when there is one
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[-1])

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training pixels on the [0, 1] scale."""
        x = self.x_train.double() / 255.0
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3))
        return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> "Dataset":
        """A random (seeded) subset of the train and test splits; None keeps a split whole."""
        g = torch.Generator().manual_seed(seed)

        def pick(x, y, n):
            if n is None or n >= len(y):
                return x, y
            idx = torch.randperm(len(y), generator=g)[:n]
            return x[idx], y[idx]

        x_tr, y_tr = pick(self.x_train, self.y_train, n_train)
        x_te, y_te = pick(self.x_test, self.y_test, n_test)
        return replace(self, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)

    def split_validation(self, n_val: int, seed: int = 0) -> "Dataset":
        """Hold out `n_val` random training images as a validation split."""
        if not 0 < n_val < len(self.y_train):
            raise ValueError(f"n_val must be between 1 and {len(self.y_train) - 1}, got {n_val}")
        perm = torch.randperm(len(self.y_train), generator=torch.Generator().manual_seed(seed))
        val, train = perm[:n_val], perm[n_val:]
        return replace(self, x_train=self.x_train[train], y_train=self.y_train[train],
                       x_val=self.x_train[val], y_val=self.y_train[val])


def to_float(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images to float pixels in [0, 1]."""
    return x_uint8.float().div_(255.0)


# --------------------------------------------------------------------------------------
# Data root and known files
# --------------------------------------------------------------------------------------

KNOWN_FILES = {
    # file name -> sha256, from shared/data/README.md
    "mnist.npz": "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
    "cifar10-jpeg.npz": "7b6fa1e0f573f30a8dc17c2688974f03522b44b72693285d156045bc4e1262bf",
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _known_file(root: Path, file_name: str) -> tuple[Path, str] | None:
    """The path and verified hash of a known file in `root`, or None when it is absent."""
    path = root / file_name
    if not path.exists():
        return None
    digest = _sha256(path)
    if digest != KNOWN_FILES[file_name]:
        raise DataUnavailable(
            f"{path} exists but its sha256 is {digest}, not the expected {KNOWN_FILES[file_name]}; "
            f"replace it with an intact copy of {file_name}.")
    return path, digest


def _cache_dir(root: Path) -> Path:
    """Where decoded arrays are cached: beside the data if writable, else in the project."""
    for candidate in (root / ".advbook-cache", PROJECT_ROOT / "data" / "datasets" / ".advbook-cache"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            probe = candidate / ".write-test"
            probe.touch()
            probe.unlink()
            return candidate
        except OSError:
            continue
    raise DataUnavailable(f"no writable cache folder under {root} or the project's data/datasets/")


def _missing(name: str, root: Path, file_name: str | None, why: str = "") -> DataUnavailable:
    where = f"put {file_name} into {root} (or point --data-root / ADVBOOK_DATA at the folder holding it)" \
        if file_name else f"run once with a network so torchvision can download it into {root}"
    extra = f" ({why})" if why else ""
    return DataUnavailable(f"dataset '{name}' is not available offline{extra}: {where}.")


# --------------------------------------------------------------------------------------
# Loaders, one per source
# --------------------------------------------------------------------------------------

def _digits(root: Path) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # pixel values are 0..16; rescale to uint8 0..255 so every dataset shares one format
    x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = bunch.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(y))
    n_test = 450  # scikit-learn's usual 25 % test share of 1,797 images
    test, train = perm[:n_test], perm[n_test:]
    return Dataset("digits", "scikit-learn digits (8x8)",
                   torch.from_numpy(x[train]), torch.from_numpy(y[train]),
                   torch.from_numpy(x[test]), torch.from_numpy(y[test]),
                   tuple(str(i) for i in range(10)), "sklearn.datasets.load_digits", None)


def _mnist(root: Path) -> Dataset:
    found = _known_file(root, "mnist.npz")
    if found is not None:
        path, digest = found
        with np.load(path) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        return Dataset("mnist", "MNIST",
                       torch.from_numpy(arrays["x_train"][:, None].copy()),
                       torch.from_numpy(arrays["y_train"].astype(np.int64)),
                       torch.from_numpy(arrays["x_test"][:, None].copy()),
                       torch.from_numpy(arrays["y_test"].astype(np.int64)),
                       tuple(str(i) for i in range(10)), str(path), digest)
    return _torchvision("mnist", root, file_name="mnist.npz")


def _decode_jpegs(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(offsets) - 1, 32, 32, 3), dtype=np.uint8)
    for i in range(len(offsets) - 1):
        out[i] = np.asarray(Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB"))
    return out


def _cifar10_jpeg(root: Path) -> Dataset:
    found = _known_file(root, "cifar10-jpeg.npz")
    if found is None:
        raise _missing("cifar10-jpeg", root, "cifar10-jpeg.npz")
    path, digest = found
    cache = _cache_dir(root)
    arrays = {}
    with np.load(path) as z:
        classes = tuple(str(c) for c in z["classes"])
        for split in ("train", "test"):
            cached = cache / f"cifar10-jpeg-{digest[:12]}-{split}.npy"
            if not cached.exists():  # decoding 60,000 JPEGs takes a few seconds: do it once
                tmp = cached.with_suffix(".tmp.npy")
                np.save(tmp, _decode_jpegs(z[f"x_{split}_jpeg"], z[f"x_{split}_offsets"]))
                tmp.replace(cached)
            arrays[f"x_{split}"] = np.load(cached)
            arrays[f"y_{split}"] = z[f"y_{split}"].astype(np.int64)
    # the file groups images by class: a fixed shuffle makes every prefix (an evaluation
    # subset, say) a random sample of all classes
    shuffled = {}
    for split in ("train", "test"):
        order = np.random.default_rng(0).permutation(len(arrays[f"y_{split}"]))
        shuffled[f"x_{split}"] = torch.from_numpy(arrays[f"x_{split}"][order]).permute(0, 3, 1, 2).contiguous()
        shuffled[f"y_{split}"] = torch.from_numpy(arrays[f"y_{split}"][order])
    return Dataset("cifar10-jpeg", "CIFAR-10 (JPEG q75 copy)", shuffled["x_train"], shuffled["y_train"],
                   shuffled["x_test"], shuffled["y_test"], classes, str(path), digest)


_TORCHVISION = {
    # name: (torchvision class name, display name, split keyword style)
    "mnist": ("MNIST", "MNIST", "train"),
    "fashion-mnist": ("FashionMNIST", "Fashion-MNIST", "train"),
    "cifar10": ("CIFAR10", "CIFAR-10", "train"),
    "cifar100": ("CIFAR100", "CIFAR-100", "train"),
    "svhn": ("SVHN", "SVHN", "split"),
}


def _torchvision(name: str, root: Path, file_name: str | None = None) -> Dataset:
    import torchvision.datasets as tvd

    cls_name, display, style = _TORCHVISION[name]
    cls = getattr(tvd, cls_name)
    target = root / "torchvision"
    try:
        if style == "split":
            train = cls(str(target), split="train", download=True)
            test = cls(str(target), split="test", download=True)
        else:
            train = cls(str(target), train=True, download=True)
            test = cls(str(target), train=False, download=True)
    except Exception as exc:  # no network, or a partial download
        raise _missing(name, root, file_name, why=f"torchvision could not fetch it: {type(exc).__name__}") from exc

    def arrays(ds):
        x = np.asarray(ds.data)
        if x.ndim == 3:                     # (N, H, W) grayscale
            x = x[:, None]
        elif x.shape[-1] == 3:              # (N, H, W, C)
            x = x.transpose(0, 3, 1, 2)
        y = np.asarray(getattr(ds, "targets", None) if hasattr(ds, "targets") else ds.labels)
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8)), torch.from_numpy(y.astype(np.int64))

    x_tr, y_tr = arrays(train)
    x_te, y_te = arrays(test)
    classes = tuple(str(c) for c in getattr(train, "classes", range(int(y_tr.max()) + 1)))
    return Dataset(name, display, x_tr, y_tr, x_te, y_te, classes, f"torchvision.datasets.{cls_name}", None)


LOADERS = {
    "digits": _digits,
    "mnist": _mnist,
    "fashion-mnist": lambda root: _torchvision("fashion-mnist", root),
    "cifar10": lambda root: _torchvision("cifar10", root),
    "cifar10-jpeg": _cifar10_jpeg,
    "cifar100": lambda root: _torchvision("cifar100", root),
    "svhn": lambda root: _torchvision("svhn", root),
}

_CACHE: dict[tuple[str, str], Dataset] = {}


def load(name: str, root: str | os.PathLike | None = None) -> Dataset:
    """Load a dataset by registry name (see `LOADERS`); raises `DataUnavailable` offline."""
    if name not in LOADERS:
        raise ValueError(f"unknown dataset '{name}'; known: {', '.join(sorted(LOADERS))}")
    resolved = data_root(root)
    key = (name, str(resolved))
    if key not in _CACHE:  # a notebook asks for the same dataset once per experiment
        _CACHE[key] = LOADERS[name](resolved)
    return _CACHE[key]


def is_available(name: str, root: str | os.PathLike | None = None) -> bool:
    """True if `load(name, root)` succeeds here (it loads, and caches, the dataset)."""
    try:
        load(name, root)
    except DataUnavailable:
        return False
    return True


def augment_crop_flip(x: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Batched random crop (zero padding) and horizontal flip, as in the CIFAR recipes.

    Runs on x's device with no host round trip; `generator` must live on that device too.
    """
    n, c, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n, 1), device=dev, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), device=dev, generator=generator)
    rows = dy + torch.arange(h, device=dev)                       # (n, h) source rows
    cols = dx + torch.arange(w, device=dev)                       # (n, w) source columns
    batch = torch.arange(n, device=dev)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    flip = torch.rand(n, device=dev, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out).contiguous()


def random_erasing(x: torch.Tensor, probability: float, area=(0.02, 0.4), aspect=(0.3, 1 / 0.3),
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Batched random erasing (Zhong et al., AAAI 2020): with `probability`, one rectangle per
    image of area s * H * W, s ~ U(area), and aspect ratio r ~ log-U(aspect) (height sqrt(s H W r),
    width sqrt(s H W / r)) is filled with uniform noise in [0, 1] (their RE-R). Where the paper
    redraws a rectangle that does not fit, this clips it to the image (one draw, no host loop).
    """
    n, c, h, w = x.shape
    dev = x.device
    u = torch.rand(n, 5, device=dev, generator=generator)
    s = (area[0] + (area[1] - area[0]) * u[:, 0]) * h * w
    r = torch.exp(math.log(aspect[0]) + (math.log(aspect[1]) - math.log(aspect[0])) * u[:, 1])
    eh = (s * r).sqrt().round().clamp(1, h).long()
    ew = (s / r).sqrt().round().clamp(1, w).long()
    top = (u[:, 2] * (h - eh + 1)).floor().long()
    left = (u[:, 3] * (w - ew + 1)).floor().long()
    rows = torch.arange(h, device=dev)[None, :]
    cols = torch.arange(w, device=dev)[None, :]
    inside = (((rows >= top[:, None]) & (rows < (top + eh)[:, None]))[:, :, None]
              & ((cols >= left[:, None]) & (cols < (left + ew)[:, None]))[:, None, :])
    erase = (inside & (u[:, 4] < probability)[:, None, None])[:, None]
    noise = torch.rand(x.shape, device=dev, generator=generator, dtype=x.dtype)
    return torch.where(erase, noise, x)
