"""Small served image classifiers other than MNIST, built the way users build them today (Keras 3,
``model.export()``), for the clients to read: an RGB float model, a grayscale uint8 model of a
non-square size, a model whose signature returns class names beside the scores, one that takes
encoded image files (TF Serving's ResNet example signature), and a model whose next version (staged,
published by a test) takes another input."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

RGB_SHAPE = (32, 32, 3)  # keras.Input(shape=(32, 32, 3), name="pixels"), float32: the model
GRAY_U8_SHAPE = (24, 20, 1)  # H != W, so a swapped resize shows
FLAT_RGB = (8, 8, 3)  # the labelled model takes flat [N, 192] RGB pixels
LABELS = ("cat", "dog", "bird", "fish")
SWAP_V2_SHAPE = (16, 16, 3)


@dataclass(frozen=True)
class ServedModel:
    name: str
    base: Path  # TF Serving layout: base/1/saved_model.pb


def _classifier(keras, inputs, classes: int, seed: int):
    keras.utils.set_random_seed(seed)
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs) if inputs.dtype == "uint8" else inputs
    if len(inputs.shape) == 2:
        x = keras.layers.Reshape(FLAT_RGB)(x)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    # A wide random dense layer: softmax scores far from uniform, so top-1 is not a near-tie.
    x = keras.layers.Dense(classes, kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))(x)
    return keras.Model(inputs, keras.layers.Softmax()(x))


def build_models(root: Path) -> dict[str, ServedModel]:
    import keras
    import tensorflow as tf

    rgb = _classifier(keras, keras.Input(shape=RGB_SHAPE, name="pixels"), 5, seed=1)
    rgb.export(str(root / "rgb" / "1"), verbose=False)
    gray = _classifier(keras, keras.Input(shape=GRAY_U8_SHAPE, dtype="uint8", name="image"), 3, seed=2)
    gray.export(str(root / "gray_u8" / "1"), verbose=False)

    flat = _classifier(keras, keras.Input(shape=(FLAT_RGB[0] * FLAT_RGB[1] * FLAT_RGB[2],), name="image"),
                       len(LABELS), seed=3)

    class Labelled(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = flat
            self.labels = tf.constant(LABELS)

        @tf.function(input_signature=[tf.TensorSpec([None, 192], tf.float32, name="image")])
        def classify(self, image):
            scores = self.model(image)
            # TF Serving's classify signatures return the class names per image, [N, K].
            classes = tf.tile(self.labels[tf.newaxis], [tf.shape(image)[0], 1])
            return {"probabilities": scores, "classes": classes}

    module = Labelled()
    tf.saved_model.save(module, str(root / "labelled" / "1"), signatures={"serving_default": module.classify})

    class EncodedImages(tf.Module):
        """TF Serving's ResNet example signature: image_bytes string [N] -> classes int64, probabilities."""

        def __init__(self):
            super().__init__()
            self.model = rgb

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def predict(self, image_bytes):
            def decode(data):
                image = tf.io.decode_image(data, channels=3, expand_animations=False)
                return tf.image.resize(tf.cast(image, tf.float32) / 255.0, RGB_SHAPE[:2])

            pixels = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec(RGB_SHAPE, tf.float32))
            probabilities = self.model(pixels)
            return {"classes": tf.argmax(probabilities, axis=1), "probabilities": probabilities}

    encoded = EncodedImages()
    tf.saved_model.save(encoded, str(root / "encoded" / "1"), signatures={"serving_default": encoded.predict})

    # "swap" serves the RGB model as version 1; version 2, staged beside it for a test to publish,
    # takes another input (name and size): a client's cached metadata goes stale.
    shutil.copytree(root / "rgb" / "1", root / "swap" / "1")
    swapped = _classifier(keras, keras.Input(shape=SWAP_V2_SHAPE, name="image"), 5, seed=4)
    swapped.export(str(root / "swap_v2_staged"), verbose=False)
    return {name: ServedModel(name, root / name) for name in ("rgb", "gray_u8", "labelled", "encoded", "swap")}


def write_config(models: dict[str, ServedModel], path: Path) -> Path:
    """A TF Serving model config file listing the models."""
    entries = "".join(f'  config {{ name: "{m.name}" base_path: "{m.base}" model_platform: "tensorflow" }}\n'
                      for m in models.values())
    path.write_text(f"model_config_list {{\n{entries}}}\n")
    return path
