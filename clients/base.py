"""What both transports share: model selection, input handling, result assembly, retries.

A transport subclass implements five ``_*`` methods that send one request and translate the answer
(or failure) into Python objects and ``ServerError``; everything else lives here, once.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from tfship import contract
from tfship.clients.errors import ImageError, ProtocolError, ServerError, ServerUnavailableError
from tfship.clients.images import Images, to_batch
from tfship.clients.results import Metadata, ModelRef, ModelStatus, Prediction
from tfship.errors import UsageError

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


def is_retryable(error: ServerError) -> bool:
    return error.code == "UNAVAILABLE"


class ModelClient(ABC):
    """``predict`` / ``classify`` / ``metadata`` / ``status`` against one served model."""

    def __init__(self, server: str, model: str | ModelRef = contract.DEFAULT_MODEL_NAME, *,
                 version: int | None = None, version_label: str | None = None,
                 timeout: float = 10.0, retry: RetryPolicy = RetryPolicy(),
                 labels: Sequence[str] = contract.MNIST_LABELS) -> None:
        if timeout <= 0:
            raise UsageError(f"timeout must be positive, got {timeout}")
        self.server = server
        self.model = model if isinstance(model, ModelRef) else ModelRef(model, version, version_label)
        self.timeout = float(timeout)
        self.retry = retry
        self.labels = tuple(labels)

    # -- the API -----------------------------------------------------------------------------

    def predict(self, images: Images, *, signature: str = contract.PREDICT_SIGNATURE,
                input_name: str = contract.PREDICT_INPUT,
                output_name: str = contract.PREDICT_OUTPUT) -> Prediction:
        """Scores from the Predict API (signature ``predict_images``: float (N, 784) -> (N, K))."""
        batch = self._batch(images)
        scores, version = self._with_retries(lambda: self._predict(batch, signature, input_name, output_name))
        scores = np.asarray(scores, dtype=np.float32)
        if scores.ndim != 2 or scores.shape[0] != batch.shape[0]:
            raise ProtocolError(f"{self.server}: output '{output_name}' has shape {scores.shape}, "
                                f"expected ({batch.shape[0]}, K) for {batch.shape[0]} images")
        labels = self.labels if len(self.labels) == scores.shape[1] else tuple(map(str, range(scores.shape[1])))
        return Prediction(scores, labels, self.model.name, version)

    def classify(self, images: Images, *, signature: str = contract.CLASSIFY_SIGNATURE,
                 feature: str = contract.CLASSIFY_FEATURE) -> Prediction:
        """Labels and scores from the Classify API (tf.Example with float feature ``x``)."""
        batch = self._batch(images)
        rows, version = self._with_retries(lambda: self._classify(batch, signature, feature))
        labels, scores = _rows_to_scores(rows, batch.shape[0], self.server)
        return Prediction(scores, labels, self.model.name, version)

    def metadata(self) -> Metadata:
        """The served version's signatures."""
        return self._with_retries(self._metadata)

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
    def _predict(self, batch: np.ndarray, signature: str, input_name: str,
                 output_name: str) -> tuple[np.ndarray, int | None]: ...

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
    """Classify results (per image: (label, score) pairs) -> labels of row 0 and an (N, K) array."""
    if len(rows) != n or n == 0:
        raise ProtocolError(f"{server}: classify returned {len(rows)} results for {n} images")
    labels = tuple(label for label, _ in rows[0])
    column = {label: j for j, label in enumerate(labels)}
    scores = np.empty((n, len(labels)), dtype=np.float32)
    for i, row in enumerate(rows):
        if len(row) != len(labels) or any(label not in column for label, _ in row):
            raise ProtocolError(f"{server}: classify result {i} has labels {[l for l, _ in row]}, "
                                f"but result 0 has {list(labels)}")
        for label, score in row:
            scores[i, column[label]] = score
    return labels, scores
