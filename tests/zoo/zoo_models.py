"""Real image classifiers as users save them, for the zoo tests and benchmarks/zoo.py.

- keras.applications architectures with random weights (``weights=None``), small inputs and 10 classes,
  written by Keras 3's own ``model.export()`` (signatures ``serve`` and ``serving_default``);
- a TF1-style SavedModel (``tf.compat.v1`` placeholders and ``SavedModelBuilder``) with a predict
  signature over flat 8x8 images and a classify signature over serialized ``tf.Example``, whose class
  names come from a string constant (as in TF Serving's ``mnist_saved_model.py`` tutorial);
- a ``tf.Module`` exported with ``tf.saved_model.save`` whose output is logits (no softmax).

Nothing is downloaded. Each builder writes ``<base>/1`` and returns the base folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

# name -> (keras.applications constructor, extra kwargs, smallest practical input side)
KERAS_APPS: dict[str, tuple[str, dict, int]] = {
    "MobileNetV2": ("MobileNetV2", {"alpha": 0.35}, 32),
    "MobileNetV3Small": ("MobileNetV3Small", {"include_preprocessing": True}, 32),
    "MobileNetV3Large": ("MobileNetV3Large", {}, 32),
    "EfficientNetB0": ("EfficientNetB0", {}, 32),
    "EfficientNetV2B0": ("EfficientNetV2B0", {}, 32),
    "DenseNet121": ("DenseNet121", {}, 32),
    "ResNet50": ("ResNet50", {}, 32),
    "ResNet50V2": ("ResNet50V2", {}, 32),
    "ConvNeXtTiny": ("ConvNeXtTiny", {}, 32),
    "Xception": ("Xception", {}, 71),
    "InceptionV3": ("InceptionV3", {}, 75),
    "NASNetMobile": ("NASNetMobile", {}, 32),
}


def keras_app(name: str, base: Path, side: int | None = None, classes: int = 10, seed: int = 0) -> Path:
    import keras

    ctor, kwargs, smallest = KERAS_APPS[name]
    side = max(side or smallest, smallest)
    keras.utils.set_random_seed(seed)
    model = getattr(keras.applications, ctor)(weights=None, input_shape=(side, side, 3), classes=classes, **kwargs)
    settle_batch_norm(model, np.random.default_rng(seed).random((64, side, side, 3), dtype=np.float32))
    model.export(str(base / "1"), verbose=False)
    return base


def settle_batch_norm(model, x: np.ndarray) -> None:
    """Set every BatchNormalization's moving statistics to those of ``x``'s activations.

    With random weights and the initial statistics (mean 0, variance 1), activations of deep models
    shrink or blow up layer after layer and the outputs come out the same for every input (seen on
    MobileNetV3Small: softmax outputs varying by 6e-8), which proves nothing about a converter. One
    training-mode pass with momentum 0 gives each layer normalized inputs, as a trained model has."""
    import keras

    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(x, training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


def tf1_builder(base: Path, seed: int = 0) -> Path:
    """TF1 style: placeholders, a predict signature (images [None, 64] -> scores [None, 5]) and a classify
    signature on serialized tf.Example (feature 'x') returning class names and scores."""
    import tensorflow as tf

    v1 = tf.compat.v1
    labels = ["ant", "bee", "cat", "dog", "eel"]
    graph = tf.Graph()
    with graph.as_default():
        rng = np.random.default_rng(seed)
        serialized = v1.placeholder(tf.string, name="tf_example")
        parsed = v1.parse_example(serialized, {"x": v1.FixedLenFeature(shape=[64], dtype=tf.float32)})
        x_example = tf.identity(parsed["x"], name="x")
        images = v1.placeholder(tf.float32, [None, 64], name="images")
        w1 = v1.Variable(rng.normal(0, 0.3, (64, 32)).astype(np.float32), name="w1")
        b1 = v1.Variable(np.zeros(32, np.float32), name="b1")
        w2 = v1.Variable(rng.normal(0, 0.5, (32, 5)).astype(np.float32), name="w2")
        b2 = v1.Variable(rng.normal(0, 0.1, 5).astype(np.float32), name="b2")

        def scores_of(t):
            return tf.nn.softmax(tf.matmul(tf.nn.relu(tf.matmul(t, w1) + b1), w2) + b2)

        scores, example_scores = scores_of(images), scores_of(x_example)
        values, indices = tf.nn.top_k(example_scores, 5)
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(range(5)), tf.int64), tf.constant(labels)), default_value="")
        classes = table.lookup(tf.cast(indices, tf.int64))
        build = v1.saved_model.utils.build_tensor_info
        predict = v1.saved_model.signature_def_utils.build_signature_def(
            inputs={"images": build(images)}, outputs={"scores": build(scores)},
            method_name=v1.saved_model.signature_constants.PREDICT_METHOD_NAME)
        classify = v1.saved_model.signature_def_utils.build_signature_def(
            inputs={"inputs": build(serialized)}, outputs={"classes": build(classes), "scores": build(values)},
            method_name=v1.saved_model.signature_constants.CLASSIFY_METHOD_NAME)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.builder.SavedModelBuilder(str(base / "1"))
            builder.add_meta_graph_and_variables(
                sess, [v1.saved_model.tag_constants.SERVING],
                signature_def_map={"predict_images": predict, "serving_default": classify},
                main_op=v1.tables_initializer(), strip_default_attrs=True)
            builder.save()
    return base


def tf_module(base: Path, seed: int = 0) -> Path:
    """A tf.Module: NHWC 16x16x3 -> conv, batch-norm-like affine, global pooling -> 7 logits (no softmax)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    class Net(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = tf.Variable(rng.normal(0, 0.3, (3, 3, 3, 12)).astype(np.float32))
            self.scale = tf.Variable(rng.uniform(0.5, 1.5, 12).astype(np.float32))
            self.dense = tf.Variable(rng.normal(0, 0.5, (12, 7)).astype(np.float32))
            self.bias = tf.Variable(rng.normal(0, 0.1, 7).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32, name="image")])
        def predict(self, image):
            h = tf.nn.conv2d(image, self.kernel, strides=1, padding="SAME")
            h = tf.nn.relu6(h * self.scale)
            h = tf.reduce_mean(h, axis=[1, 2])
            return {"logits": tf.matmul(h, self.dense) + self.bias}

    net = Net()
    tf.saved_model.save(net, str(base / "1"), signatures={"serving_default": net.predict})
    return base


