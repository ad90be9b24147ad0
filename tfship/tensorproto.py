"""TensorFlow's ``TensorProto`` <-> NumPy, with numpy only: one conversion for the server and the clients.

Works on any message shaped like ``tensorflow.TensorProto`` (TensorFlow's generated class or the
clients' private copy): only the field names are used, never the class.

Reading follows TensorFlow's ``Tensor::FromProto`` (tensorflow/core/framework/tensor.cc):

- ``tensor_content`` must hold exactly ``num_elements * itemsize`` bytes (``Helper<T>::Decode``);
- otherwise the typed ``*_val`` field fills the tensor (``FromProtoField<T>``): no values give the
  type's zero; fewer values than elements repeat the LAST value; more values than elements keep the
  first ``num_elements`` ("If "in" has less values than "n", fills the rest of T[n] with the last
  value. If "in" has no values, fills T[n] with the default value for T.");
- a tensor with zero elements ignores its values.

Unlike TensorFlow, the declared shape is checked against :class:`TensorLimits` before anything is
allocated: a 58-byte message declaring ``[1000000, 784]`` with one ``float_val`` would otherwise
materialise 3 GB before anything else could refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfship.errors import TensorProtoError


@dataclass(frozen=True)
class DataType:
    """One row of TensorFlow's DataType table (tensorflow/core/framework/types.proto, types.cc)."""

    enum: int
    name: str  # DataTypeString: what TF's messages print ("float", "int32", ...)
    numpy: np.dtype | None  # None: no numpy equivalent, so not convertible here
    field: str | None  # the TensorProto repeated field carrying the values

    @property
    def enum_name(self) -> str:
        return "DT_" + self.name.upper()


_OBJ = np.dtype(object)
DATA_TYPES: dict[int, DataType] = {d.enum: d for d in (
    DataType(1, "float", np.dtype(np.float32), "float_val"),
    DataType(2, "double", np.dtype(np.float64), "double_val"),
    DataType(3, "int32", np.dtype(np.int32), "int_val"),
    DataType(4, "uint8", np.dtype(np.uint8), "int_val"),
    DataType(5, "int16", np.dtype(np.int16), "int_val"),
    DataType(6, "int8", np.dtype(np.int8), "int_val"),
    DataType(7, "string", _OBJ, "string_val"),
    DataType(8, "complex64", np.dtype(np.complex64), "scomplex_val"),
    DataType(9, "int64", np.dtype(np.int64), "int64_val"),
    DataType(10, "bool", np.dtype(np.bool_), "bool_val"),
    DataType(11, "qint8", None, "int_val"),
    DataType(12, "quint8", None, "int_val"),
    DataType(13, "qint32", None, "int_val"),
    DataType(14, "bfloat16", None, "half_val"),
    DataType(15, "qint16", None, "int_val"),
    DataType(16, "quint16", None, "int_val"),
    DataType(17, "uint16", np.dtype(np.uint16), "int_val"),
    DataType(18, "complex128", np.dtype(np.complex128), "dcomplex_val"),
    DataType(19, "half", np.dtype(np.float16), "half_val"),
    DataType(20, "resource", None, "resource_handle_val"),
    DataType(21, "variant", None, "variant_val"),
    DataType(22, "uint32", np.dtype(np.uint32), "uint32_val"),
    DataType(23, "uint64", np.dtype(np.uint64), "uint64_val"),
)}
DT_INVALID, DT_FLOAT, DT_STRING = 0, 1, 7
_BY_NUMPY = {d.numpy: d for d in DATA_TYPES.values() if d.numpy is not None and d.numpy != _OBJ}
_COMPLEX = {8: np.dtype(np.float32), 18: np.dtype(np.float64)}  # component type of the *complex_val pairs
# TensorShape::IsValid (tensor_shape.cc) allows 254 dimensions, but a numpy array has at most 64, so a
# tensor of rank 65..254 cannot be built here; no model this server runs takes one.
MAX_RANK = 64
_STRING_ITEM_BYTES = 8  # one object pointer per element of a string tensor


@dataclass(frozen=True)
class TensorLimits:
    """The largest tensor a decoder will build: checked from the declared shape, before allocating.
    ``None`` means no limit of that kind."""

    max_elements: int | None = None
    max_bytes: int | None = None


