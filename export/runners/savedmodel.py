"""The reference: the SavedModel's predict signature, run by TensorFlow (the SourceModel's loaded
signature when ``path`` is the source's own folder: the SavedModel is loaded once per run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfship.export.base import Runner, SourceModel

# Large batches keep TensorFlow's per-call overhead out of throughput; memory stays small for MNIST.
CHUNK = 1000


class SavedModelRunner(Runner):
    format = "savedmodel"

    def __init__(self, path: Path, source: SourceModel) -> None:
        super().__init__(path, source)
        import tensorflow as tf

        self._tf = tf
        if Path(path).resolve() == source.path.resolve():
            self._signature = source.loaded_signature()
        else:
            self._loaded = tf.saved_model.load(str(path))
            self._signature = self._loaded.signatures[source.signature_key]

    def run_impl(self, x: np.ndarray) -> np.ndarray:
        name, out = self.source.input.name, self.source.output.name
        parts = [self._signature(**{name: self._tf.constant(x[i:i + CHUNK])})[out].numpy()
                 for i in range(0, len(x), CHUNK)]
        return np.concatenate(parts) if parts else np.zeros((0, self.source.num_classes), np.float32)
