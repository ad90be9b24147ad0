"""The three tutorial architectures. Each takes the contract's flat (N, 784) input in [0, 1] and
ends in a softmax, so every exported format carries the probabilities, not logits."""

from __future__ import annotations

from dataclasses import dataclass

from tfship.contract import IMAGE_HEIGHT, IMAGE_WIDTH, NUM_CLASSES, NUM_PIXELS


@dataclass(frozen=True)
class ArchDefaults:
    """Training defaults per architecture, chosen to reach the tutorials' accuracy on 2 CPU cores."""

    epochs: int
    batch_size: int
    learning_rate: float


ARCHS = ("softmax", "mlp", "cnn")
DEFAULTS = {
    # Softmax regression converges in a few epochs; more buys nothing measurable.
    "softmax": ArchDefaults(epochs=10, batch_size=128, learning_rate=1e-3),
    # The MLP needs ~15 epochs of Adam with dropout to settle above 98%.
    "mlp": ArchDefaults(epochs=15, batch_size=128, learning_rate=1e-3),
    # The Deep-MNIST CNN passes 99.2% after ~6 epochs with a decaying Adam rate (~70 s/epoch here).
    "cnn": ArchDefaults(epochs=6, batch_size=128, learning_rate=1e-3),
}


def build(arch: str):
    """A compiled-free Keras model for ``arch``: input (None, 784) float32, output (None, 10) softmax."""
    import keras

    inputs = keras.Input(shape=(NUM_PIXELS,), name="images", dtype="float32")
    if arch == "softmax":
        x = inputs
    elif arch == "mlp":
        x = keras.layers.Dense(512, activation="relu", name="hidden")(inputs)
        x = keras.layers.Dropout(0.2, name="dropout")(x)
    elif arch == "cnn":
        x = keras.layers.Reshape((IMAGE_HEIGHT, IMAGE_WIDTH, 1), name="to_image")(inputs)
        x = keras.layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1")(x)
        x = keras.layers.MaxPooling2D(2, name="pool1")(x)
        x = keras.layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2")(x)
        x = keras.layers.MaxPooling2D(2, name="pool2")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(1024, activation="relu", name="fc1")(x)
        x = keras.layers.Dropout(0.5, name="dropout")(x)
    else:
        raise ValueError(f"unknown architecture '{arch}'; choose one of {', '.join(ARCHS)}")
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name=f"mnist_{arch}")
