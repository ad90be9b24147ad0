"""Errors shared by every part of tfship.

Each error carries a message a user can act on: which file or input, what was expected, what to do.
The CLI prints ``str(error)`` on one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations


class TfshipError(Exception):
    """Base class for errors a user can act on."""

    exit_code = 1


class UsageError(TfshipError):
    """Bad arguments: wrong flag value, unknown format name, conflicting options."""

    exit_code = 2


class DataError(TfshipError):
    """A data file is missing, truncated or does not match its expected hash."""


class ModelNotFoundError(TfshipError):
    """A model folder, version or signature does not exist where the user pointed."""


class SignatureError(TfshipError):
    """A SavedModel has no signature tfship can use, or the signature has the wrong shape."""


class MissingDependencyError(TfshipError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed. "
            f"Install it with: pip install 'tfship[{extra}]'"
        )
        self.package = package
        self.extra = extra


def require(module: str, package: str, extra: str, purpose: str):
    """Import ``module`` or raise MissingDependencyError naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(package, extra, purpose) from e


class TensorProtoError(TfshipError, ValueError):
    """A TensorProto that cannot become an array (bad shape, dtype or contents), or one over the
    reader's limits (:class:`tfship.tensorproto.TensorLimits`)."""
