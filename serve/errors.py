"""Serving errors, defined once, mapped once to HTTP status and once to gRPC status codes.

Each error carries the canonical status code TensorFlow Serving would return for the same
situation (``code``), and TF Serving's own message text where we know it, so a client sees the same
thing from ``tfship serve`` as from ``tensorflow_model_server``. The transports never choose codes
themselves: REST calls :func:`http_status`, gRPC calls :func:`grpc_code`.
"""

from __future__ import annotations

from tfship.errors import TfshipError


class ServingError(TfshipError):
    """A request failed; ``code`` is the canonical status name (as in ``grpc.StatusCode``)."""

    code = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgumentError(ServingError):
    code = "INVALID_ARGUMENT"


class NotFoundError(ServingError):
    code = "NOT_FOUND"


class FailedPreconditionError(ServingError):
    code = "FAILED_PRECONDITION"


class UnavailableError(ServingError):
    code = "UNAVAILABLE"


class ResourceExhaustedError(ServingError):
    code = "RESOURCE_EXHAUSTED"


class UnimplementedError(ServingError):
    code = "UNIMPLEMENTED"


class DeadlineExceededError(ServingError):
    code = "DEADLINE_EXCEEDED"


# What TF Serving answers when a request outlives --rest_api_timeout_in_ms or its gRPC deadline: the
# message of TensorFlow's session run timeout (RunOptions.timeout_in_ms, DirectSession).
TIMEOUT_MESSAGE = "Timed out waiting for notification"


class InternalError(ServingError):
    code = "INTERNAL"


class RequestTooLargeError(ResourceExhaustedError):
    """The request body is over the server's size limit (REST answers 413, gRPC RESOURCE_EXHAUSTED)."""


# TF Serving's own table (model_servers/http_server.cc, ToHTTPStatusCode).
_HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


def release(error: BaseException) -> None:
    """Drop what a handled error holds: the local variables of the frames its traceback (and those of
    its causes) passes through. Those include the request's decoded arrays; kept alive by the
    traceback <-> frame reference cycle, hundreds of MB per failed request waited for a full GC."""
    import traceback

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


def http_status(error: ServingError) -> int:
    """The HTTP status TF Serving's REST server sends for ``error``."""
    if isinstance(error, RequestTooLargeError):
        return 413  # TF Serving has no body limit; 413 is what an HTTP client expects for one.
    return _HTTP_STATUS.get(error.code, 500)


def grpc_code(error: ServingError):
    """The ``grpc.StatusCode`` for ``error``."""
    import grpc

    return getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN)
