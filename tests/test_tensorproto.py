"""tfship.tensorproto against TensorFlow's own C++ reader (``tf.io.parse_tensor`` calls
``Tensor::FromProto``, tensorflow/core/framework/tensor.cc), on TF's TensorProto class and the
clients' private copy."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tfship import tensorproto
from tfship.errors import TensorProtoError
from tfship.tensorproto import TensorLimits

ARRAYS = {
    "float": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    "double": np.array([1e-300, -2.5]),
    "int32": np.array([[-(2 ** 31), 2 ** 31 - 1]], np.int32),
    "uint8": np.array([0, 255], np.uint8),
    "int8": np.array([-128, 127], np.int8),
    "int16": np.array([-3], np.int16),
    "uint16": np.array([65535], np.uint16),
    "int64": np.array([2 ** 63 - 1, -(2 ** 63)]),
    "uint32": np.array([2 ** 32 - 1], np.uint32),
    "uint64": np.array([2 ** 64 - 1], np.uint64),
    "bool": np.array([[True], [False]]),
    "half": np.array([1.5, -65504], np.float16),
    "complex64": np.array([1 + 2j, -3j], np.complex64),
    "complex128": np.array([[1e200 + 1j]]),
    "string": np.array([b"ab", b"", b"\xff\x00"], dtype=object),
    "empty": np.zeros((0, 3), np.float32),
}


@pytest.fixture(scope="module")
def tf():
    import tensorflow as tf

    return tf


def _proto(**fields):
    from tensorflow.core.framework import tensor_pb2

    shape = fields.pop("shape")
    p = tensor_pb2.TensorProto(**fields)
    for s in shape:
        p.tensor_shape.dim.add(size=s)
    return p


def _tf_reads(tf, proto) -> np.ndarray:
    out = tf.io.parse_tensor(proto.SerializeToString(), tf.dtypes.as_dtype(proto.dtype)).numpy()
    return out


@pytest.mark.parametrize("packed", [False, True], ids=["typed_field", "tensor_content"])
@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_round_trip_reads_as_tensorflow_reads(tf, name, packed):
    from tensorflow.core.framework import tensor_pb2

    array = ARRAYS[name]
    proto = tensorproto.from_numpy(array, tensor_pb2.TensorProto(), packed=packed)
    ours = tensorproto.to_numpy(proto)
    theirs = _tf_reads(tf, proto)
    assert ours.shape == theirs.shape == array.shape
    assert ours.dtype == (object if name == "string" else theirs.dtype)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, array)


@pytest.mark.parametrize("values,shape", [([], [3]), ([1.0, 2.0], [5]), ([1.0, 2.0, 3.0], [2]), ([7.0], [2, 2]),
                                          ([4.0], [0])])
def test_short_and_long_value_lists_fill_as_tensorflow(tf, values, shape):
    # tensor.cc FromProtoField: none -> T(); fewer -> repeat the last; more -> the first n.
    proto = _proto(dtype=1, shape=shape, float_val=values)
    np.testing.assert_array_equal(tensorproto.to_numpy(proto), _tf_reads(tf, proto))


def test_small_ints_wrap_like_a_c_cast(tf):
    proto = _proto(dtype=4, shape=[3], int_val=[-1, 300, 7])
    np.testing.assert_array_equal(tensorproto.to_numpy(proto), _tf_reads(tf, proto))
    proto = _proto(dtype=7, shape=[3], string_val=[b"x"])
    np.testing.assert_array_equal(tensorproto.to_numpy(proto), _tf_reads(tf, proto))


def test_string_tensor_content_is_a_varint_list():
    content = bytes([2, 0, 3]) + b"ab" + b"xyz"  # port::EncodeStringList: lengths, then the bytes
    proto = _proto(dtype=7, shape=[3], tensor_content=content)
    assert tensorproto.to_numpy(proto).tolist() == [b"ab", b"", b"xyz"]
    with pytest.raises(TensorProtoError, match="not a list of 3 strings"):
        tensorproto.to_numpy(_proto(dtype=7, shape=[3], tensor_content=content[:-1]))


@pytest.mark.parametrize("fields,message", [
    (dict(dtype=1, shape=[3], tensor_content=b"\0" * 8), "tensor_content has 8 bytes; 3 elements of float need 12"),
    (dict(dtype=1, shape=[-1, 2], float_val=[1.0]), r"shape \[-1,2\] has a negative dimension"),
    (dict(dtype=0, shape=[1]), "no dtype"),
    (dict(dtype=14, shape=[1], half_val=[1]), "bfloat16 are not supported"),
    (dict(dtype=99, shape=[1]), "dtype99 are not supported"),
])
def test_invalid_protos_are_refused_with_the_reason(tf, fields, message):
    proto = _proto(**fields)
    with pytest.raises(TensorProtoError, match=message):
        tensorproto.to_numpy(proto)


@pytest.mark.parametrize("shape", [[1_000_000, 784], [10 ** 12], [2 ** 40, 2 ** 40, 2 ** 40]])
def test_declared_shape_over_the_limit_is_refused_before_allocating(shape):
    # The 58-byte request of issue #13: one float_val declaring gigabytes. Without the check the
    # first shape materialises 3 GB (seconds), the second raises MemoryError.
    proto = _proto(dtype=1, shape=shape, float_val=[1.0])
    limits = TensorLimits(max_bytes=256 << 20)
    start = time.perf_counter()
    with pytest.raises(TensorProtoError, match=r"needs \d+ bytes .*over this server's limit of 268435456 bytes"):
        tensorproto.to_numpy(proto, limits)
    assert time.perf_counter() - start < 0.05
    with pytest.raises(TensorProtoError, match="elements, over this server's limit of 1000 elements"):
        tensorproto.to_numpy(proto, TensorLimits(max_elements=1000))


def test_a_tensor_at_the_limit_is_read():
    proto = _proto(dtype=1, shape=[4, 16], float_val=[2.0])
    assert tensorproto.to_numpy(proto, TensorLimits(max_elements=64, max_bytes=256)).sum() == 128


def test_clients_private_proto_class_converts_the_same():
    from tfship.clients import _proto

    for name in ("float", "uint8", "int64", "bool", "half", "string"):
        for packed in (False, True):
            proto = tensorproto.from_numpy(ARRAYS[name], _proto.TensorProto(), packed=packed)
            np.testing.assert_array_equal(tensorproto.to_numpy(proto), ARRAYS[name])
    with pytest.raises(TensorProtoError, match="no scomplex_val field"):
        tensorproto.from_numpy(ARRAYS["complex64"], _proto.TensorProto())


def test_dtype_table_matches_tensorflow(tf):
    from tensorflow.core.framework import types_pb2

    for enum, d in tensorproto.DATA_TYPES.items():
        assert types_pb2.DataType.Name(enum) == d.enum_name, enum
        if d.numpy is not None and d.name != "string":
            assert tf.dtypes.as_dtype(enum).as_numpy_dtype == d.numpy, enum
