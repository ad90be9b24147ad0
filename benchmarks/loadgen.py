"""Load generators for the serving benchmarks: h2load and wrk (C programs, Debian's nghttp2-client
and wrk packages) or Python (``grpc.aio`` on one channel; ``http.client`` threads), all sending the
same single-image ``predict_images`` request to model ``mnist``. :func:`measure` runs one cell."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

MODEL = "mnist"


def grpc_aio_load(port: int, concurrency: int, seconds: float) -> tuple[list[float], int]:
    """gRPC load from one asyncio loop (grpc.aio): far less client CPU than a thread per caller, which
    matters when client and server share two cores."""
    import asyncio

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    req = predict_pb2.PredictRequest()
    req.model_spec.name = MODEL
    req.model_spec.signature_name = "predict_images"
    req.inputs["images"].CopyFrom(tf.make_tensor_proto(np.random.default_rng(1).random((1, 784), dtype=np.float32)))

    async def main():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for _ in range(20):
                await stub.Predict(req, timeout=30)
            latencies: list[float] = []
            errors = 0
            stop = time.perf_counter() + seconds

            async def worker():
                nonlocal errors
                while time.perf_counter() < stop:
                    t = time.perf_counter()
                    try:
                        await stub.Predict(req, timeout=30)
                    except grpc.RpcError:
                        errors += 1
                    latencies.append(time.perf_counter() - t)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies, errors

    return asyncio.run(main())


def rest_caller(port: int):
    """One keep-alive stdlib HTTP connection per thread: the lightest plain HTTP client at hand."""
    import http.client

    body = json.dumps({"signature_name": "predict_images",
                       "instances": np.random.default_rng(1).random((1, 784)).round(4).tolist()}).encode()
    headers = {"Content-Type": "application/json"}
    local = threading.local()
    path = f"/v1/models/{MODEL}:predict"

    def call() -> bool:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            local.conn.request("POST", path, body=body, headers=headers)
            resp = local.conn.getresponse()
            resp.read()
            return resp.status == 200
        except (OSError, http.client.HTTPException):
            local.conn.close()
            del local.conn
            return False

    return call


def thread_load(call, concurrency: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker():
        mine, bad = [], 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            ok = call()
            mine.append(time.perf_counter() - t)
            bad += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    for _ in range(min(20, concurrency * 3)):  # warm up connections and the model
        call()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


GRPC_PATH = "/tensorflow.serving.PredictionService/Predict"
REST_PATH = f"/v1/models/{MODEL}:predict"
_WRK_SCRIPT = """wrk.method = "POST"
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("TFSHIP %d %d %d %d %d\\n", summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
                         latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def request_image() -> np.ndarray:
    return np.random.default_rng(1).random((1, 784), dtype=np.float32)


def grpc_frame() -> bytes:
    """One PredictRequest as a gRPC message frame (uncompressed flag, big-endian length, bytes)."""
    from tensorflow_serving.apis import predict_pb2

    req = predict_pb2.PredictRequest()
    req.model_spec.name = MODEL
    req.model_spec.signature_name = "predict_images"
    image = request_image()
    t = req.inputs["images"]
    t.dtype = 1
    for size in image.shape:
        t.tensor_shape.dim.add(size=size)
    t.tensor_content = image.tobytes()  # what clients send (tf.make_tensor_proto does the same)
    body = req.SerializeToString()
    return b"\0" + struct.pack(">I", len(body)) + body


def h2load(port: int, concurrency: int, seconds: float, scratch: Path) -> tuple[list[float], int]:
    """gRPC load from h2load: ``concurrency`` HTTP/2 connections, one request in flight on each."""
    body, log = scratch / "grpc_request.bin", scratch / "h2load.log"
    body.write_bytes(grpc_frame())
    log.unlink(missing_ok=True)
    out = subprocess.run(["h2load", "-t", "1", "-c", str(concurrency), "-m", "1", "-D", f"{seconds:g}",
                          "--warm-up-time=1", "-H", "content-type: application/grpc", "-H", "te: trailers",
                          "-d", str(body), f"--log-file={log}", f"http://127.0.0.1:{port}{GRPC_PATH}"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded", out)
    if m is None:
        raise RuntimeError(f"cannot read h2load's summary:\n{out}")
    rows = [line.split("\t") for line in log.read_text().splitlines() if line]
    latencies = [int(r[2]) / 1e6 for r in rows]
    return latencies, int(m.group(1)) - int(m.group(2)) + sum(r[1] != "200" for r in rows)


def wrk(port: int, concurrency: int, seconds: float, scratch: Path) -> tuple[dict, int]:
    """REST load from wrk: ``concurrency`` keep-alive connections on one thread. Returns wrk's summary
    (requests, p50/p99 in seconds, duration) and its error count (socket errors and non-2xx)."""
    body, script = scratch / "rest_request.json", scratch / "wrk.lua"
    body.write_text(json.dumps({"signature_name": "predict_images", "instances": request_image().tolist()}))
    script.write_text(_WRK_SCRIPT.replace("{body}", str(body)))
    url = f"http://127.0.0.1:{port}{REST_PATH}"
    cmd = ["wrk", "-t", "1", "-c", str(concurrency), "-s", str(script), url]
    subprocess.run(cmd + ["-d", "1s"], capture_output=True, check=True)  # warm up, as h2load does
    out = subprocess.run(cmd + ["-d", f"{max(1, round(seconds))}s"], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"TFSHIP (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if m is None:
        raise RuntimeError(f"cannot read wrk's summary:\n{out}")
    n, errors, p50, p99, duration = (int(g) for g in m.groups())
    return {"requests": n, "p50": p50 / 1e6, "p99": p99 / 1e6, "seconds": duration / 1e6}, errors


def native_available() -> bool:
    return shutil.which("h2load") is not None and shutil.which("wrk") is not None


def measure(generator: str, transport: str, port: int, concurrency: int, seconds: float,
             scratch: Path) -> tuple[int, float, float, float, int]:
    """(requests, requests/s, p50 s, p99 s, errors) for one cell."""
    if generator == "native" and transport == "grpc":
        lat, errors = h2load(port, concurrency, seconds, scratch)
    elif generator == "native":
        summary, errors = wrk(port, concurrency, seconds, scratch)
        return summary["requests"], summary["requests"] / summary["seconds"], summary["p50"], summary["p99"], errors
    elif transport == "grpc":
        lat, errors = grpc_aio_load(port, concurrency, seconds)
    else:
        lat, errors = thread_load(rest_caller(port), concurrency, seconds)
    return len(lat), len(lat) / seconds, float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), errors
