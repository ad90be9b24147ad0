"""Malformed (and some valid) requests for TF Serving's REST and gRPC APIs, drawn from a seeded RNG.

Used by ``fuzz_serving.py`` (the black-box fuzzer) and ``soak_serving.py``; the gRPC cases are in
``fuzz_grpc_cases.py``. Every generator takes a
``random.Random`` and the served model's :class:`Target` (its name and one predict signature read from
the server's metadata), so the same seed gives the same cases against the same model.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field

import numpy as np


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
