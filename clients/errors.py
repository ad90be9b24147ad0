"""Errors of the clients, one type for both transports.

A server's error arrives as ``ServerError`` with the canonical code name (``NOT_FOUND``,
``INVALID_ARGUMENT``...; the gRPC status code, or the code TF Serving maps to the HTTP status) and
the server's own message. Not reaching the server at all is ``ServerUnavailableError``.
"""

from __future__ import annotations

from tfship.errors import DataError, TfshipError, UsageError

# TF Serving's REST API answers an error with the HTTP status of its canonical code (the usual
# gRPC -> HTTP mapping); the body carries only {"error": message}. Going back is ambiguous: 400 is
# INVALID_ARGUMENT, FAILED_PRECONDITION or OUT_OF_RANGE; the most common code wins, and the
# status itself stays available as ServerError.http_status.
HTTP_STATUS_TO_CODE: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def code_for_http_status(status: int) -> str:
    if status in HTTP_STATUS_TO_CODE:
        return HTTP_STATUS_TO_CODE[status]
    return "INVALID_ARGUMENT" if 400 <= status < 500 else "UNKNOWN"


class ServerError(TfshipError):
    """The server answered with an error: ``code`` (canonical name) and the server's ``message``."""

    def __init__(self, code: str, message: str, *, server: str, http_status: int | None = None) -> None:
        super().__init__(f"{server} answered {code}: {message}")
        self.code = code
        self.message = message
        self.server = server
        self.http_status = http_status


class ServerUnavailableError(ServerError):
    """The server could not be reached (refused, timed out, or kept answering UNAVAILABLE / 503)."""

    def __init__(self, message: str, *, server: str, code: str = "UNAVAILABLE", attempts: int = 1) -> None:
        TfshipError.__init__(
            self, f"cannot reach {server} ({message}) after {attempts} attempt(s); "
                  "is the server running at that address (start one with 'tfship serve')?")
        self.code = code
        self.message = message
        self.server = server
        self.http_status = None
        self.attempts = attempts


class ProtocolError(TfshipError):
    """The server's answer does not have the shape of TF Serving's API (wrong server or model)."""


class ImageError(DataError):
    """An image file or array cannot be turned into MNIST's form; the message names which one."""


__all__ = ["ServerError", "ServerUnavailableError", "ProtocolError", "ImageError", "UsageError",
           "code_for_http_status"]
