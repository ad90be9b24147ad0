"""Malformed (and some valid) gRPC requests for TF Serving's PredictionService and ModelService, as raw
bytes per method path, drawn from a seeded RNG (the REST cases and the shared types: ``fuzz_cases.py``)."""

from __future__ import annotations

import random

import numpy as np

from fuzz_cases import GrpcCase, Target, _mutate

PREDICT = "/tensorflow.serving.PredictionService/Predict"
CLASSIFY = "/tensorflow.serving.PredictionService/Classify"
REGRESS = "/tensorflow.serving.PredictionService/Regress"
MULTI = "/tensorflow.serving.PredictionService/MultiInference"
METADATA = "/tensorflow.serving.PredictionService/GetModelMetadata"
STATUS = "/tensorflow.serving.ModelService/GetModelStatus"
RELOAD = "/tensorflow.serving.ModelService/HandleReloadConfigRequest"
GRPC_METHODS = (PREDICT, CLASSIFY, REGRESS, MULTI, METADATA, STATUS)

# DataType enums (tensorflow/core/framework/types.proto): the usual ones, the exotic ones (complex,
# quantized, resource, variant, bfloat16, float8) and their *_REF twins (+100), plus out-of-range values.
DTYPES = list(range(0, 31)) + list(range(101, 125)) + [-1, 999, 2**31 - 1]


def _tensor(rng: random.Random, t: Target, batch: int = 1):
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

    proto = tensor_pb2.TensorProto(dtype=t.dtype)
    shape = t.example_shape(batch)
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape)
    proto.tensor_content = np.random.default_rng(rng.getrandbits(32)).random(shape, dtype=np.float32).tobytes()
    return proto


def _predict(t: Target, tensor=None, name: str | None = None):
    from tensorflow_serving.apis import predict_pb2

    req = predict_pb2.PredictRequest()
    req.model_spec.name = t.model if name is None else name
    req.model_spec.signature_name = t.signature
    if tensor is not None:
        req.inputs[t.input].CopyFrom(tensor)
    return req


def valid_grpc(rng: random.Random, t: Target) -> GrpcCase:
    return GrpcCase("valid predict", PREDICT, _predict(t, _tensor(rng, t, rng.randint(1, 4))).SerializeToString(),
                    valid=True)


def _huge_shape(rng: random.Random, t: Target) -> tuple[str, bytes]:
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

    dims = rng.choice([[1_000_000, 784], [10**12], [2**62, 2**62], [2**63 - 1], [-1, 784], [-5], [0, 784],
                       [2] * 300, [1] * 100, [100_000, 1, 28, 28], [1, 2**40]])
    proto = tensor_pb2.TensorProto(dtype=rng.choice([1, 1, 1, 2, 7, 9, 19]))
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims)
    fill = rng.randrange(4)
    if fill == 1:
        proto.float_val.append(1.0)
    elif fill == 2:
        proto.string_val.append(b"x")
    elif fill == 3:
        proto.tensor_content = rng.randbytes(rng.choice([0, 4, 3136]))
    return f"declared shape {dims[:4]}{'...' if len(dims) > 4 else ''}", _predict(t, proto).SerializeToString()


def _exotic_dtype(rng: random.Random, t: Target) -> tuple[str, bytes]:
    from tensorflow.core.framework import tensor_pb2

    dtype = rng.choice(DTYPES)
    proto = tensor_pb2.TensorProto()
    # proto3 enums accept unknown values on the wire; set through the raw field number when out of range.
    proto.dtype = dtype if 0 <= dtype < 2**31 else 0
    proto.tensor_shape.dim.add(size=rng.choice([1, 2, 784]))
    field_name = rng.choice(["float_val", "double_val", "int_val", "int64_val", "string_val", "bool_val",
                             "half_val", "scomplex_val", "dcomplex_val", "uint32_val", "uint64_val", "tensor_content"])
    if field_name == "string_val":
        proto.string_val.extend([rng.randbytes(rng.randint(0, 20)) for _ in range(rng.randint(0, 3))])
    elif field_name == "tensor_content":
        proto.tensor_content = rng.randbytes(rng.randint(0, 64))
    elif field_name in ("float_val", "double_val", "scomplex_val", "dcomplex_val"):
        getattr(proto, field_name).extend(rng.uniform(-1e30, 1e30) for _ in range(rng.randint(0, 4)))
    elif field_name == "bool_val":
        proto.bool_val.extend(rng.random() < 0.5 for _ in range(rng.randint(0, 4)))
    else:
        getattr(proto, field_name).extend(rng.randint(0, 2**31 - 1) for _ in range(rng.randint(0, 4)))
    payload = _predict(t, proto).SerializeToString()
    if dtype < 0 or dtype >= 2**31 - 1:
        payload = _predict(t, tensor_pb2.TensorProto(dtype=1)).SerializeToString()
        payload = _with_raw_dtype(payload, t, dtype)
    return f"dtype {dtype} in {field_name}", payload