BUILDERS: dict[str, Callable[[Path], Path]] = {
    **{name: (lambda base, name=name: keras_app(name, base)) for name in KERAS_APPS},
    "TF1Builder": tf1_builder,
    "TfModule": tf_module,
}


# Tiny models for the test suite: each a few layers of one family of the zoo's architectures, so CI
# exercises the same ops (and the same converter paths) in seconds instead of minutes.

def _tiny(base: Path, build, side: int, seed: int) -> Path:
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(side, side, 3), name="pixels")
    model = keras.Model(inputs, build(inputs))
    settle_batch_norm(model, np.random.default_rng(seed).random((64, side, side, 3), dtype=np.float32))
    model.export(str(base / "1"), verbose=False)
    return base


def tiny_mobilenet(base: Path, seed: int = 0) -> Path:
    """MobileNetV2/V3 family: asymmetric ZeroPadding, strided depthwise conv, hard-swish, squeeze-excite,
    inverted residual; 10 classes."""
    import keras
    from keras import layers

    def build(x):
        h = layers.Conv2D(16, 3, padding="same", use_bias=False)(x)
        h = layers.BatchNormalization()(h)
        h = layers.Activation("hard_swish")(h)
        h = layers.ZeroPadding2D(((0, 1), (0, 1)))(h)
        h = layers.DepthwiseConv2D(3, strides=2, padding="valid", use_bias=False)(h)
        h = layers.BatchNormalization()(h)
        h = layers.ReLU(6.0)(h)
        se = layers.GlobalAveragePooling2D(keepdims=True)(h)
        se = layers.Conv2D(8, 1, activation="relu")(se)
        se = layers.Conv2D(16, 1, activation="hard_sigmoid")(se)
        h = layers.Multiply()([h, se])
        r = layers.Conv2D(16, 1, use_bias=False)(h)
        r = layers.BatchNormalization()(r)
        h = layers.Add()([h, r])
        h = layers.GlobalAveragePooling2D()(h)
        return layers.Dense(10, activation="softmax")(h)

    return _tiny(base, build, 24, seed)


class LayerScale(__import__("keras").layers.Layer):
    """ConvNeXt's per-channel layer scale: a captured variable multiplying the block's output."""

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.gamma


def tiny_convnext(base: Path, seed: int = 0) -> Path:
    """ConvNeXt family: patchify conv, grouped (depthwise) 7x7 Conv2D (Keras 3 compiles it with XLA:
    a _noinline call), LayerNormalization, exact GELU (Erfc), layer scale, residual; 10 classes."""
    from keras import layers

    def build(x):
        h = layers.Conv2D(24, 4, strides=4)(x)
        h = layers.LayerNormalization(epsilon=1e-6)(h)
        r = layers.Conv2D(24, 7, padding="same", groups=24)(h)
        r = layers.LayerNormalization(epsilon=1e-6)(r)
        r = layers.Dense(96)(r)
        r = layers.Activation("gelu")(r)
        r = layers.Dense(24)(r)
        r = LayerScale()(r)
        h = layers.Add()([h, r])
        h = layers.GlobalAveragePooling2D()(h)
        h = layers.LayerNormalization(epsilon=1e-6)(h)
        return layers.Dense(10, activation="softmax")(h)

    return _tiny(base, build, 32, seed)


def tiny_densenet(base: Path, seed: int = 0) -> Path:
    """DenseNet/ResNet family: BN-ReLU-conv, concatenation, average and max pooling; 100 classes (the
    tolerances must mean the same as for 10)."""
    from keras import layers

    def build(x):
        h = layers.Conv2D(16, 3, padding="same", use_bias=False)(x)
        h = layers.MaxPooling2D(2)(h)
        for _ in range(2):
            b = layers.BatchNormalization()(h)
            b = layers.Activation("relu")(b)
            b = layers.Conv2D(8, 3, padding="same", use_bias=False)(b)
            h = layers.Concatenate()([h, b])
        h = layers.BatchNormalization()(h)
        h = layers.Activation("relu")(h)
        h = layers.AveragePooling2D(2)(h)
        h = layers.GlobalAveragePooling2D()(h)
        return layers.Dense(100, activation="softmax")(h)

    return _tiny(base, build, 24, seed)


TINY: dict[str, Callable[[Path], Path]] = {
    "tiny_mobilenet": tiny_mobilenet,
    "tiny_convnext": tiny_convnext,
    "tiny_densenet": tiny_densenet,
    "tf1_builder": tf1_builder,
    "tf_module": tf_module,
}
