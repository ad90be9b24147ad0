"""CoreML test fixtures: a briefly trained CNN SavedModel (seconds, not the session's 30 s run) and
its CoreML exports, shared by the tests in this folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coreml_helpers import contract_source

from tfship.export.base import ExportOptions, SourceModel


@pytest.fixture(scope="session")
def cnn_source(tmp_path_factory, mnist) -> SourceModel:
    """The contract CNN fitted on 2,048 images for one epoch: decisive softmax outputs in ~5 s."""
    import keras

    from tfship.train import models, saved_model

    keras.utils.set_random_seed(3)
    model = models.build("cnn")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(mnist.train.flat_float()[:2048], mnist.train.labels[:2048], epochs=1, batch_size=64, verbose=0)
    return contract_source(saved_model.save(model, tmp_path_factory.mktemp("coreml_cnn") / "base"))


@pytest.fixture(scope="session")
def coreml_exports(cnn_source, tmp_path_factory) -> tuple[Path, list]:
    """Default export: MNISTClassifier.mlmodel (fp32) and MNISTClassifier.mlpackage (fp16)."""
    from tfship.export.coreml import CoremlExporter

    out = tmp_path_factory.mktemp("coreml_default")
    return out, CoremlExporter().export(cnn_source, out, ExportOptions(version_string="1.2.3"))


@pytest.fixture(scope="session")
def coreml_fp32_exports(cnn_source, tmp_path_factory) -> tuple[Path, list]:
    from tfship.export.coreml import CoremlExporter

    out = tmp_path_factory.mktemp("coreml_fp32")
    return out, CoremlExporter().export(cnn_source, out, ExportOptions(coreml_precision="fp32"))


@pytest.fixture(scope="session")
def mnist_images(mnist) -> np.ndarray:
    return mnist.test.flat_float()[:512]


@pytest.fixture(scope="session")
def tf_scores(cnn_source, mnist_images) -> np.ndarray:
    import tensorflow as tf

    sig = tf.saved_model.load(str(cnn_source.path)).signatures[cnn_source.signature_key]
    return sig(**{cnn_source.input.name: tf.constant(mnist_images)})[cnn_source.output.name].numpy()
