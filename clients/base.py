"""What both transports share: model selection, input handling, result assembly, retries.

A transport subclass implements five ``_*`` methods that send one request and translate the answer
(or failure) into Python objects and ``ServerError``; everything else lives here, once.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from tfship import contract
from tfship.clients.errors import ImageError, ProtocolError, ServerError, ServerUnavailableError
from tfship.clients.images import Images, to_batch
from tfship.clients.inputs import InputOptions, encode
from tfship.clients.results import InputForm, Metadata, ModelRef, ModelStatus, Prediction
from tfship.clients.signatures import PredictPlan, plan_predict
from tfship.errors import SignatureError, UsageError

T = TypeVar("T")

# One request with 1,000 images is ~3 MB on the wire; gRPC's default cap is 4 MB per message.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """Retry only what cannot have run: UNAVAILABLE, HTTP 503, connection refused.

    ``attempts`` counts the first try; the waits grow ``initial_backoff * multiplier**i`` up to
    ``max_backoff`` (about 0.1 + 0.2 + 0.4 + 0.8 + 1.6 = 3.1 s over the default 6 attempts, enough
    for a server that is still binding its port).
    """

    attempts: int = 6
    initial_backoff: float = 0.1
    multiplier: float = 2.0
    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise UsageError(f"retry attempts must be at least 1, got {self.attempts}")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise UsageError("retry backoff must be non-negative and its multiplier at least 1")

    def waits(self) -> Iterator[float]:
        wait = self.initial_backoff
        for _ in range(self.attempts - 1):
            yield min(wait, self.max_backoff)
            wait *= self.multiplier


NO_RETRY = RetryPolicy(attempts=1)


# Codes a server answers when the request does not fit the model version that is now served.
STALE_PLAN_CODES = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION"})


def is_retryable(error: ServerError) -> bool:
    return error.code == "UNAVAILABLE"


class ModelClient(ABC):
    """``predict`` / ``classify`` / ``metadata`` / ``status`` against one served model.

    ``predict`` reads the model's metadata once per client (signature, input name, shape and dtype,
    outputs) and makes image files and arrays into what the input takes; see ``signatures`` and
    ``inputs``. ``labels``: class names for the score columns when the model has none of its own
    (default: the column indices).
    """

    def __init__(self, server: str, model: str | ModelRef = contract.DEFAULT_MODEL_NAME, *,
                 version: int | None = None, version_label: str | None = None,
                 timeout: float = 10.0, retry: RetryPolicy = RetryPolicy(),
                 labels: Sequence[str] | None = None) -> None:
        if timeout <= 0:
            raise UsageError(f"timeout must be positive, got {timeout}")
        self.server = server
        self.model = model if isinstance(model, ModelRef) else ModelRef(model, version, version_label)
        self.timeout = float(timeout)
        self.retry = retry
        self.labels = tuple(labels) if labels is not None else None
        self._metadata_cache: Metadata | None = None
        self._plans: dict[tuple, PredictPlan] = {}  # plans made from ``_plans_of``
        self._plans_of: Metadata | None = None
        self._cache_lock = threading.Lock()

    # -- the API -----------------------------------------------------------------------------

    def predict(self, images: Images, *, signature: str | None = None, input_name: str | None = None,
                output_name: str | None = None, value_range: str | None = None,
                preprocessing: str = "auto") -> Prediction:
        """Scores from the Predict API for image files or arrays, made into what the model takes.

        The signature, input and outputs come from the model's metadata unless named (see
        ``signatures.choose_signature``); ``value_range`` ("0..1", "0..255", "-1..1"; default by
        dtype) and ``preprocessing`` ("auto", "mnist", "resize") say how files become pixels."""
        options = InputOptions(value_range, preprocessing)
        cached = self._metadata_cache is not None
        plan = self.plan(signature, input_name, output_name)
        try:
            batch, form = encode(images, plan, options)
            return self.predict_tensor(batch, plan, form)
        except ServerError as e:
            # A new version may have replaced the one whose metadata is cached: read it again once.
            if not cached or e.code not in STALE_PLAN_CODES:
                raise
            fresh = self.plan(signature, input_name, output_name, refresh=True)
            if fresh == plan:
                raise
            batch, form = encode(images, fresh, options)
            return self.predict_tensor(batch, fresh, form)

    def plan(self, signature: str | None = None, input_name: str | None = None,
             output_name: str | None = None, *, refresh: bool = False) -> PredictPlan:
        """Which signature, input and outputs ``predict`` uses (``SignatureError`` says why none)."""
        metadata = self.metadata(refresh=refresh)
        key = (signature, input_name, output_name)
        with self._cache_lock:
            plan = self._plans.get(key) if self._plans_of is metadata else None
        if plan is None:
            plan = plan_predict(metadata, signature, input_name, output_name)
            with self._cache_lock:
                if self._plans_of is not metadata:
                    self._plans, self._plans_of = {}, metadata
                self._plans[key] = plan
        return plan

    def predict_tensor(self, batch: np.ndarray, plan: PredictPlan, form: InputForm | None = None) -> Prediction:
        """Send a batch already in the input's form (see ``inputs.encode``) and read scores and labels."""
        n = batch.shape[0]
        chunks = _split(batch, plan)
        answers = [self._with_retries(lambda chunk=chunk: self._predict(chunk, plan)) for chunk in chunks]
        version = answers[-1][1]
        outputs = {name: _join([a[0][name] for a in answers], name, plan, self.server) for name in answers[0][0]}
        if plan.scores not in outputs:
            raise ProtocolError(f"{self.server}: the Predict answer has outputs {sorted(outputs)}, "
                                f"not '{plan.scores}' of signature '{plan.signature}'")
        scores = np.asarray(outputs[plan.scores])
        if scores.ndim != 2 or scores.shape[0] != n or scores.dtype.kind not in "fiu":
            raise ProtocolError(f"{self.server}: output '{plan.scores}' of signature '{plan.signature}' has shape "
                                f"{scores.shape} ({scores.dtype}), expected float ({n}, K) for {n} inputs")
        labels, scores, source = self._labels(outputs.get(plan.labels) if plan.labels else None,
                                              scores.astype(np.float32), plan)
        return Prediction(scores, labels, self.model.name, version, form, source)

    def classify(self, images: Images, *, signature: str = contract.CLASSIFY_SIGNATURE,
                 feature: str = contract.CLASSIFY_FEATURE) -> Prediction:
        """Labels and scores from the Classify API (tf.Example with float feature ``x``, MNIST's form)."""
        batch = self._batch(images)
        rows, version = self._with_retries(lambda: self._classify(batch, signature, feature))
        labels, scores = _rows_to_scores(rows, batch.shape[0], self.server)
        return Prediction(scores, labels, self.model.name, version, None, "model")

    def metadata(self, *, refresh: bool = False) -> Metadata:
        """The served version's signatures, read once per client (``refresh=True`` reads them again)."""
        with self._cache_lock:
            cached = self._metadata_cache
        if cached is not None and not refresh:
            return cached
        fetched = self._with_retries(self._metadata)
        with self._cache_lock:
            self._metadata_cache = fetched
        return fetched

    def status(self) -> ModelStatus:
        """The state of each version the server knows for this model."""
        return self._with_retries(self._status)

    def close(self) -> None:
        """Release the connection(s); the client is not usable afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transports ----------------------------------------------------------------------------

    @abstractmethod
    def _predict(self, batch: np.ndarray, plan: PredictPlan) -> tuple[dict[str, np.ndarray], int | None]:
        """The outputs ``plan.outputs()`` (those the answer has) and the version that answered."""

    @abstractmethod
    def _classify(self, batch: np.ndarray, signature: str,
                  feature: str) -> tuple[list[list[tuple[str, float]]], int | None]: ...

    @abstractmethod
    def _metadata(self) -> Metadata: ...

    @abstractmethod
    def _status(self) -> ModelStatus: ...

    # -- shared --------------------------------------------------------------------------------

    def _batch(self, images: Images) -> np.ndarray:
        batch = to_batch(images)
        if batch.shape[0] == 0:
            raise ImageError("no images to send (the batch is empty)")
        return batch

    def _labels(self, classes: np.ndarray | None, scores: np.ndarray,
                plan: PredictPlan) -> tuple[tuple[str, ...], np.ndarray, str]:
        n, k = scores.shape
        if classes is not None:
            names = np.vectorize(_text, otypes=[object])(np.asarray(classes)) if np.size(classes) else classes
            if names.shape == (n, k):
                rows = [list(zip(map(str, row), map(float, values))) for row, values in zip(names, scores)]
                labels, scores = _rows_to_scores(rows, n, self.server)
                return labels, scores, "model"
            if names.size == k and names.ndim <= 2:
                return tuple(map(str, names.reshape(-1))), scores, "model"
            raise ProtocolError(f"{self.server}: labels output '{plan.labels}' of signature '{plan.signature}' has "
                                f"shape {names.shape}; expected ({n}, {k}) or ({k},) like scores '{plan.scores}'")
        if self.labels is not None and len(self.labels) == k:
            return self.labels, scores, "given"
        return tuple(str(j) for j in range(k)), scores, "indices"

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        waits = self.retry.waits()
        tries = 0
        while True:
            tries += 1
            try:
                return attempt()
            except ServerError as e:
                wait = next(waits, None) if is_retryable(e) else None
                if wait is None:
                    if isinstance(e, ServerUnavailableError) and tries > 1:
                        raise ServerUnavailableError(e.message, server=e.server, code=e.code,
                                                     attempts=tries) from e
                    raise
            time.sleep(wait)


def _rows_to_scores(rows: list[list[tuple[str, float]]], n: int,
                    server: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Per image (label, score) pairs -> every label in order of first appearance, and an (N, K)
    array; a label an image's row lacks (top-k classifiers return different classes per image) is NaN."""
    if len(rows) != n or n == 0:
        raise ProtocolError(f"{server}: classify returned {len(rows)} results for {n} images")
    column: dict[str, int] = {}
    for row in rows:
        for label, _ in row:
            column.setdefault(label, len(column))
    scores = np.full((n, len(column)), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        if len({label for label, _ in row}) != len(row):
            raise ProtocolError(f"{server}: result {i} repeats a label: {[label for label, _ in row]}")
        for label, score in row:
            scores[i, column[label]] = score
    return tuple(column), scores


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _split(batch: np.ndarray, plan: PredictPlan) -> list[np.ndarray]:
    """One request, or several when the input declares a fixed batch size (e.g. [1, 224, 224, 3])."""
    fixed = plan.fixed_batch
    n = batch.shape[0]
    if fixed is None or n == fixed:
        return [batch]
    if n % fixed:
        raise SignatureError(f"input '{plan.input_name}' of signature '{plan.signature}' takes batches of "
                             f"exactly {fixed}; {n} inputs do not split into them")
    return [batch[i:i + fixed] for i in range(0, n, fixed)]


def _join(parts: list[np.ndarray], name: str, plan: PredictPlan, server: str) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    try:
        return np.concatenate(parts)
    except ValueError as e:
        raise ProtocolError(f"{server}: output '{name}' of signature '{plan.signature}' changed shape between "
                            f"batches: {[p.shape for p in parts]}") from e
