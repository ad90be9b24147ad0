"""The MNIST loader: verified reads, and one clear error for a missing, truncated or corrupt file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tfship import mnist
from tfship.errors import DataError


def test_loads_the_four_files(mnist):
    assert mnist.train.images.shape == (60000, 28, 28) and mnist.train.images.dtype == np.uint8
    assert mnist.train.labels.shape == (60000,)
    assert mnist.test.images.shape == (10000, 28, 28)
    assert mnist.test.labels.shape == (10000,)
    # Known facts of the canonical files: the first training label is 5, the first test label 7.
    assert (mnist.train.labels[0], mnist.test.labels[0]) == (5, 7)
    flat = mnist.test.flat_float()
    assert flat.shape == (10000, 784) and flat.dtype == np.float32
    assert 0.0 == flat.min() and flat.max() == 1.0


@pytest.fixture
def data_copy(tmp_path, mnist_dir) -> Path:
    for spec in mnist.FILES.values():
        shutil.copy(mnist_dir / spec.name, tmp_path / spec.name)
    return tmp_path


def test_missing_file_is_named(data_copy):
    (data_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz' is missing.*--data-dir"):
        mnist.load(data_copy)


def test_truncated_file_gives_expected_and_actual_hash(data_copy):
    path = data_copy / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError) as info:
        mnist.load(data_copy)
    message = str(info.value)
    assert "train-labels-idx1-ubyte.gz' is truncated" in message
    assert mnist.FILES["train_labels"].sha256 in message           # expected
    assert mnist.sha256_of(path) in message                         # actual


def test_corrupt_file_of_right_size(data_copy):
    path = data_copy / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[5000] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="is corrupt"):
        mnist.load(data_copy)


def test_environment_variable_and_explicit_dir(monkeypatch, data_copy, tmp_path_factory):
    monkeypatch.setenv(mnist.ENV_VAR, str(data_copy))
    assert mnist.data_dir() == data_copy
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert mnist.data_dir(elsewhere) == elsewhere
    monkeypatch.delenv(mnist.ENV_VAR)
    assert mnist.data_dir() == mnist.CACHE_DIR.expanduser()


def test_never_downloads_unless_asked(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with pytest.raises(DataError, match="missing"):
        mnist.load(tmp_path)
