"""The serving core: Predict, Classify, Regress, MultiInference, metadata and status on Python objects.

No HTTP, no gRPC here: REST (:mod:`.rest`) and gRPC (:mod:`.grpc_service`) turn their requests into
these calls and the results (or :class:`~tfship.serve.errors.ServingError`) back into their own
responses. The rules and messages are TF Serving's (``servables/tensorflow/predict_util.cc``,
``classifier.cc``, ``regressor.cc``, ``multi_inference.cc``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from tfship.serve.config import ModelConfig
from tfship.serve.errors import InternalError, InvalidArgumentError, ServingError, UnimplementedError
from tfship.serve.manager import ModelManager, VersionState
from tfship.serve.servable import Servable, SignatureInfo
from tfship.tensorproto import TensorLimits

DEFAULT_SIGNATURE = "serving_default"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
PREDICT_METHOD = "tensorflow/serving/predict"
Tensors = dict[str, np.ndarray]
T = TypeVar("T")


@dataclass(frozen=True)
class ModelRef:
    """What a request names: model, optional version or label, optional signature."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""


@dataclass(frozen=True)
class Served:
    """What answered: model name, version and signature (the response's ``model_spec``)."""

    name: str
    version: int
    signature_name: str


@dataclass(frozen=True)
class Resolved:
    """A request's model version and signature, looked up once (:meth:`ServingCore.resolve`)."""

    name: str
    servable: Servable
    signature: SignatureInfo


@dataclass(frozen=True)
class Prediction:
    model: Served
    outputs: Tensors


@dataclass(frozen=True)
class Classification:
    model: Served
    classes: np.ndarray | None  # (N, K) of bytes labels
    scores: np.ndarray | None  # (N, K) float32


@dataclass(frozen=True)
class Regression:
    model: Served
    values: np.ndarray  # (N,) float32


@dataclass(frozen=True)
class Metadata:
    model: Served
    signature_defs: object  # the SavedModel's map<string, SignatureDef>


# Called with (model name, API name, entrypoint, status code name, seconds) after every request.
RequestObserver = Callable[[str, str, str, str, float], None]


