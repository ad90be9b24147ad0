"""Helpers shared by the serving tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODEL = "mnist"
MAX_REQUEST_BYTES = 1 << 20  # small, so the size-limit test needs only a 2 MiB body


def write_version(base: Path, seed: int = 0):
    """Write the next version of an untrained, seeded CNN under ``base``."""
    import keras

    from tfship.train import models, saved_model

    keras.utils.set_random_seed(seed)
    return saved_model.save(models.build("cnn"), base)


def predict_request(images: np.ndarray, name: str = MODEL, signature: str = "predict_images", version=None,
                    label=None):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    req.model_spec.signature_name = signature
    if version is not None:
        req.model_spec.version.value = version
    if label is not None:
        req.model_spec.version_label = label
    req.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    return req


def example_bytes(image: np.ndarray) -> bytes:
    from tensorflow.core.example import example_pb2

    ex = example_pb2.Example()
    ex.features.feature["x"].float_list.value.extend(image.tolist())
    return ex.SerializeToString()
