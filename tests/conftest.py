"""Shared fixtures: MNIST from the offline copy and one briefly trained CNN run for the whole session.

Tests never download: MNIST comes from $TFSHIP_MNIST_DIR, or ../shared/data/mnist beside the repo.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

if not os.environ.get("TFSHIP_MNIST_DIR") and _SHARED_MNIST.is_dir():
    os.environ["TFSHIP_MNIST_DIR"] = str(_SHARED_MNIST)
# Quiet TensorFlow's C++ start-up chatter in test logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    path = os.environ.get("TFSHIP_MNIST_DIR")
    if not path or not Path(path).is_dir():
        pytest.fail("MNIST not found: set TFSHIP_MNIST_DIR to a folder with the four MNIST .gz files")
    return Path(path)


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from tfship import mnist as mnist_module

    return mnist_module.load(mnist_dir)


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory, mnist_dir) -> Path:
    """A run folder with a CNN trained for one epoch on 12k images (~97% test accuracy).

    Trained well enough that its top-1 decisions are not coin flips, so int8/fp16 agreement checks
    are meaningful, and quickly enough (~30 s on 2 cores) for every test session.
    """
    from tfship.train.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "cnn"
    train(TrainConfig(arch="cnn", out=out, epochs=1, train_limit=12000, seed=1, data_dir=mnist_dir,
                      plots=False, verbose=0))
    return out


@pytest.fixture(scope="session")
def cnn_exports(cnn_run):
    """Every registered format of the session's CNN, exported once (not verified: test_verify does that).
    The CoreML class is the iOS demo's (``--coreml-name MNISTClassifier``, as scripts/demo.sh passes)."""
    from tfship.export.base import ExportOptions
    from tfship.export.pipeline import ExportConfig, export_all

    return export_all(ExportConfig(model=cnn_run, options=ExportOptions(coreml_name="MNISTClassifier")),
                      progress=lambda *_: None)
