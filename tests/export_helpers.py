"""Models and artifact surgery for the export and verify tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def generic_classifier(base: Path, seed: int = 0) -> tuple[Path, np.ndarray]:
    """A non-MNIST classifier saved with Keras 3's ``model.export`` (signatures ``serve`` and
    ``serving_default``, input named after the keras.Input, output ``output_0``): 32x32x3 input, 100
    classes, no label file. Trained briefly on synthetic class prototypes so its top-1 is decisive.
    Returns the base folder and the images it knows (for calibration and verification)."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    prototypes = rng.random((100, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 100, 3000)
    x = (0.7 * prototypes[labels] + 0.3 * rng.random((3000, 32, 32, 3), dtype=np.float32)).astype(np.float32)
    inputs = keras.Input(shape=(32, 32, 3), name="pixels")
    h = keras.layers.Conv2D(16, 3, padding="same")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Activation("relu")(h)
    h = keras.layers.AveragePooling2D(2)(h)
    h = keras.layers.Conv2D(32, 3, padding="valid", activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(100, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=4, batch_size=64, verbose=0)
    model.export(str(base / "1"), verbose=False)
    return base, x[:1000]


def onnx_reverse_outputs(path: Path, out: Path) -> None:
    """Reverse the class order of the output: a model that computes the right numbers in the wrong slots."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    final = graph.output[0].name
    producer = next(n for n in graph.node if final in n.output)
    producer.output[:] = [final + "_unordered" if o == final else o for o in producer.output]
    classes = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    graph.initializer.append(numpy_helper.from_array(np.arange(classes - 1, -1, -1, dtype=np.int64), "reverse_idx"))
    graph.node.append(helper.make_node("Gather", [final + "_unordered", "reverse_idx"], [final], axis=1))
    onnx.save(model, str(out))
