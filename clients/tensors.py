"""NumPy arrays <-> TensorProto messages (tfship's own classes, see ``_proto``), through the one
conversion the server uses too (:mod:`tfship.tensorproto`)."""

from __future__ import annotations

import numpy as np

from tfship import tensorproto
from tfship.clients.errors import ProtocolError
from tfship.errors import TensorProtoError

DT_STRING = tensorproto.DT_STRING


def to_tensor_proto(array: np.ndarray, *, packed: bool = True):
    """An array as a TensorProto: packed little-endian ``tensor_content`` (default), or the
    per-element ``*_val`` list (what TF Serving's Python example client sends; kept for comparison)."""
    from tfship.clients import _proto

    try:
        return tensorproto.from_numpy(array, _proto.TensorProto(), packed=packed)
    except TensorProtoError as e:
        raise ProtocolError(f"cannot send this array: {e}") from e


def from_tensor_proto(tensor) -> np.ndarray:
    """A TensorProto as an array, whichever encoding the server chose (strings decoded as UTF-8)."""
    try:
        array = tensorproto.to_numpy(tensor)
    except TensorProtoError as e:
        raise ProtocolError(f"the server sent a tensor that cannot be read: {e}") from e
    if tensor.dtype == DT_STRING:
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array) if array.size else array
    return array
