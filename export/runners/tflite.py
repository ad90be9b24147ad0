"""TFLite artifacts in LiteRT (``ai-edge-litert``; ``tf.lite.Interpreter`` is deprecated in TF 2.21).

Quantized inputs and outputs (the full-integer model) are converted with the tensors' own scale and
zero point, so callers always pass and get float32.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfship.export.base import Runner, SourceModel
from tfship.export.errors import ExportError

# Resizing the interpreter per call is cheap; chunks bound memory for 10k-image verification.
CHUNK = 256


class TfliteRunner(Runner):
    format = "tflite"

    def __init__(self, path: Path, source: SourceModel) -> None:
        super().__init__(path, source)
        from ai_edge_litert.interpreter import Interpreter

        # LiteRT's default runs on one thread; every core cuts verify's 10k-image pass by ~30% here.
        self._interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
        signatures = self._interpreter.get_signature_list()
        if source.signature_key not in signatures:
            raise ExportError("tflite", f"'{path}' has signatures {sorted(signatures)}, "
                                        f"expected '{source.signature_key}'")
        self._runner = self._interpreter.get_signature_runner(source.signature_key)
        self._in = self._runner.get_input_details()[source.input.name]
        self._out = self._runner.get_output_details()[source.output.name]

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self._in["dtype"])
        if dtype.kind == "f":
            return x.astype(dtype)
        scale, zero = self._in["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if np.dtype(self._out["dtype"]).kind == "f":
            return y.astype(np.float32)
        scale, zero = self._out["quantization"]
        return (y.astype(np.float32) - zero) * scale

    def run_impl(self, x: np.ndarray) -> np.ndarray:
        name, out = self.source.input.name, self.source.output.name
        parts = [self._dequantize(self._runner(**{name: self._quantize(x[i:i + CHUNK])})[out])
                 for i in range(0, len(x), CHUNK)]
        return np.concatenate(parts) if parts else np.zeros((0, self.source.num_classes), np.float32)
