"""The server's side of TensorProto <-> numpy (the conversion itself is :mod:`tfship.tensorproto`).

Request tensors are read under the server's :class:`~tfship.tensorproto.TensorLimits` (checked from
the declared shape before anything is allocated) and refused in TF Serving's words
(``GetInputValues``, tensorflow/cc/saved_model/util.cc: "tensor parsing error: <alias>"), with the
reason appended. Responses are written as TF Serving writes them (``Tensor::AsProtoField``: typed
``*_val`` fields, not ``tensor_content``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tfship import tensorproto
from tfship.errors import TensorProtoError
from tfship.serve.errors import InternalError, InvalidArgumentError
from tfship.tensorproto import TensorLimits, dtype_name

__all__ = ["TensorLimits", "dtype_name", "numpy_dtype", "numpy_dtype_matches", "request_tensors",
           "response_tensor", "limits_for_request_bytes"]

# A request of N bytes legitimately carries at most ~4N bytes of tensor: JSON's shortest number
# ("0,": 2 bytes) becomes 8 bytes as int64/double, a packed proto element never grows more than that.
TENSOR_BYTES_PER_REQUEST_BYTE = 4


def limits_for_request_bytes(max_request_bytes: int, max_tensor_bytes: int | None = None) -> TensorLimits:
    """The per-tensor limit: ``max_tensor_bytes``, or by default 4x the request size limit."""
    return TensorLimits(max_bytes=max_tensor_bytes if max_tensor_bytes is not None
                        else TENSOR_BYTES_PER_REQUEST_BYTE * max_request_bytes)


def numpy_dtype(dtype: int) -> np.dtype:
    try:
        return tensorproto.numpy_dtype(dtype)
    except TensorProtoError as e:
        raise InvalidArgumentError(f"tensor type {dtype_name(dtype)} is not supported by this server") from e


def numpy_dtype_matches(value: np.dtype, dtype: int) -> bool:
    return tensorproto.dtype_matches(value, dtype)


def request_tensors(protos: Mapping[str, object], limits: TensorLimits | None) -> dict[str, np.ndarray]:
    """A request's ``map<string, TensorProto>`` as arrays; INVALID_ARGUMENT naming the bad one."""
    out = {}
    for alias, proto in protos.items():
        try:
            out[alias] = tensorproto.to_numpy(proto, limits)
        except TensorProtoError as e:
            raise InvalidArgumentError(f"tensor parsing error: {alias}: {e}") from e
    return out


def response_tensor(array: np.ndarray, proto, packed: bool = False) -> None:
    """Write an output into the response's TensorProto (typed fields, as TF Serving answers; ``packed``:
    ``tensor_content``, as with --enable_serialization_as_tensor_content)."""
    try:
        tensorproto.from_numpy(array, proto, packed)
    except TensorProtoError as e:
        raise InternalError(f"an output cannot be sent: {e}") from e