class ServingCore:
    """The serving API on Python objects. Blocking calls (``predict``, ``classify``, ...) for threads;
    :meth:`predict_future` and :meth:`run_blocking` for adapters that run on an event loop and must
    never block it. ``worker_threads`` run unbatched inference and the other blocking calls."""

    def __init__(self, manager: ModelManager, observe: RequestObserver | None = None,
                 worker_threads: int = 64, limits: TensorLimits | None = None,
                 method_name_check: bool = False) -> None:
        self.manager = manager
        # --enable_signature_method_name_check: each API wants its SignatureDef method_name (TF1 models).
        self.method_name_check = method_name_check
        self.limits = limits  # what the adapters may decode per tensor, checked before allocating
        self._observe = observe
        self._workers = ThreadPoolExecutor(worker_threads, thread_name_prefix="serve-worker")

    def close(self) -> None:
        """Finish the work already handed to the worker threads, then end them."""
        self._workers.shutdown(wait=True)

    def run_blocking(self, fn: Callable[..., T], *args) -> Future:
        """Run ``fn(*args)`` on a worker thread (for event-loop adapters): a Future of its result."""
        return self._workers.submit(fn, *args)

    def record(self, model: str, api: str, entrypoint: str, error: BaseException | None, start: float) -> None:
        """Report a finished request (``start``: its ``time.perf_counter()``) to the observer."""
        self._record(model, api, entrypoint, error, start)

    def _record(self, model: str, api: str, entrypoint: str, error: BaseException | None, start: float) -> None:
        if self._observe is None:
            return
        code = "OK" if error is None else error.code if isinstance(error, ServingError) else "INTERNAL"
        self._observe(model, api, entrypoint, code, time.perf_counter() - start)

    @contextmanager
    def _measured(self, model: str, api: str, entrypoint: str):
        start = time.perf_counter()
        try:
            yield
        except BaseException as e:
            self._record(model, api, entrypoint, e, start)
            raise
        self._record(model, api, entrypoint, None, start)

    def resolve(self, ref: ModelRef, rest: bool = False) -> Resolved:
        """The servable version and signature a request names: the one lookup of a request.

        An unknown signature is FAILED_PRECONDITION (gRPC's ``RunPredict``) or, with ``rest``,
        INVALID_ARGUMENT (the REST handler looks the signature up itself to decode JSON)."""
        _check_name(ref)
        servable = self.manager.resolve(ref.name, ref.version, ref.label)
        name = ref.signature_name or DEFAULT_SIGNATURE
        if rest and name not in servable.signatures:
            raise InvalidArgumentError(f'Serving signature name: "{name}" not found in signature def')
        info = servable.signature(name)
        method = servable.signature_defs[name].method_name
        if self.method_name_check and method not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
            # TF Serving's message (servables/tensorflow/predict_util.cc, VerifySignature).
            raise InternalError(f"Expected prediction signature method_name to be one of {{{PREDICT_METHOD}, "
                                f"{CLASSIFY_METHOD}, {REGRESS_METHOD}}}. Was: {method}")
        return Resolved(ref.name, servable, info)

    def predict(self, target: ModelRef | Resolved, inputs: Tensors, output_filter: Sequence[str] = (),
                entrypoint: str = "") -> Prediction:
        """Run a signature on tensors (blocking)."""
        return self.predict_future(target, inputs, output_filter, entrypoint).result()

    def predict_future(self, target: ModelRef | Resolved, inputs: Tensors, output_filter: Sequence[str] = (),
                       entrypoint: str = "") -> Future:
        """Predict without blocking: checks the request now (a bad one raises here) and returns a
        Future of the :class:`Prediction`, completed on a batch or worker thread. ``target`` is a
        :class:`ModelRef`, or what :meth:`resolve` returned for it (REST, which decodes against the
        signature first)."""
        start = time.perf_counter()
        model = target.name
        try:
            resolved = target if isinstance(target, Resolved) else self.resolve(target)
            servable, info = resolved.servable, resolved.signature
            wanted = _check_output_filter(output_filter, info.outputs)
            pending = servable.run_future(info.name, inputs, self._workers)
        except BaseException as e:
            self._record(model, "Predict", entrypoint, e, start)
            raise
        result: Future = Future()
        served = Served(model, servable.version, info.name)

        def finish(done: Future) -> None:
            error = done.exception()
            self._record(model, "Predict", entrypoint, error, start)
            if error is not None:
                result.set_exception(error)
            else:
                outputs = done.result()
                result.set_result(Prediction(served, {k: outputs[k] for k in wanted}))

        pending.add_done_callback(finish)
        return result

    def classify(self, ref: ModelRef, examples: Sequence[bytes], entrypoint: str = "") -> Classification:
        with self._measured(ref.name, "Classify", entrypoint):
            _check_name(ref)
            servable = self.manager.resolve(ref.name, ref.version, ref.label)
            return self._classify(servable, ref, examples)

    def regress(self, ref: ModelRef, examples: Sequence[bytes], entrypoint: str = "") -> Regression:
        with self._measured(ref.name, "Regress", entrypoint):
            _check_name(ref)
            servable = self.manager.resolve(ref.name, ref.version, ref.label)
            return self._regress(servable, ref, examples)

    def multi_inference(self, tasks: Sequence[tuple[ModelRef, str]], examples: Sequence[bytes],
                        entrypoint: str = "") -> list[Classification | Regression]:
        """Run several classify/regress signatures of one model version on the same examples, checked
        in the order of TF Serving's ``TensorFlowMultiInferenceRunner::Infer`` (multi_inference.cc)."""
        name = tasks[0][0].name if tasks else ""
        with self._measured(name, "MultiInference", entrypoint):
            if not tasks:
                raise InvalidArgumentError("Expected at least one task")
            first = tasks[0][0]
            if any((t.version, t.label) != (first.version, first.label) for t, _ in tasks):
                raise InvalidArgumentError("Model versions in a MultiInferenceRequest must be the same.")
            servable = None
            seen: set[str] = set()
            for ref, method in tasks:
                if not ref.name:
                    raise InvalidArgumentError("Found ModelSpec with an empty model name.")
                if ref.name != name:
                    raise InvalidArgumentError("All ModelSpecs in a MultiInferenceRequest must access the same "
                                               "model name.")
                sig = ref.signature_name or DEFAULT_SIGNATURE
                if sig in seen:
                    raise InvalidArgumentError(f"Duplicate evaluation of signature: {sig}")
                seen.add(sig)
                servable = servable or self.manager.resolve(name, first.version, first.label)
                if sig not in servable.signatures:
                    raise InvalidArgumentError(f"Requested signature not found in model graph: {sig}")
                if method not in (CLASSIFY_METHOD, REGRESS_METHOD):
                    raise UnimplementedError(f"Unsupported signature method_name: {method}")
            if len(examples) == 0:
                raise InvalidArgumentError("Input is empty.")
            return [self._classify(servable, ref, examples) if method == CLASSIFY_METHOD
                    else self._regress(servable, ref, examples) for ref, method in tasks]

    def metadata(self, ref: ModelRef, fields: Sequence[str] = ("signature_def",), entrypoint: str = "") -> Metadata:
        with self._measured(ref.name, "GetModelMetadata", entrypoint):
            if not fields:
                raise InvalidArgumentError("GetModelMetadataRequest must specify at least one metadata_field")
            for f in fields:
                if f != "signature_def":
                    raise InvalidArgumentError(f"Metadata field {f} is not supported")
            _check_name(ref)
            servable = self.manager.resolve(ref.name, ref.version, ref.label)
            return Metadata(Served(ref.name, servable.version, ""), servable.signature_defs)

    def status(self, ref: ModelRef, entrypoint: str = "") -> list[VersionState]:
        with self._measured(ref.name, "GetModelStatus", entrypoint):
            if not ref.name:
                raise InvalidArgumentError("Missing model name in request.")
            # get_model_status_impl.cc reads model_spec.version only: a version label is ignored.
            return self.manager.status(ref.name, ref.version, None)

    def reload_config(self, models: Sequence[ModelConfig]) -> None:
        """TF Serving's ReloadConfig: serve exactly ``models``, then require each to have a version
        AVAILABLE (UNKNOWN error naming the ones without, as ``ServerCore`` does)."""
        self.manager.set_models(list(models))
        missing = [m.name for m in models if not self.manager.has_available(m.name)]
        if missing:
            raise ServingError("Some models did not become available: {"
                               + ", ".join(f"{{name: {n}}}" for n in missing) + "}")

    def _signature_for_examples(self, servable: Servable, ref: ModelRef, examples: Sequence[bytes], method: str):
        name = ref.signature_name or DEFAULT_SIGNATURE
        info = servable.signatures.get(name)
        if info is None:
            raise InvalidArgumentError(f"No signature was found with the name: {name}")
        was = servable.signature_defs[name].method_name
        if self.method_name_check and was != method:
            # TF Serving's message (servables/tensorflow/classifier.cc and regressor.cc).
            kind = "classification" if method == CLASSIFY_METHOD else "regression"
            raise InvalidArgumentError(f"Expected {kind} signature method_name to be {method}. Was: {was}")
        if len(examples) == 0:
            raise InvalidArgumentError("Input is empty.")
        if len(info.inputs) != 1:
            raise InvalidArgumentError("Expected one input Tensor.")
        if "inputs" not in info.inputs:
            raise InvalidArgumentError(f"No classification or regression inputs found in signature '{name}'; "
                                       "expected one string input named 'inputs' (serialized tf.Example)")
        return name, info

    def _classify(self, servable: Servable, ref: ModelRef, examples: Sequence[bytes]) -> Classification:
        name, info = self._signature_for_examples(servable, ref, examples, CLASSIFY_METHOD)
        if len(info.outputs) not in (1, 2):
            raise InvalidArgumentError(f"Expected one or two output Tensors, found {len(info.outputs)}")
        if "classes" not in info.outputs and "scores" not in info.outputs:
            raise InvalidArgumentError('Expected classification signature outputs to contain at least one of '
                                       f'"classes" or "scores". Signature was: {name}')
        out = servable.run(name, {"inputs": _string_tensor(examples)})
        classes, scores = out.get("classes"), out.get("scores")
        n = len(examples)
        for label, t, kinds in (("classes", classes, "OS"), ("scores", scores, "f")):
            if t is None:
                continue
            if t.ndim != 2:
                raise InvalidArgumentError(f"Expected Tensor shape: [batch_size num_classes] but got {list(t.shape)}")
            if t.dtype.kind not in kinds:
                want = "DT_STRING" if label == "classes" else "DT_FLOAT"
                raise InvalidArgumentError(f"Expected {label} Tensor of {want}. Got: {t.dtype}")
            if t.shape[0] != n:
                raise InvalidArgumentError(f"Expected {label} output batch size of {n}. Got: {t.shape[0]}")
        if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
            raise InvalidArgumentError("Tensors class and score should match in dim_size(1). "
                                       f"Got {classes.shape[1]} vs. {scores.shape[1]}")
        return Classification(Served(ref.name, servable.version, name), classes,
                              None if scores is None else scores.astype(np.float32, copy=False))

    def _regress(self, servable: Servable, ref: ModelRef, examples: Sequence[bytes]) -> Regression:
        name, info = self._signature_for_examples(servable, ref, examples, REGRESS_METHOD)
        if len(info.outputs) != 1:
            raise InvalidArgumentError("Expected one output Tensor.")
        if "outputs" not in info.outputs:
            raise InvalidArgumentError(f"No regression outputs found in signature '{name}'; expected one output "
                                       "named 'outputs'")
        values = servable.run(name, {"inputs": _string_tensor(examples)})["outputs"]
        n = len(examples)
        if not (values.shape == (n,) or values.shape == (n, 1)):
            raise InvalidArgumentError(f"Expected output Tensor shape to be either [batch_size] or "
                                       f"[batch_size, 1] but got {list(values.shape)}")
        if values.dtype.kind != "f":
            raise InvalidArgumentError(f"Expected output Tensor of DT_FLOAT.  Got: {values.dtype}")
        return Regression(Served(ref.name, servable.version, name), values.reshape(n).astype(np.float32))


def _check_name(ref: ModelRef) -> None:
    if not ref.name:
        raise InvalidArgumentError("ModelSpec has no name specified.")  # server_core.cc


def _check_output_filter(output_filter: Sequence[str], outputs: dict) -> list[str]:
    if not output_filter:
        return sorted(outputs)
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in outputs:
            raise InvalidArgumentError(f"output tensor alias not found in signature: {alias} Outputs expected to be "
                                       f"in the set {{{','.join(sorted(outputs))}}}.")
        if alias in seen:
            raise InvalidArgumentError(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return list(output_filter)


def _string_tensor(values: Sequence[bytes]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr
