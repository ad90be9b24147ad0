"""The exported TFLite artifact in LiteRT (``ai-edge-litert``); no TensorFlow per request.

A LiteRT interpreter runs one call at a time, so calls take turns on it (with batching on, one
batch thread calls it anyway). Quantized inputs and outputs (the full-integer model) are converted
with the tensors' own scale and zero point, so clients send and get the SavedModel's float32.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from tfship.serve.backends.artifacts import ArtifactError
from tfship.serve.backends.base import Tensors
from tfship.serve.backends.exported import ExportedBackend, check_runtime_names


class TfliteBackend(ExportedBackend):
    kind = "tflite"

    def load_artifact(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(path), num_threads=self.options.threads or os.cpu_count() or 1)
        name = self.signature.name
        if name not in self._interpreter.get_signature_list():
            raise ArtifactError(f"{path}: has signatures {sorted(self._interpreter.get_signature_list())}, "
                                f"not '{name}'")
        self._runner = self._interpreter.get_signature_runner(name)
        self._in = self._runner.get_input_details()
        self._out = self._runner.get_output_details()
        check_runtime_names(self, sorted(self._in), sorted(self._out))
        self._lock = threading.Lock()

    def compute(self, inputs: Tensors) -> Tensors:
        feed = {k: _quantize(v, self._in[k]) for k, v in inputs.items()}
        with self._lock:
            raw = self._runner(**feed)
        return {k: _dequantize(v, self._out[k]) for k, v in raw.items()}


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f" or x.dtype.kind != "f":
        return x if x.dtype == dtype else x.astype(dtype)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]).kind == "f":
        return y
    scale, zero = detail["quantization"]
    return (y.astype(np.float32) - zero) * np.float32(scale)
