"""One loaded SavedModel version: its signatures, run with the real TensorFlow runtime.

The signature definitions (names, dtypes, shapes) come from the ``MetaGraphDef`` in
``saved_model.pb``, exactly what TF Serving reports as metadata; the functions come from
``tf.saved_model.load``. Inputs are checked against the definitions before TensorFlow sees them,
so a bad request is an ``InvalidArgumentError`` naming the input, never a crash.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfship.serve.batching import Batcher, BatcherStopped
from tfship.serve.config import BatchingOptions
from tfship.serve.errors import FailedPreconditionError, InvalidArgumentError, ServingError
from tfship.serve.tensors import dtype_name, numpy_dtype_matches

Tensors = dict[str, np.ndarray]
# TF2 SavedModels carry this pseudo-signature; TF Serving lists it in metadata but it takes no input.
INIT_OP_SIGNATURE = "__saved_model_init_op"


@dataclass(frozen=True)
class TensorSpec:
    dtype: int  # tensorflow DataType enum
    shape: tuple[int, ...] | None  # -1 for an unknown dimension; None for unknown rank


@dataclass(frozen=True)
class SignatureInfo:
    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    @property
    def batchable(self) -> bool:
        """Every input has an unknown leading (batch) dimension, so requests can be concatenated."""
        return bool(self.inputs) and all(s.shape and s.shape[0] == -1 for s in self.inputs.values())


class Servable:
    """A loaded version of a model. Thread-safe: concurrent :meth:`run` calls are fine."""

    def __init__(self, name: str, version: int, path: Path, batching: BatchingOptions | None = None,
                 on_batch: Callable[[str, int, int], None] | None = None) -> None:
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        self.name, self.version, self.path = name, version, path
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
        graph = next((g for g in proto.meta_graphs if "serve" in g.meta_info_def.tags), None)
        if graph is None:
            raise FailedPreconditionError(f"'{path}' has no MetaGraphDef tagged 'serve'")
        self.signature_defs = graph.signature_def  # SignatureDef protos, for metadata
        self.signatures = {name: _info(name, sig) for name, sig in graph.signature_def.items()}
        self._loaded = tf.saved_model.load(str(path))
        self._functions = dict(self._loaded.signatures)
        self._batching = batching
        self._on_batch = on_batch
        self._batchers: dict[str, Batcher] = {}
        self._closed = False
        self._lock = threading.Lock()
        self._tf = tf

    def signature(self, name: str) -> SignatureInfo:
        info = self.signatures.get(name)
        if info is None or name not in self._functions:
            # TF Serving's Predict message (servables/tensorflow/predict_util.cc).
            raise FailedPreconditionError(f'Serving signature key "{name}" not found.')
        return info

    def run(self, signature_name: str, inputs: Tensors) -> Tensors:
        """Run a signature on checked inputs; batched with other requests when batching is on."""
        info = self.signature(signature_name)
        check_inputs(info, inputs)
        if self._batching is None or not info.batchable:
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
        if self._batching is not None and info.batchable:
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
        tf = self._tf
        fn = self._functions[signature_name]
        try:
            outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as e:
            # A TensorFlow runtime error: bad data (e.g. a tf.Example without the expected feature).
            raise _op_error(e) from e
        except (TypeError, ValueError) as e:
            raise InvalidArgumentError(str(e)) from e
        return {k: v.numpy() for k, v in outputs.items()}


def check_inputs(info: SignatureInfo, inputs: Tensors) -> None:
    """Inputs must match the signature's names, dtypes and known dimensions."""
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
        if spec.shape is None:
            continue
        if value.ndim != len(spec.shape) or any(w not in (-1, g) for w, g in zip(spec.shape, value.shape)):
            raise InvalidArgumentError(
                f"input '{key}' of signature '{info.name}' has shape {list(value.shape)}, but the signature "
                f"expects {[d if d >= 0 else None for d in spec.shape]} (None: any size)")


def _np_name(value: np.ndarray) -> str:
    return "string" if value.dtype.kind in "OSU" else str(value.dtype)


def _info(name: str, sig) -> SignatureInfo:
    def spec(t) -> TensorSpec:
        shape = None if t.tensor_shape.unknown_rank else tuple(d.size for d in t.tensor_shape.dim)
        return TensorSpec(t.dtype, shape)

    return SignatureInfo(name, {k: spec(v) for k, v in sig.inputs.items()},
                         {k: spec(v) for k, v in sig.outputs.items()})


def _is_numeric(dtype: int) -> bool:
    return dtype_name(dtype) not in ("string", "resource", "variant")


def _np_dtype(dtype: int) -> np.dtype:
    from tfship.serve.tensors import numpy_dtype

    return numpy_dtype(dtype)


def _op_error(e) -> ServingError:
    from tfship.serve import errors

    code = {3: errors.InvalidArgumentError, 5: errors.NotFoundError, 9: errors.FailedPreconditionError,
            8: errors.ResourceExhaustedError, 14: errors.UnavailableError, 12: errors.UnimplementedError}
    return code.get(e.error_code, errors.InternalError)(_session_message(e.message))


def _session_message(message: str) -> str:
    """An eager op error as TF Serving's session would word it: without the eager-only preamble
    ("Graph execution error: ... <stack traces unavailable>") and the trailing "[Op:...]"."""
    marker = "<stack traces unavailable>\n"
    if message.startswith("Graph execution error:") and marker in message:
        message = message.split(marker, 1)[1]
    return re.sub(r"\s*\[Op:[^\]]*\]$", "", message)
