"""NumPy arrays <-> TensorProto messages (tfship's own classes, see ``_proto``)."""

from __future__ import annotations

import numpy as np

from tfship.clients.errors import ProtocolError

# DataType enum numbers (tensorflow/core/framework/types.proto) for the dtypes the clients meet.
_NUMPY_BY_DTYPE = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64, 10: np.bool_}
_DTYPE_BY_NUMPY = {np.dtype(v): k for k, v in _NUMPY_BY_DTYPE.items()}
_VALUE_FIELD = {1: "float_val", 2: "double_val", 3: "int_val", 4: "int_val", 9: "int64_val", 10: "bool_val"}
DT_STRING = 7


def to_tensor_proto(array: np.ndarray, *, packed: bool = True):
    """A numeric array as a TensorProto: packed little-endian ``tensor_content`` (default), or the
    per-element ``*_val`` list (what TF Serving's Python example client sends; kept for comparison)."""
    from tfship.clients import _proto

    a = np.asarray(array)
    if a.dtype not in _DTYPE_BY_NUMPY:
        raise ProtocolError(f"cannot send an array of dtype {a.dtype}")
    dtype = _DTYPE_BY_NUMPY[a.dtype]
    tensor = _proto.TensorProto(dtype=dtype)
    tensor.tensor_shape.dim.extend(_proto.TensorShapeProto.Dim(size=d) for d in a.shape)
    if packed:
        tensor.tensor_content = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
    else:
        getattr(tensor, _VALUE_FIELD[dtype]).extend(a.ravel().tolist())
    return tensor


def from_tensor_proto(tensor) -> np.ndarray:
    """A TensorProto as an array, whichever encoding the server chose."""
    shape = tuple(int(d.size) for d in tensor.tensor_shape.dim)
    size = int(np.prod(shape)) if shape else 1
    if tensor.dtype == DT_STRING:
        values = [v.decode("utf-8") for v in tensor.string_val]
        return _fill(np.array(values, dtype=object), shape, size)
    if tensor.dtype not in _NUMPY_BY_DTYPE:
        raise ProtocolError(f"the server sent a tensor of unsupported DataType {tensor.dtype}")
    np_dtype = np.dtype(_NUMPY_BY_DTYPE[tensor.dtype])
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype=np_dtype.newbyteorder("<")).astype(np_dtype).reshape(shape)
    values = np.asarray(getattr(tensor, _VALUE_FIELD[tensor.dtype]), dtype=np_dtype)
    return _fill(values, shape, size)


def _fill(values: np.ndarray, shape: tuple[int, ...], size: int) -> np.ndarray:
    # TensorFlow's rule: a short value list repeats its last element to fill the shape.
    if values.size == size:
        return values.reshape(shape)
    if 0 < values.size < size:
        return np.concatenate([values, np.repeat(values[-1:], size - values.size)]).reshape(shape)
    raise ProtocolError(f"tensor of shape {shape} carries {values.size} values")
