"""TensorFlow dtypes and ``TensorProto`` <-> numpy, without calling into the TensorFlow runtime.

Responses are written the way TF Serving writes them (``Tensor::AsProtoField``: typed repeated
fields such as ``float_val``, not ``tensor_content``); requests are read in either form, as TF does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfship.serve.errors import InvalidArgumentError


@dataclass(frozen=True)
class _DType:
    name: str  # TensorFlow's DataTypeString
    numpy: np.dtype
    field: str  # the TensorProto repeated field that carries values of this type


# tensorflow/core/framework/types.proto enum values.
_DTYPES: dict[int, _DType] = {
    1: _DType("float", np.dtype(np.float32), "float_val"),
    2: _DType("double", np.dtype(np.float64), "double_val"),
    3: _DType("int32", np.dtype(np.int32), "int_val"),
    4: _DType("uint8", np.dtype(np.uint8), "int_val"),
    5: _DType("int16", np.dtype(np.int16), "int_val"),
    6: _DType("int8", np.dtype(np.int8), "int_val"),
    7: _DType("string", np.dtype(object), "string_val"),
    9: _DType("int64", np.dtype(np.int64), "int64_val"),
    10: _DType("bool", np.dtype(np.bool_), "bool_val"),
    17: _DType("uint16", np.dtype(np.uint16), "int_val"),
    19: _DType("half", np.dtype(np.float16), "half_val"),
    22: _DType("uint32", np.dtype(np.uint32), "uint32_val"),
    23: _DType("uint64", np.dtype(np.uint64), "uint64_val"),
}
DT_FLOAT, DT_STRING = 1, 7


def dtype_name(dtype: int) -> str:
    d = _DTYPES.get(dtype)
    return d.name if d else {20: "resource", 21: "variant"}.get(dtype, f"dtype{dtype}")


def numpy_dtype(dtype: int) -> np.dtype:
    d = _DTYPES.get(dtype)
    if d is None:
        raise InvalidArgumentError(f"tensor type {dtype_name(dtype)} is not supported by this server")
    return d.numpy


def numpy_dtype_matches(value: np.dtype, dtype: int) -> bool:
    d = _DTYPES.get(dtype)
    if d is None:
        return False
    if d.name == "string":
        return value.kind in "OS"
    return value == d.numpy


def to_numpy(proto) -> np.ndarray:
    """A ``TensorProto`` as a numpy array (strings as an object array of bytes)."""
    d = _DTYPES.get(proto.dtype)
    if d is None:
        raise InvalidArgumentError(f"tensor type {dtype_name(proto.dtype)} is not supported by this server")
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(s < 0 for s in shape):
        raise InvalidArgumentError(f"tensor shape {list(shape)} has a negative dimension")
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if proto.tensor_content and d.name != "string":
        if len(proto.tensor_content) != size * d.numpy.itemsize:
            raise InvalidArgumentError(
                f"tensor_content has {len(proto.tensor_content)} bytes; shape {list(shape)} of {d.name} "
                f"needs {size * d.numpy.itemsize}")
        return np.frombuffer(proto.tensor_content, dtype=d.numpy).reshape(shape)
    values = getattr(proto, d.field)
    if d.name == "string":
        flat = np.empty(len(values), dtype=object)
        flat[:] = list(values)
    elif d.name == "half":
        flat = np.asarray(values, dtype=np.uint16).view(np.float16)
    else:
        flat = np.asarray(values, dtype=d.numpy)
    if flat.size == size:
        return flat.reshape(shape)
    if flat.size == 1 or (flat.size == 0 and size == 0):
        # TF semantics: a single value fills the whole tensor.
        return np.broadcast_to(flat, shape).copy() if flat.size else flat.reshape(shape)
    raise InvalidArgumentError(f"tensor of shape {list(shape)} needs {size} values, the request has {flat.size}")


def to_proto(array: np.ndarray, proto=None):
    """A numpy array as a ``TensorProto`` (filled into ``proto`` if given)."""
    if proto is None:
        from tensorflow.core.framework import tensor_pb2

        proto = tensor_pb2.TensorProto()
    dtype = from_numpy_dtype(array.dtype)
    proto.dtype = dtype
    for s in array.shape:
        proto.tensor_shape.dim.add(size=s)
    d = _DTYPES[dtype]
    flat = array.reshape(-1)
    field = getattr(proto, d.field)
    if d.name == "string":
        field.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    elif d.name == "half":
        field.extend(flat.view(np.uint16).tolist())
    else:
        field.extend(flat.tolist())
    return proto


def from_numpy_dtype(dtype: np.dtype) -> int:
    if dtype.kind in "OSU":
        return DT_STRING
    for enum, d in _DTYPES.items():
        if d.numpy == dtype and d.name != "string":
            return enum
    raise InvalidArgumentError(f"numpy dtype {dtype} has no TensorFlow equivalent here")
