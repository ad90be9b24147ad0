"""ONNX artifacts in onnxruntime (CPU execution provider)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfship.export.base import Runner, SourceModel


class OnnxRunner(Runner):
    format = "onnx"

    def __init__(self, path: Path, source: SourceModel) -> None:
        super().__init__(path, source)
        import onnxruntime as ort

        self._session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run_impl(self, x: np.ndarray) -> np.ndarray:
        (scores,) = self._session.run([self.source.output.name], {self.source.input.name: x})
        return scores
