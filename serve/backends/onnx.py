"""The exported ONNX artifact in onnxruntime (CPU execution provider); no TensorFlow per request."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfship.serve.backends.base import Tensors
from tfship.serve.backends.exported import ExportedBackend, check_runtime_names


class OnnxBackend(ExportedBackend):
    kind = "onnx"

    def load_artifact(self, path: Path) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        if self.options.threads is not None:
            so.intra_op_num_threads = self.options.threads
        so.inter_op_num_threads = 1  # one graph of one chain of ops: nothing to run side by side
        # Idle pool threads must not spin: on a small machine they would take the cores the
        # server's event loops and batch thread need between two runs.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self._inputs = {i.name: np.dtype(_ORT_TYPES.get(i.type, "float32")) for i in self._session.get_inputs()}
        self._outputs = [o.name for o in self._session.get_outputs()]
        check_runtime_names(self, sorted(self._inputs), sorted(self._outputs))

    def compute(self, inputs: Tensors) -> Tensors:
        feed = {k: v if v.dtype == self._inputs[k] else v.astype(self._inputs[k]) for k, v in inputs.items()}
        values = self._session.run(self._outputs, feed)
        return dict(zip(self._outputs, values))


_ORT_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
              "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int32)": "int32", "tensor(int64)": "int64"}
