"""Malformed (and some valid) requests for TF Serving's REST and gRPC APIs, drawn from a seeded RNG.

Used by ``fuzz_serving.py`` (the black-box fuzzer) and ``soak_serving.py``. Every generator takes a
``random.Random`` and the served model's :class:`Target` (its name and one predict signature read from
the server's metadata), so the same seed gives the same cases against the same model.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field

import numpy as np

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


@dataclass(frozen=True)
class Target:
    """The served model: its name, and a predict signature with one numeric input (from metadata)."""

    model: str
    signature: str
    input: str
    shape: tuple[int, ...]  # the input's declared shape, -1 for unknown dimensions
    dtype: int = 1  # DT_FLOAT

    def example_shape(self, batch: int = 1) -> tuple[int, ...]:
        dims = [batch] + [d if d > 0 else 1 for d in self.shape[1:]]
        return tuple(dims) if self.shape else ()


@dataclass
class RestCase:
    kind: str
    method: str = "POST"
    path: str = ""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    raw: bytes | None = None  # a whole HTTP request sent on a socket as-is (no http.client)
    valid: bool = False  # well-formed: must answer 200
    # The HTTP parser may refuse it before the API sees it (uvicorn then answers a plain-text 400).
    http_layer: bool = False


@dataclass
class GrpcCase:
    kind: str
    method: str
    payload: bytes
    valid: bool = False


# ---------------------------------------------------------------------------------------------- REST

def _values(rng: random.Random, t: Target, batch: int = 1) -> list:
    return np.round(np.random.default_rng(rng.getrandbits(32)).random(t.example_shape(batch)), 4).tolist()


def valid_rest(rng: random.Random, t: Target) -> RestCase:
    path = f"/v1/models/{t.model}:predict"
    if rng.random() < 0.5:
        doc = {"signature_name": t.signature, "instances": _values(rng, t, rng.randint(1, 4))}
    else:
        doc = {"signature_name": t.signature, "inputs": {t.input: _values(rng, t, rng.randint(1, 4))}}
    return RestCase("valid predict", path=path, body=json.dumps(doc).encode(), valid=True)


def _nested(depth: int, leaf: str = "0") -> str:
    return "[" * depth + leaf + "]" * depth


def _odd_number(rng: random.Random) -> str:
    return rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400, "-0", "0x10",
                       "1.", ".5", "+1", "01", "1e", "\"1\"", "true", "null", "{}", "[]", "9" * 30])


def _rest_bodies(rng: random.Random, t: Target) -> tuple[str, bytes]:
    good = json.dumps({"signature_name": t.signature, "instances": _values(rng, t)}).encode()
    choice = rng.randrange(19)
    if choice == 0:
        return "random bytes", rng.randbytes(rng.randint(0, 4096))
    if choice == 1:
        return "truncated json", good[: rng.randint(0, len(good) - 1)]
    if choice == 2:
        depth = rng.choice([64, 500, 1000, 5000, 50_000, 200_000])
        return f"nesting depth {depth}", ('{"instances": ' + _nested(depth) + "}").encode()
    if choice == 3:
        depth = rng.choice([64, 1000, 100_000])
        return f"object nesting {depth}", ('{"a":' * depth + "1" + "}" * depth).encode()
    if choice == 4:
        count = rng.choice([10_000, 100_000, 400_000])
        return f"{count} instances of one value", ('{"instances": [' + ",".join(["[0]"] * count) + "]}").encode()
    if choice == 5:
        return "odd number", (f'{{"signature_name": "{t.signature}", "instances": [[' +
                              ",".join(_odd_number(rng) for _ in range(rng.randint(1, 3))) + "]]}").encode()
    if choice == 6:
        rows = [_values(rng, t)[0] for _ in range(3)]
        rows[rng.randrange(3)] = rows[0][: max(0, len(rows[0]) // 2)] if isinstance(rows[0], list) else []
        return "ragged rows", json.dumps({"signature_name": t.signature, "instances": rows}).encode()
    if choice == 7:
        b64 = rng.choice(["!!!", "AAA", "", base64.b64encode(rng.randbytes(rng.randint(1, 5000))).decode(), "=" * 9])
        return "b64 value", json.dumps({"signature_name": t.signature, "instances": [{"b64": b64}]}).encode()
    if choice == 8:
        value = rng.choice([None, True, "x", {}, [], 1, [[[]]], {"b64": 1}, {t.input: None}])
        key = rng.choice(["instances", "inputs", "examples", "context", "signature_name", "bogus"])
        return f"wrong type for {key}", json.dumps({key: value}).encode()
    if choice == 9:
        return "both instances and inputs", json.dumps(
            {"instances": _values(rng, t), "inputs": {t.input: _values(rng, t)}}).encode()
    if choice == 10:
        return "top-level not an object", rng.choice([b"[]", b"1", b'"x"', b"null", b"true", b""])
    if choice == 11:
        name = rng.choice(["", "\u0000", "x" * 10_000, "../../etc/passwd", "\ud800", "serving_default\n"])
        return "odd signature name", json.dumps({"signature_name": name, "instances": _values(rng, t)}).encode()
    if choice == 12:
        return "named inputs wrong", json.dumps(
            {"signature_name": t.signature, "inputs": {rng.choice(["", "x", t.input + "_"]): _values(rng, t)}}).encode()
    if choice == 13:
        return "classify examples malformed", json.dumps({"examples": rng.choice(
            [[{"x": [1.0] * 3}], [{"x": "a"}], [{"x": {"b64": "!!"}}], [1, 2], [[]], [{"x": [[1.0]]}],
             [{"": None}], [{"x": [1, "a", 2.0]}], [{"x": [True] * 5}]])}).encode()
    if choice == 14:
        return "invalid utf-8", b'{"signature_name": "\xff\xfe", "instances": [[1]]}'
    if choice == 15:
        return "duplicate keys", (b'{"instances": [[1]], "instances": ' + json.dumps(_values(rng, t)).encode() + b"}")
    if choice == 16:
        count = rng.choice([1000, 100_000])
        return f"{count} example features", json.dumps(
            {"examples": [{f"f{i}": [0.0] for i in range(count)}]}).encode()
    if choice == 17:
        return "big string values", json.dumps({"signature_name": t.signature,
                                                 "instances": ["x" * rng.choice([10, 100_000, 900_000])]}).encode()
    return "mutated json", _mutate(rng, good)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(3)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif buf:
            del buf[pos:pos + rng.randint(1, 16)]
    return bytes(buf)


def _rest_path(rng: random.Random, t: Target) -> str:
    verb = rng.choice([":predict", ":classify", ":regress", ":PREDICT", ":unknown", "", "/metadata", ":predict:predict"])
    middle = rng.choice(["", "/versions/1", "/versions/0", "/versions/-1", "/versions/99999999999999999999999",
                         "/versions/abc", "/labels/stable", "/labels/", "/labels/%00", "/versions/1/labels/x"])
    name = rng.choice([t.model, "", "unknown", "%ZZ", "%00", "m%2Fx", "x" * 20_000, "..", "%E2%98%83", t.model + "%20"])
    prefix = rng.choice(["/v1/models/", "/v1/models", "/v2/models/", "/v1//models/", "/", "/v1/models/" + t.model + "/"])
    query = rng.choice(["", "?x=1", "?" + "a" * 5000, "#frag"])
    return prefix + name + middle + verb + query


def rest_case(rng: random.Random, t: Target) -> RestCase:
    """A REST request, most of them malformed; about one in ten is valid."""
    roll = rng.random()
    if roll < 0.1:
        return valid_rest(rng, t)
    if roll < 0.55:
        kind, body = _rest_bodies(rng, t)
        endpoint = rng.choice([":predict"] * 4 + [":classify", ":regress"])
        return RestCase(kind, path=f"/v1/models/{t.model}{endpoint}", body=body)
    if roll < 0.7:
        method = rng.choice(["GET", "POST"])
        return RestCase("odd url", method=method, path=_rest_path(rng, t),
                        body=json.dumps({"instances": _values(rng, t)}).encode() if method == "POST" else b"")
    if roll < 0.8:
        method = rng.choice(["PUT", "DELETE", "OPTIONS", "PATCH", "HEAD", "TRACE", "FOO", "get"])
        path = rng.choice([f"/v1/models/{t.model}:predict", f"/v1/models/{t.model}", "/v1/models", "/"])
        return RestCase(f"method {method}", method=method, path=path, body=b"")
    if roll < 0.92:
        return _header_case(rng, t)
    return _raw_case(rng, t)


def _header_case(rng: random.Random, t: Target) -> RestCase:
    body = json.dumps({"signature_name": t.signature, "instances": _values(rng, t)}).encode()
    choice = rng.randrange(7)
    headers: dict[str, str]
    if choice == 0:
        headers = {"Content-Type": rng.choice(["text/plain", "application/x-www-form-urlencoded", "", "a/b; x=\x01",
                                               "multipart/form-data; boundary=x"])}
    elif choice == 1:
        headers = {"Content-Type": "application/json", "Content-Encoding": rng.choice(["gzip", "br", "x"])}
    elif choice == 2:
        headers = {"Content-Type": "application/json", "X-Big": "a" * rng.choice([1000, 60_000])}
    elif choice == 3:
        headers = {"Content-Type": "application/json", "Expect": "100-continue"}
    elif choice == 4:
        headers = {"Content-Type": "application/json", "Accept": "application/xml", "Accept-Encoding": "gzip"}
    elif choice == 5:
        headers = {"Content-Type": "application/json; charset=latin-1"}
    else:
        headers = {f"X-H{i}": "v" for i in range(rng.choice([10, 200]))}
    oversized = (sum(len(k) + len(v) for k, v in headers.items()) > 8192 or len(headers) > 100
                 or any(ord(c) < 32 for v in headers.values() for c in v))  # control characters: not HTTP
    return RestCase("odd headers", path=f"/v1/models/{t.model}:predict", body=body, headers=headers,
                    http_layer=oversized)


def _raw_case(rng: random.Random, t: Target) -> RestCase:
    path = f"/v1/models/{t.model}:predict".encode()
    body = json.dumps({"instances": _values(rng, t)}).encode()
    choice = rng.randrange(7)
    if choice == 0:
        raw = rng.randbytes(rng.randint(1, 2000)) + b"\r\n\r\n"
        kind = "raw garbage"
    elif choice == 1:
        raw = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n" + body
        kind = "negative content-length"
    elif choice == 2:
        raw = (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
               rng.choice([b"zz\r\nabc\r\n0\r\n\r\n", b"ffffffffffffffff\r\n", b"5\r\nab\r\n0\r\n\r\n"]))
        kind = "bad chunked body"
    elif choice == 3:
        raw = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\n" + body
        kind = "two content-lengths"
    elif choice == 4:
        raw = b"POST " + path + b" HTTP/9.9\r\nHost: x\r\n\r\n"
        kind = "unknown http version"
    elif choice == 5:
        raw = b"GET /v1/models/" + t.model.encode() + b" HTTP/1.1\r\n" + b"X: " + b"y" * 200_000 + b"\r\n\r\n"
        kind = "huge header line"
    else:
        raw = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body) - 3).encode() + \
            b"\r\nConnection: close\r\n\r\n" + body
        kind = "short content-length"
    return RestCase(kind, raw=raw)


# ---------------------------------------------------------------------------------------------- gRPC

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
    if roll < 0.6:
        kind, payload = _huge_shape(rng, t)
        return GrpcCase(kind, PREDICT, payload)
    if roll < 0.72:
        kind, payload = _exotic_dtype(rng, t)
        return GrpcCase(kind, PREDICT, payload)
    if roll < 0.78:
        kind, payload = _content_mismatch(rng, t)
        return GrpcCase(kind, PREDICT, payload)
    if roll < 0.88:
        kind, payload = _spec_case(rng, t)
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
