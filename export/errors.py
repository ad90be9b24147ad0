"""Errors of the export and verify steps."""

from __future__ import annotations

from tfship.errors import TfshipError


class ExportError(TfshipError):
    """A converter failed or produced an artifact that does not load or does not agree."""

    def __init__(self, fmt: str, message: str, hint: str = "") -> None:
        text = f"{fmt} export failed: {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)
        self.format = fmt


class ParityError(TfshipError):
    """One or more artifacts do not compute the same function as the SavedModel."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("parity check failed for " + "; ".join(failures))
        self.failures = failures
