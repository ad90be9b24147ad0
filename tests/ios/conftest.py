"""Fixtures for the iOS app checks: an exported CoreML classifier and a scratch copy of the app."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tfship.export.ios_install import APP_CONTRACT, APP_PROJECT_FILE

APP_DIR = Path(__file__).resolve().parents[2] / "ios_demo"


def _contract_classifier(out_dir: Path) -> Path:
    """Stand-in for tfship.export.coreml.CoremlExporter until it lands: the untrained softmax
    model converted with coremltools to the contract (docs: the CoreML model contract)."""
    import coremltools as ct
    import tensorflow as tf

    from tfship import contract
    from tfship.train import models

    keras_model = models.build("softmax")  # one Dense layer: converts in ~1 s

    @tf.function(input_signature=[tf.TensorSpec([1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1],
                                                tf.float32, name=APP_CONTRACT.input_name)])
    def predict(image):
        return keras_model(tf.reshape(image, [-1, contract.NUM_PIXELS]), training=False)

    mlmodel = ct.convert(
        [predict.get_concrete_function()], source="tensorflow", convert_to="neuralnetwork",
        inputs=[ct.ImageType(name=APP_CONTRACT.input_name, shape=(1, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 1),
                             color_layout=ct.colorlayout.GRAYSCALE, scale=APP_CONTRACT.pixel_scale)],
        classifier_config=ct.ClassifierConfig(list(contract.MNIST_LABELS)))
    spec = mlmodel.get_spec()
    # The converter names the probabilities after the TF output ("Identity").
    ct.utils.rename_feature(spec, spec.description.predictedProbabilitiesName, APP_CONTRACT.probabilities_output)
    path = out_dir / f"{APP_CONTRACT.class_name}.mlmodel"
    ct.utils.save_spec(spec, str(path))
    return path


@pytest.fixture(scope="session")
def exported_mlmodel(tmp_path_factory) -> Path:
    """A freshly exported MNISTClassifier.mlmodel (read-only: copy it before altering)."""
    return _contract_classifier(tmp_path_factory.mktemp("coreml"))


@pytest.fixture
def app_copy(tmp_path) -> Path:
    """An app folder to install into, so tests never touch the real ios_demo/."""
    app = tmp_path / "ios_demo"
    (app / "MNISTDemo" / "Model").mkdir(parents=True)
    shutil.copy(APP_DIR / APP_PROJECT_FILE, app / APP_PROJECT_FILE)
    return app