def data_type(enum: int) -> DataType:
    """The table row of a DataType enum value (unknown values get a row with no numpy type)."""
    d = DATA_TYPES.get(enum)
    return d if d is not None else DataType(enum, f"dtype{enum}" if enum else "invalid", None, None)


def dtype_name(enum: int) -> str:
    """TensorFlow's name for a DataType enum value (``1`` -> ``"float"``)."""
    return data_type(enum).name


def numpy_dtype(enum: int) -> np.dtype:
    """The numpy dtype of a DataType enum value; strings are ``object`` (elements are ``bytes``)."""
    d = data_type(enum)
    if d.numpy is None:
        raise TensorProtoError(f"tensors of type {d.name} cannot be converted to numpy")
    return d.numpy


def enum_for(dtype: np.dtype) -> int:
    """The DataType enum value for a numpy dtype (``object``, bytes and str arrays are DT_STRING)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return DT_STRING
    d = _BY_NUMPY.get(dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype)
    if d is None:
        raise TensorProtoError(f"numpy dtype {dtype} has no TensorFlow DataType")
    return d.enum


def dtype_matches(dtype: np.dtype, enum: int) -> bool:
    """Whether arrays of ``dtype`` are what a tensor of type ``enum`` holds."""
    if enum == DT_STRING:
        return np.dtype(dtype).kind in "OSU"
    return data_type(enum).numpy == dtype


def shape_of(proto) -> tuple[int, ...]:
    """The declared shape, checked as TensorShape::IsValid does (no negative or unknown dimension)."""
    dims = proto.tensor_shape.dim
    if proto.tensor_shape.unknown_rank:
        raise TensorProtoError("the tensor's shape has unknown rank")
    if len(dims) > MAX_RANK:
        raise TensorProtoError(f"the tensor's shape has {len(dims)} dimensions; this server handles at most {MAX_RANK}")
    shape = tuple(int(d.size) for d in dims)
    if any(s < 0 for s in shape):
        raise TensorProtoError(f"the tensor's shape {_text(shape)} has a negative dimension")
    return shape


def check_size(shape: tuple[int, ...], dtype: np.dtype, limits: TensorLimits | None) -> int:
    """The element count of ``shape``, refused if it is over ``limits`` (computed without overflow)."""
    count = 1
    for s in shape:
        count *= s
    if limits is None:
        return count
    item = _STRING_ITEM_BYTES if dtype == _OBJ else dtype.itemsize
    if limits.max_elements is not None and count > limits.max_elements:
        raise TensorProtoError(f"shape {_text(shape)} has {count} elements, over this server's limit of "
                               f"{limits.max_elements} elements per tensor")
    if limits.max_bytes is not None and count * item > limits.max_bytes:
        raise TensorProtoError(f"shape {_text(shape)} of {_name(dtype)} needs {_bytes(count * item)}, over this "
                               f"server's limit of {_bytes(limits.max_bytes)} per tensor")
    return count


def to_numpy(proto, limits: TensorLimits | None = None) -> np.ndarray:
    """A TensorProto as an array (strings: an object array of ``bytes``), as TensorFlow reads it.

    Raises :class:`~tfship.errors.TensorProtoError` for an invalid proto or one over ``limits``, before
    allocating anything the size of the declared shape."""
    d = data_type(proto.dtype)
    if proto.dtype == DT_INVALID:
        raise TensorProtoError("the tensor has no dtype (DT_INVALID)")
    if d.numpy is None:
        raise TensorProtoError(f"tensors of type {d.name} are not supported")
    shape = shape_of(proto)
    count = check_size(shape, d.numpy, limits)
    if count == 0:
        return np.zeros(shape, d.numpy) if d.numpy != _OBJ else np.full(shape, b"", dtype=_OBJ)
    content = proto.tensor_content
    if content:
        flat = _strings_from_content(content, count) if d.numpy == _OBJ else _from_content(content, count, d)
        return flat.reshape(shape)
    return _from_field(proto, d, count).reshape(shape)


def _from_content(content: bytes, count: int, d: DataType) -> np.ndarray:
    want = count * d.numpy.itemsize
    if len(content) != want:
        raise TensorProtoError(f"tensor_content has {len(content)} bytes; {count} elements of {d.name} need {want}")
    # Little-endian on the wire; on a little-endian host this is a view of the message's bytes.
    return np.frombuffer(content, dtype=d.numpy.newbyteorder("<")).astype(d.numpy, copy=False)


def _strings_from_content(content: bytes, count: int) -> np.ndarray:
    """port::DecodeStringList: ``count`` varint lengths, then the strings back to back."""
    lengths, pos = [], 0
    for _ in range(count):
        length, shift = 0, 0
        while True:
            if pos >= len(content) or shift > 63:
                raise TensorProtoError(f"tensor_content is not a list of {count} strings")
            byte = content[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        lengths.append(length)
    if pos + sum(lengths) != len(content):
        raise TensorProtoError(f"tensor_content is not a list of {count} strings")
    out = np.empty(count, dtype=_OBJ)
    for i, length in enumerate(lengths):
        out[i] = bytes(content[pos:pos + length])
        pos += length
    return out


def _from_field(proto, d: DataType, count: int) -> np.ndarray:
    values = _field(proto, d)
    pair = d.enum in _COMPLEX  # scomplex_val / dcomplex_val hold (real, imaginary) pairs
    have = len(values) // 2 if pair else len(values)
    out = np.zeros(count, d.numpy) if d.numpy != _OBJ else np.full(count, b"", dtype=_OBJ)
    if have == 0:
        return out  # FromProtoField: no values give T()
    take = min(have, count)  # more values than elements: the first ``count`` are used
    if pair:
        parts = np.asarray(values[:2 * take], dtype=_COMPLEX[d.enum])
        out[:take] = parts[0::2] + 1j * parts[1::2]
    elif d.numpy == _OBJ:
        out[:take] = list(values[:take])
    elif d.field == "half_val":  # the float16 bit patterns, as int32
        out[:take] = np.asarray(values[:take], dtype=np.int64).astype(np.uint16).view(np.float16)
    elif d.field == "int_val" and d.numpy != np.int32:  # int8/16, uint8/16 travel as int32: wrap like a C cast
        out[:take] = np.asarray(values[:take], dtype=np.int64).astype(d.numpy)
    else:
        out[:take] = np.asarray(values if take == have else values[:take], dtype=d.numpy)
    if take < count:
        out[take:] = out[take - 1]  # fewer values: repeat the last one
    return out


def _field(proto, d: DataType):
    try:
        return getattr(proto, d.field)
    except AttributeError as e:
        raise TensorProtoError(f"this TensorProto class has no {d.field} field for {d.name} tensors") from e


def from_numpy(array, proto, packed: bool = False):
    """Fill ``proto`` (a fresh TensorProto) with ``array`` and return it.

    ``packed=False`` writes the typed ``*_val`` field, as TF Serving's responses do
    (``Tensor::AsProtoField``); ``packed=True`` writes little-endian ``tensor_content``
    (``AsProtoTensorContent``), the compact form for requests. Strings always go to ``string_val``."""
    a = np.asarray(array)
    enum = enum_for(a.dtype)
    d = DATA_TYPES[enum]
    proto.dtype = enum
    for size in a.shape:
        proto.tensor_shape.dim.add(size=int(size))
    if a.size == 0:
        return proto
    if enum == DT_STRING:
        proto.string_val.extend(_as_bytes(v) for v in a.reshape(-1))
    elif packed:
        proto.tensor_content = np.ascontiguousarray(a, dtype=d.numpy.newbyteorder("<")).tobytes()
    elif enum in _COMPLEX:
        _field(proto, d).extend(np.ascontiguousarray(a, d.numpy).reshape(-1).view(_COMPLEX[enum]).tolist())
    elif d.field == "half_val":
        proto.half_val.extend(np.ascontiguousarray(a, np.float16).reshape(-1).view(np.uint16).tolist())
    else:
        getattr(proto, d.field).extend(a.reshape(-1).tolist())
    return proto


def _as_bytes(value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, np.bytes_):
        return bytes(value)
    raise TensorProtoError("a string tensor holds a value that is neither bytes nor str")


def _text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(s) for s in shape) + "]"


def _name(dtype: np.dtype) -> str:
    return "string" if dtype == _OBJ else DATA_TYPES[enum_for(dtype)].name


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n} bytes ({n / size:.1f} {unit})"
    return f"{n} bytes"
