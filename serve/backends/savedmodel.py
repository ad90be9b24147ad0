"""The SavedModel in TensorFlow's own runtime: every signature, exactly as TF Serving runs it."""

from __future__ import annotations

import re
from pathlib import Path

from tfship.serve.backends.base import Backend, BackendOptions, Tensors, signature_info
from tfship.serve.errors import FailedPreconditionError, InvalidArgumentError, ServingError


class SavedModelBackend(Backend):
    kind = "savedmodel"

    def __init__(self, path: Path, options: BackendOptions) -> None:
        super().__init__(path, options)
        import tensorflow as tf

        self._tf = tf
        self._loaded = tf.saved_model.load(str(path), tags=list(options.tags))
        self._functions = dict(self._loaded.signatures)
        self.signatures = {name: signature_info(name, sig) for name, sig in self.signature_defs.items()}

    def run(self, signature_name: str, inputs: Tensors) -> Tensors:
        tf = self._tf
        fn = self._functions.get(signature_name)
        if fn is None:  # a SignatureDef with no function to run, such as __saved_model_init_op
            raise FailedPreconditionError(f'Serving signature key "{signature_name}" not found.')
        try:
            outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as e:
            # A TensorFlow runtime error: bad data (e.g. a tf.Example without the expected feature).
            raise _op_error(e) from e
        except (TypeError, ValueError) as e:
            raise InvalidArgumentError(str(e)) from e
        return {k: v.numpy() for k, v in outputs.items()}


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
