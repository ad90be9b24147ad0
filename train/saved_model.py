"""Write a Keras classifier as a SavedModel with the contract's two signatures (docs/SAVEDMODEL.md).

- ``predict_images``: ``images`` float32 (None, P) -> ``scores`` float32 (None, K)
- ``serving_default`` (classify): ``inputs`` string (None,) of serialized tf.Example with a float
  feature ``x`` of P values -> ``classes`` string (None, K) and ``scores`` float32 (None, K)

The labels ship as the asset ``labels.txt``; ``classes`` is read from it through a lookup table
initialised from the asset when the model loads, so the labels exist in exactly one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tfship import contract
from tfship.savedmodel import ModelVersion, write_new_version


def _serving_module(keras_model, labels_file: Path, num_pixels: int, num_classes: int):
    import tensorflow as tf

    class MnistServing(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = keras_model
            self.labels_asset = tf.saved_model.Asset(str(labels_file))
            initializer = tf.lookup.TextFileInitializer(
                self.labels_asset, key_dtype=tf.int64, key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
                value_dtype=tf.string, value_index=tf.lookup.TextFileIndex.WHOLE_LINE)
            self.labels_table = tf.lookup.StaticHashTable(initializer, default_value="")

        @tf.function(input_signature=[tf.TensorSpec([None, num_pixels], tf.float32, name=contract.PREDICT_INPUT)])
        def predict_images(self, images):
            return {contract.PREDICT_OUTPUT: self.model(images, training=False)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contract.CLASSIFY_INPUT)])
        def classify(self, inputs):
            features = tf.io.parse_example(
                inputs, {contract.CLASSIFY_FEATURE: tf.io.FixedLenFeature([num_pixels], tf.float32)})
            scores = self.model(features[contract.CLASSIFY_FEATURE], training=False)
            labels = self.labels_table.lookup(tf.range(num_classes, dtype=tf.int64))
            classes = tf.tile(tf.expand_dims(labels, 0), [tf.shape(scores)[0], 1])
            return {contract.CLASSIFY_OUTPUT_CLASSES: classes, contract.CLASSIFY_OUTPUT_SCORES: scores}

    return MnistServing()


def save(keras_model, base: Path, labels: Sequence[str] = contract.MNIST_LABELS) -> ModelVersion:
    """Write ``keras_model`` as the next version under ``base`` (atomically) and return it."""
    import tempfile

    import tensorflow as tf

    num_pixels = int(keras_model.input_shape[-1])
    num_classes = int(keras_model.output_shape[-1])
    if len(labels) != num_classes:
        raise ValueError(f"{len(labels)} labels for a model with {num_classes} outputs")

    def write(tmp: Path) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            labels_file = Path(scratch) / contract.LABELS_ASSET
            labels_file.write_text("\n".join(labels) + "\n", encoding="utf-8")
            module = _serving_module(keras_model, labels_file, num_pixels, num_classes)
            signatures = {
                contract.PREDICT_SIGNATURE: module.predict_images,
                contract.CLASSIFY_SIGNATURE: module.classify,
            }
            tf.saved_model.save(module, str(tmp), signatures=signatures)
        # TF Serving's warmup file (assets.extra/tf_serving_warmup_requests): the version is warm on its
        # first request in tensorflow_model_server and in tfship serve.
        from tfship.serve.warmup import write_for_saved_model

        try:
            write_for_saved_model(tmp, contract.DEFAULT_MODEL_NAME)
        except ModuleNotFoundError as e:  # tensorflow-serving-api comes with the serve extra only
            print(f"note: no warmup file written ({e.name} is not installed; 'pip install tfship[serve]')")

    return write_new_version(base, write)
