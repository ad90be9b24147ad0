"""The inputs export and verify feed the models: a user's .npy, MNIST when the shape fits, else noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfship.errors import UsageError
from tfship.export.base import SourceModel

NOISE = "seeded uniform noise in [0, 1)"


def require_npy(path: Path | None, flag: str) -> None:
    """A user-named inputs file must exist: checked before TensorFlow loads, not after an export."""
    if path is not None and not Path(path).is_file():
        raise UsageError(f"{flag} '{path}' does not exist (expected a .npy file)")


def sample_inputs(source: SourceModel, npy: Path | None, data_dir: Path | None, count: int,
                  split: str = "train") -> tuple[np.ndarray, np.ndarray | None, str]:
    """Inputs shaped like the source's: a user's .npy, else MNIST when the shape fits, else seeded noise.

    Returns (inputs, labels or None, a description of where they came from).
    """
    shape = tuple(d for d in source.input.shape[1:])
    if npy is not None:
        x = np.load(npy).astype(np.float32)
        if tuple(x.shape[1:]) != shape:
            raise UsageError(f"'{npy}' holds inputs of shape {x.shape}, the signature wants (N, {', '.join(map(str, shape))})")
        return x[:count], None, str(npy)
    if source.image.height == 28 and source.image.width == 28 and source.image.channels == 1:
        from tfship import mnist

        data = mnist.load(data_dir)
        part = data.train if split == "train" else data.test
        x = part.flat_float()[:count].reshape(-1, *shape)
        return x, part.labels[:count].astype(np.int64), f"MNIST {split} images"
    # Different seeds for calibration (train) and verification (test): verify never sees the
    # calibration inputs.
    rng = np.random.default_rng(0 if split == "train" else 1)
    return rng.random((count, *shape), dtype=np.float32), None, NOISE