def _with_raw_dtype(payload: bytes, t: Target, dtype: int) -> bytes:
    # Re-encode the inputs map entry with a hand-written TensorProto carrying an out-of-range enum.
    from tensorflow_serving.apis import predict_pb2

    req = predict_pb2.PredictRequest.FromString(payload)
    del req.inputs[t.input]
    tensor = b"\x08" + _varint(dtype & (2**64 - 1))  # field 1 (dtype), varint
    entry = b"\x0a" + _varint(len(t.input)) + t.input.encode() + b"\x12" + _varint(len(tensor)) + tensor
    return req.SerializeToString() + b"\x12" + _varint(len(entry)) + entry  # PredictRequest.inputs = 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _content_mismatch(rng: random.Random, t: Target) -> tuple[str, bytes]:
    proto = _tensor(rng, t)
    proto.tensor_content = proto.tensor_content[: rng.randint(0, len(proto.tensor_content) - 1)] \
        if rng.random() < 0.5 else proto.tensor_content + rng.randbytes(rng.randint(1, 7))
    return "tensor_content size mismatch", _predict(t, proto).SerializeToString()


def _spec_case(rng: random.Random, t: Target) -> tuple[str, bytes]:
    req = _predict(t, _tensor(rng, t))
    choice = rng.randrange(8)
    if choice == 0:
        req.ClearField("model_spec")
    elif choice == 1:
        req.model_spec.name = rng.choice(["", "unknown", "\u2603", "x" * 10_000])
    elif choice == 2:
        req.model_spec.version.value = rng.choice([0, -1, 2**62, 7])
    elif choice == 3:
        req.model_spec.version_label = rng.choice(["", "nope", "\x00", "stable"])
    elif choice == 4:
        req.model_spec.signature_name = rng.choice(["", "nope", "\x00" * 3, "serving_default"])
    elif choice == 5:
        req.output_filter.extend(rng.choice([["nope"], ["scores", "scores"], [""], ["x"] * 1000]))
    elif choice == 6:
        req.inputs["extra"].CopyFrom(_tensor(rng, t))
    else:
        del req.inputs[t.input]
    return "model spec / names", req.SerializeToString()


def _examples_case(rng: random.Random, t: Target) -> tuple[str, str, bytes]:
    from tensorflow.core.example import example_pb2
    from tensorflow_serving.apis import classification_pb2, inference_pb2, regression_pb2

    method = rng.choice([CLASSIFY, REGRESS, MULTI])
    count = rng.choice([0, 1, 2, 1000, 100_000])
    examples = [example_pb2.Example() for _ in range(min(count, 3))]
    for ex in examples:
        kind = rng.randrange(4)
        if kind == 0:
            ex.features.feature["x"].float_list.value.extend([0.5] * rng.choice([1, 784, 5000]))
        elif kind == 1:
            ex.features.feature["x"].bytes_list.value.append(rng.randbytes(10))
        elif kind == 2:
            ex.features.feature["x"].int64_list.value.extend([1, 2, 3])
    if method == MULTI:
        req = inference_pb2.MultiInferenceRequest()
        for _ in range(rng.randint(0, 3)):
            task = req.tasks.add()
            task.model_spec.name = rng.choice([t.model, "other", ""])
            task.model_spec.signature_name = rng.choice(["serving_default", t.signature, ""])
            task.method_name = rng.choice(["tensorflow/serving/classify", "tensorflow/serving/regress",
                                           "tensorflow/serving/predict", "bogus", ""])
        target = req.input.example_list.examples
    else:
        req = (classification_pb2.ClassificationRequest() if method == CLASSIFY
               else regression_pb2.RegressionRequest())
        req.model_spec.name = t.model
        target = req.input.example_list_with_context.examples if rng.random() < 0.2 else req.input.example_list.examples
    target.extend(examples)
    for _ in range(max(0, count - len(examples))):
        target.add()
    return f"{count} examples", method, req.SerializeToString()


def grpc_case(rng: random.Random, t: Target) -> GrpcCase:
    """A gRPC request as raw bytes for one method path; about one in ten is valid."""
    roll = rng.random()
    if roll < 0.1:
        return valid_grpc(rng, t)
    if roll < 0.25:
        return GrpcCase("random bytes", rng.choice(GRPC_METHODS + (RELOAD,)), rng.randbytes(rng.randint(0, 2048)))
    if roll < 0.35:
        good = valid_grpc(rng, t).payload
        return GrpcCase("truncated message", PREDICT, good[: rng.randint(1, len(good) - 1)])
    if roll < 0.45:
        return GrpcCase("mutated message", rng.choice(GRPC_METHODS), _mutate(rng, valid_grpc(rng, t).payload))
    for upto, make in ((0.6, _huge_shape), (0.72, _exotic_dtype), (0.78, _content_mismatch), (0.88, _spec_case)):
        if roll < upto:
            kind, payload = make(rng, t)
            return GrpcCase(kind, PREDICT, payload)
    if roll < 0.96:
        kind, method, payload = _examples_case(rng, t)
        return GrpcCase(kind, method, payload)
    return _metadata_case(rng, t)


def _metadata_case(rng: random.Random, t: Target) -> GrpcCase:
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

    if rng.random() < 0.5:
        req = get_model_metadata_pb2.GetModelMetadataRequest()
        req.model_spec.name = rng.choice([t.model, "", "nope"])
        req.metadata_field.extend(rng.choice([["signature_def"], [], ["bogus"], ["signature_def"] * 3]))
        return GrpcCase("metadata fields", METADATA, req.SerializeToString())
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = rng.choice([t.model, "", "nope"])
    if rng.random() < 0.5:
        req.model_spec.version.value = rng.choice([1, 0, -3, 2**62])
    else:
        req.model_spec.version_label = rng.choice(["stable", "", "x"])
    return GrpcCase("status spec", STATUS, req.SerializeToString())
