import numpy as np
import pytest
import torch

from advbook import data
from conftest import offline_root


def test_digits_is_uint8_and_scales_to_unit_interval(digits):
    assert digits.x_train.dtype == torch.uint8 and digits.x_train.shape[1:] == (1, 8, 8)
    assert len(digits.y_train) + len(digits.y_test) == 1797
    x = data.to_float(digits.x_test)
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
    assert digits.num_classes == 10 and digits.in_channels == 1


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        data.load("imagenet")


def test_missing_offline_file_names_file_and_folder(tmp_path):
    with pytest.raises(data.DataUnavailable) as info:
        data.load("cifar10-jpeg", root=tmp_path)
    assert "cifar10-jpeg.npz" in str(info.value) and str(tmp_path) in str(info.value)
    assert not data.is_available("cifar10-jpeg", root=tmp_path)


def test_corrupted_known_file_is_refused(tmp_path):
    (tmp_path / "cifar10-jpeg.npz").write_bytes(b"not the real file")
    with pytest.raises(data.DataUnavailable, match="sha256"):
        data.load("cifar10-jpeg", root=tmp_path)


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVBOOK_DATA", str(tmp_path / "env"))
    assert data.data_root() == tmp_path / "env"
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("ADVBOOK_DATA")
    assert data.data_root() == data.PROJECT_ROOT / "data" / "datasets"


def test_subset_and_validation_split(digits):
    small = digits.subset(100, 50, seed=1)
    assert len(small.y_train) == 100 and len(small.y_test) == 50
    split = digits.split_validation(200)
    assert len(split.y_val) == 200 and len(split.y_train) == len(digits.y_train) - 200
    with pytest.raises(ValueError):
        digits.split_validation(0)


def test_crop_flip_keeps_shape_and_pixels():
    x = torch.rand(16, 3, 32, 32)
    out = data.augment_crop_flip(x, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(out, x)
    assert out.shape == x.shape
    # every output pixel is an input pixel or padding zero
    assert set(out.unique().tolist()) <= set(x.unique().tolist()) | {0.0}


def test_offline_mnist_copy():
    root = offline_root()
    if root is None or not (root / "mnist.npz").exists():
        pytest.skip("mnist.npz not present (set ADVBOOK_DATA to the folder holding the offline copies)")
    mnist = data.load("mnist", root)
    assert mnist.x_train.shape == (60000, 1, 28, 28) and mnist.x_test.shape == (10000, 1, 28, 28)
    assert mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert mnist.display_name == "MNIST" and mnist.sha256 == data.KNOWN_FILES["mnist.npz"]


def test_offline_cifar10_jpeg_copy_is_named_as_such():
    root = offline_root()
    if root is None or not (root / "cifar10-jpeg.npz").exists():
        pytest.skip("cifar10-jpeg.npz not present (set ADVBOOK_DATA to the folder holding the offline copies)")
    cifar = data.load("cifar10-jpeg", root)
    assert cifar.x_train.shape == (50000, 3, 32, 32) and cifar.x_test.shape == (10000, 3, 32, 32)
    assert cifar.display_name == "CIFAR-10 (JPEG q75 copy)"
    mean = cifar.x_train.float().mean(dim=(0, 2, 3)) / 255
    assert np.allclose(mean.numpy(), [0.4913, 0.4821, 0.4465], atol=0.002)  # the README's decoded statistics
    # the file groups images by class; the loader shuffles, so any prefix holds every class
    assert cifar.y_test[:200].unique().numel() == 10
