"""One loaded model version: its signatures, run by a serving backend (:mod:`tfship.serve.backends`).

The signature definitions (names, dtypes, shapes) come from the ``MetaGraphDef`` in
``saved_model.pb``, exactly what TF Serving reports as metadata, whichever backend computes: the
SavedModel in TensorFlow, or the verified ONNX or TFLite artifact exported from it. Inputs are
checked against the definitions before the backend sees them, so a bad request is an
``InvalidArgumentError`` naming the input, never a crash; batching happens here, above the backend.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path

import numpy as np

from tfship.serve.backends import backend_class
from tfship.serve.backends.artifacts import ArtifactError
from tfship.serve.backends.base import INIT_OP_SIGNATURE, BackendOptions, SignatureInfo, TensorSpec
from tfship.serve.batching import Batcher, BatcherStopped
from tfship.serve.config import BatchingOptions
from tfship.serve.errors import FailedPreconditionError, InvalidArgumentError
from tfship.serve.tensors import dtype_name, numpy_dtype_matches

log = logging.getLogger("tfship.serve")

Tensors = dict[str, np.ndarray]
__all__ = ["INIT_OP_SIGNATURE", "Servable", "SignatureInfo", "TensorSpec", "check_inputs"]


class Servable:
    """A loaded version of a model. Thread-safe: concurrent :meth:`run` calls are fine."""

    def __init__(self, name: str, version: int, path: Path, batching: BatchingOptions | None = None,
                 on_batch: Callable[[str, int, int], None] | None = None,
                 backend: BackendOptions = BackendOptions()) -> None:
        self.name, self.version, self.path = name, version, path
        try:
            self.backend = backend_class(backend.kind)(path, backend)
        except ArtifactError as e:
            if backend.fallback is None:
                raise
            # --prefer_tflite_model: "If no TensorFlow Lite model found, fallback to TensorFlow model."
            log.warning("model %s version %d: no usable %s artifact, serving it with %s: %s", name, version,
                        backend.kind, backend.fallback, e)
            self.backend = backend_class(backend.fallback)(path, backend)
        self.signature_defs = self.backend.signature_defs  # every SignatureDef, for metadata
        self.signatures = self.backend.signatures  # the ones this backend serves
        self._batching = batching
        self._on_batch = on_batch
        self._batchers: dict[str, Batcher] = {}
        self._closed = False
        self._lock = threading.Lock()

    def signature(self, name: str) -> SignatureInfo:
        info = self.signatures.get(name)
        if info is None:
            # TF Serving's Predict message (servables/tensorflow/predict_util.cc).
            raise FailedPreconditionError(f'Serving signature key "{name}" not found.')
        return info

    def run(self, signature_name: str, inputs: Tensors) -> Tensors:
        """Run a signature on checked inputs; batched with other requests when batching is on."""
        info = self.signature(signature_name)
        check_inputs(info, inputs)
        if self._batching is None or not _batches(info, inputs):
            return self._call(signature_name, inputs)
        try:
            return self._batcher(signature_name).submit(inputs)
        except BatcherStopped:
            # This version was unloaded after the request resolved it; the model is still in memory
            # while the request holds it, so answer unbatched rather than fail during a swap.
            return self._call(signature_name, inputs)

    def run_future(self, signature_name: str, inputs: Tensors, executor: Executor) -> Future:
        """:meth:`run` without blocking: a Future of the outputs. Batched requests complete on a batch
        thread; unbatched ones run on ``executor``. Bad inputs raise here, before anything runs."""
        info = self.signature(signature_name)
        check_inputs(info, inputs)
        if self._batching is not None and _batches(info, inputs):
            try:
                return self._batcher(signature_name).submit_future(inputs)
            except BatcherStopped:
                pass  # unloading after the request resolved this version: answer unbatched, as run() does
        return executor.submit(self._call, signature_name, inputs)

    def warm_up(self) -> None:
        """Run each numeric batchable signature once on zeros, so the first request is not the slowest
        and a version that cannot compute never replaces one that can."""
        for name, info in self.signatures.items():
            if name == INIT_OP_SIGNATURE or not info.batchable:
                continue
            if any(s.shape is None or -1 in s.shape[1:] or not _is_numeric(s.dtype) for s in info.inputs.values()):
                continue
            self._call(name, {k: np.zeros((1, *s.shape[1:]), dtype=_np_dtype(s.dtype))
                              for k, s in info.inputs.items()})

    def close(self) -> None:
        with self._lock:
            self._closed = True
            batchers, self._batchers = list(self._batchers.values()), {}
        for b in batchers:
            b.stop()
        self.backend.close()

    def _batcher(self, signature_name: str) -> Batcher:
        with self._lock:
            if self._closed:
                raise BatcherStopped("This model version is being unloaded")
            b = self._batchers.get(signature_name)
            if b is None:
                def on_batch(rows: int, padding: int) -> None:
                    if self._on_batch is not None:
                        self._on_batch(self.name, rows, padding)

                b = Batcher(lambda x: self._call(signature_name, x), self._batching,
                            f"{self.name}-{self.version}-{signature_name}", on_batch)
                self._batchers[signature_name] = b
            return b

    def _call(self, signature_name: str, inputs: Tensors) -> Tensors:
        return self.backend.run(signature_name, inputs)


def check_inputs(info: SignatureInfo, inputs: Tensors) -> None:
    """Inputs must match the signature's names and dtypes. Shapes are the runtime's to judge, as in TF
    Serving, which feeds a tensor of any shape and lets the graph accept or refuse it."""
    if set(inputs) != set(info.inputs):
        sent, want = sorted(inputs), sorted(info.inputs)
        # TF Serving's message (servables/tensorflow/predict_util.cc, VerifyRequestInputsSize).
        raise InvalidArgumentError(
            f"input size does not match signature: {len(sent)}!={len(want)} len({{{','.join(sent)}}}) != "
            f"len({{{','.join(want)}}}). Sent extra: {{{','.join(sorted(set(sent) - set(want)))}}}. "
            f"Missing but required: {{{','.join(sorted(set(want) - set(sent)))}}}.")
    for key, value in inputs.items():
        spec = info.inputs[key]
        if not numpy_dtype_matches(value.dtype, spec.dtype):
            raise InvalidArgumentError(f"Expects arg[{sorted(info.inputs).index(key)}] to be "
                                       f"{dtype_name(spec.dtype)} but {_np_name(value)} is provided")


def _batches(info: SignatureInfo, inputs: Tensors) -> bool:
    """Whether a request can join a batch: every input has the declared rank and known dimensions
    (anything else goes to the runtime alone, which accepts or refuses it)."""
    return info.batchable and all(
        v.ndim == len(info.inputs[k].shape) and all(w in (-1, g) for w, g in zip(info.inputs[k].shape, v.shape))
        for k, v in inputs.items())


def _np_name(value: np.ndarray) -> str:
    return "string" if value.dtype.kind in "OSU" else str(value.dtype)


def _is_numeric(dtype: int) -> bool:
    return dtype_name(dtype) not in ("string", "resource", "variant")


def _np_dtype(dtype: int) -> np.dtype:
    from tfship.serve.tensors import numpy_dtype

    return numpy_dtype(dtype)
