"""Train one architecture on MNIST and write everything a run folder holds.

A run folder (``--out runs/cnn``) gets: ``saved_model/<version>/`` (TF Serving layout, a new version per
run), ``metrics.json``, ``tensorboard/`` and ``plots/``.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tfship import contract, mnist
from tfship.errors import UsageError
from tfship.savedmodel import RUN_SAVED_MODEL_DIR, ModelVersion
from tfship.train.models import ARCHS, DEFAULTS

# Held out from the 60k training images for the validation curves (the tutorials' 55k/5k split).
VALIDATION_SIZE = 5000


@dataclass(frozen=True)
class TrainConfig:
    arch: str
    out: Path
    epochs: int | None = None          # None: the architecture's default
    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int = 0
    data_dir: Path | None = None
    download: bool = False
    train_limit: int | None = None     # use only the first N training images (quick runs, tests)
    plots: bool = True
    verbose: int | None = None         # Keras verbosity; None: a bar on a terminal, a line per epoch otherwise

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise UsageError(f"unknown architecture '{self.arch}'; choose one of: {', '.join(ARCHS)}")
        for name in ("epochs", "batch_size", "train_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise UsageError(f"--learning-rate must be positive, got {self.learning_rate}")

    def resolved(self) -> tuple[int, int, float]:
        d = DEFAULTS[self.arch]
        return (self.epochs or d.epochs, self.batch_size or d.batch_size, self.learning_rate or d.learning_rate)


@dataclass(frozen=True)
class TrainResult:
    model: ModelVersion
    test_accuracy: float
    test_loss: float
    seconds: float
    metrics_path: Path


def library_versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__}


def _split(data: mnist.Mnist, limit: int | None, seed: int):
    x = data.train.flat_float()
    y = data.train.labels.astype(np.int64)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    n_val = min(VALIDATION_SIZE, len(x) // 10)
    # A fixed permutation (from the seed) decides which images are held out.
    order = np.random.default_rng(seed).permutation(len(x))
    val, tr = order[:n_val], order[n_val:]
    return (x[tr], y[tr]), (x[val], y[val])


def train(config: TrainConfig) -> TrainResult:
    """Train, evaluate on the 10k test images, write the SavedModel version, metrics and plots."""
    data = mnist.load(config.data_dir, download=config.download)

    import keras
    import tensorflow as tf

    from tfship.train import models, saved_model

    epochs, batch_size, lr = config.resolved()
    # Same seed -> same initial weights, dropout masks and data order (op determinism fixes kernel order).
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    (x_train, y_train), (x_val, y_val) = _split(data, config.train_limit, config.seed)
    x_test, y_test = data.test.flat_float(), data.test.labels.astype(np.int64)

    model = models.build(config.arch)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)
    callbacks = [keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard"))]
    started = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, shuffle=True,
                        validation_data=(x_val, y_val), callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)

    version = saved_model.save(model, out / RUN_SAVED_MODEL_DIR, contract.MNIST_LABELS)

    metrics = {
        "arch": config.arch,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": lr,
        "train_images": int(len(x_train)),
        "validation_images": int(len(x_val)),
        "seconds": round(seconds, 2),
        "seed": config.seed,
        "saved_model": {"base": str(version.base), "version": version.version},
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "versions": library_versions(),
        "data": {"directory": str(data.directory), "sha256": data.hashes},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
    }
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")

    if config.plots:
        from tfship.train import plots

        probs = model.predict(x_test, batch_size=1000, verbose=0)
        plots.write_all(out / "plots", metrics["history"], data.test.images, y_test, probs)

    return TrainResult(version, float(test_accuracy), float(test_loss), seconds, metrics_path)
