"""Coverage-guided fuzzing of the server's request decoders, in process, with atheris (libFuzzer).

Targets (``--target``):
- ``tensor``: bytes -> ``TensorProto`` -> :func:`tfship.tensorproto.to_numpy` under the server's limits;
- ``predict``: bytes -> REST ``:predict`` body -> input tensors for a ``[-1, 784]`` float signature;
- ``examples``: bytes -> REST ``:classify`` body -> serialized ``tf.Example``s.
A decoder may refuse its input only with the error the server maps to a client error
(``TensorProtoError`` / ``ServingError``; a protobuf that does not parse is refused before decoding).
Anything else raised — ``ValueError``, ``MemoryError``, ``RecursionError``, ``IndexError`` — is a bug, and
libFuzzer stops there and writes the input to ``crash-*``.

    pip install atheris   # the `fuzz` extra
    python benchmarks/fuzz_decoders.py --target predict --seconds 120
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

# Each target's largest input: the same order as the server's request limit, so the fuzzer explores
# structure, not size.
MAX_LEN = 1 << 16


def _seeds(target: str) -> list[bytes]:
    image = [round(i / 784, 3) for i in range(784)]
    if target == "predict":
        return [json.dumps({"instances": [image]}).encode(), json.dumps({"inputs": {"images": [image]}}).encode(),
                b'{"instances": [{"images": {"b64": "AAAA"}}]}', b'{"signature_name": "x", "inputs": [[1]]}']
    if target == "examples":
        return [json.dumps({"examples": [{"x": image}]}).encode(), b'{"examples": [{"x": {"b64": "AA=="}}]}',
                b'{"context": {"a": 1}, "examples": [{"b": "s"}]}']
    from tensorflow.core.framework import tensor_pb2

    seeds = []
    for dtype, field, values in ((1, "float_val", [1.0, 2.0]), (7, "string_val", [b"ab"]), (9, "int64_val", [3]),
                                 (19, "half_val", [15360]), (8, "scomplex_val", [1.0, 0.5])):
        proto = tensor_pb2.TensorProto(dtype=dtype)
        proto.tensor_shape.dim.add(size=2)
        getattr(proto, field).extend(values)
        seeds.append(proto.SerializeToString())
    packed = tensor_pb2.TensorProto(dtype=1, tensor_content=b"\0" * 16)
    packed.tensor_shape.dim.add(size=4)
    return seeds + [packed.SerializeToString()]


def _target(name: str):
    """The function libFuzzer calls, and the exceptions that are a correct refusal."""
    import atheris

    with atheris.instrument_imports(include=["tfship"]):
        from tfship import tensorproto
        from tfship.errors import TensorProtoError
        from tfship.serve import json_api, json_examples
        from tfship.serve.errors import ServingError
        from tfship.serve.servable import TensorSpec

    if name == "tensor":
        from google.protobuf.message import DecodeError
        from tensorflow.core.framework import tensor_pb2

        limits = tensorproto.TensorLimits(max_elements=1 << 24, max_bytes=64 << 20)

        def one(data: bytes) -> None:
            try:
                proto = tensor_pb2.TensorProto.FromString(data)
            except DecodeError:
                return  # refused before decoding: INVALID_ARGUMENT at the transport
            try:
                tensorproto.to_numpy(proto, limits)
            except TensorProtoError:
                pass
        return one

    specs = {"images": TensorSpec(1, (-1, 784))}

    def predict(data: bytes) -> None:
        try:
            json_api.predict_inputs(json_api.parse_body(data), specs)
        except ServingError:
            pass

    def examples(data: bytes) -> None:
        try:
            json_examples.examples(json_api.parse_body(data))
        except ServingError:
            pass
    return {"predict": predict, "examples": examples}[name]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", choices=["tensor", "predict", "examples"], required=True)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--corpus", type=Path, help="corpus folder (default: a temporary one with seed inputs)")
    a, libfuzzer_args = p.parse_known_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import atheris

    one = _target(a.target)
    corpus = a.corpus or Path(tempfile.mkdtemp(prefix=f"tfship-fuzz-{a.target}-"))
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(_seeds(a.target)):
        (corpus / f"seed-{i}").write_bytes(seed)
    atheris.Setup([sys.argv[0], f"-max_total_time={a.seconds}", f"-max_len={MAX_LEN}", "-rss_limit_mb=4096",
                   *libfuzzer_args, str(corpus)], one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
