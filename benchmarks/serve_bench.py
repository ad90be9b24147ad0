"""Benchmark ``tfship serve``: single-image requests over gRPC and REST, batching off and on.

Prints a table and writes it (JSON + Markdown) next to ``--out``:

    python benchmarks/serve_bench.py --model runs/cnn --duration 5 --out benchmarks/serve_bench.json

For each transport, batching setting and concurrency (1, 8, 32 by default) it reports requests/s,
p50 and p99 latency and errors, plus the in-process numbers of the same SavedModel (batch-1
latency; best batched throughput). The server runs as a subprocess (``python -m tfship.cli serve``)
so the load generator does not share its interpreter. Without ``--model`` an untrained CNN is used:
the arithmetic per image is the same. The machine's load average is recorded with the results,
because on a shared machine it moves the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

MODEL = "mnist"


@dataclass
class Cell:
    transport: str
    batching: bool
    concurrency: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    server_cores: float  # CPU seconds the server process used per wall second
    client_cores: float  # the same for this (load generator) process


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model_base(model: str | None, scratch: Path) -> Path:
    from tfship.savedmodel import resolve_model

    if model:
        return resolve_model(model).base
    import keras

    from tfship.train import models, saved_model

    keras.utils.set_random_seed(0)
    return saved_model.save(models.build("cnn"), scratch / "saved_model").base


def in_process(base: Path, seconds: float) -> dict:
    import tensorflow as tf

    from tfship.savedmodel import list_versions

    fn = tf.saved_model.load(str(base / str(list_versions(base)[-1]))).signatures["predict_images"]
    rng = np.random.default_rng(0)
    one = tf.constant(rng.random((1, 784), dtype=np.float32))
    for _ in range(20):
        fn(images=one)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        fn(images=one)
        times.append(time.perf_counter() - t)
    best = {}
    for batch in (32, 64, 128):
        x = tf.constant(rng.random((batch, 784), dtype=np.float32))
        fn(images=x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            fn(images=x)
            n += batch
        best[batch] = n / (time.perf_counter() - t0)
    return {"batch1_p50_ms": statistics.median(times) * 1e3, "batched_images_per_s": max(best.values()),
            "batched_by_size": best}


def _start_server(base: Path, batching_file: Path | None) -> tuple[subprocess.Popen, int, int]:
    import requests

    grpc_port, rest_port = _free_port(), _free_port()
    cmd = [sys.executable, "-m", "tfship.cli", "serve", "--model_base_path", str(base), "--port", str(grpc_port),
           "--rest_api_port", str(rest_port), "--file_system_poll_wait_seconds", "0"]
    if batching_file is not None:
        cmd += ["--enable_batching", "--batching_parameters_file", str(batching_file)]
    proc = subprocess.Popen(cmd, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if "AVAILABLE" in requests.get(f"http://127.0.0.1:{rest_port}/v1/models/{MODEL}", timeout=2).text:
                return proc, grpc_port, rest_port
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not become AVAILABLE")


def _grpc_aio_load(port: int, concurrency: int, seconds: float) -> tuple[list[float], int]:
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


def _rest_caller(port: int):
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


def _load(call, concurrency: int, seconds: float) -> tuple[list[float], int]:
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


def run(args: argparse.Namespace) -> dict:
    from tfship.serve.config import BatchingOptions, batching_text

    scratch = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    base = _model_base(args.model, scratch)
    batching_file = scratch / "batching.txt"
    batching = BatchingOptions(max_batch_size=args.max_batch_size, batch_timeout_micros=args.batch_timeout_micros,
                               num_batch_threads=args.batch_threads, max_enqueued_batches=1000)
    batching_file.write_text(batching_text(batching))
    load_before = os.getloadavg()
    reference = in_process(base, args.duration)
    cells: list[Cell] = []
    for batched in (False, True):
        proc, grpc_port, rest_port = _start_server(base, batching_file if batched else None)
        try:
            for transport in ("grpc", "rest"):
                call = _rest_caller(rest_port) if transport == "rest" else None
                for c in args.concurrency:
                    server_cpu, client_cpu, wall = _cpu_seconds(proc.pid), time.process_time(), time.perf_counter()
                    if transport == "grpc":
                        lat, errors = _grpc_aio_load(grpc_port, c, args.duration)
                    else:
                        lat, errors = _load(call, c, args.duration)
                    wall = time.perf_counter() - wall
                    lat_ms = np.asarray(lat) * 1e3
                    cell = Cell(transport, batched, c, len(lat), errors, len(lat) / args.duration,
                                float(np.percentile(lat_ms, 50)), float(np.percentile(lat_ms, 99)),
                                (_cpu_seconds(proc.pid) - server_cpu) / wall, (time.process_time() - client_cpu) / wall)
                    cells.append(cell)
                    print(f"{transport:4} batching={'on ' if batched else 'off'} c={c:2}: {cell.rps:7.0f} req/s  "
                          f"p50 {cell.p50_ms:6.2f} ms  p99 {cell.p99_ms:6.2f} ms  errors {errors}  "
                          f"cores: server {cell.server_cores:.2f} client {cell.client_cores:.2f}", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    after = in_process(base, args.duration)
    reference["batched_images_per_s_after"] = after["batched_images_per_s"]
    reference["batch1_p50_ms_after"] = after["batch1_p50_ms"]
    return {"in_process": reference, "cells": [asdict(c) for c in cells], "batching": asdict(batching),
            "duration_s": args.duration, "cpu_count": os.cpu_count(), "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(), "model": str(base) if args.model else "untrained CNN (same FLOPs)"}


def markdown(result: dict) -> str:
    ref = result["in_process"]
    lines = [f"In process, before the server runs: batch-1 p50 {ref['batch1_p50_ms']:.2f} ms; batched "
             f"{ref['batched_images_per_s']:.0f} images/s (best of batch 32/64/128). After: "
             f"{ref['batch1_p50_ms_after']:.2f} ms; {ref['batched_images_per_s_after']:.0f} images/s. "
             "Percentages are of the 'before' number.", "",
             "| transport | batching | concurrency | req/s | % of in-process batched | p50 ms | p99 ms | errors | "
             "server cores | client cores |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in result["cells"]:
        share = 100 * c["rps"] / ref["batched_images_per_s"]
        lines.append(f"| {c['transport']} | {'on' if c['batching'] else 'off'} | {c['concurrency']} | {c['rps']:.0f} | "
                     f"{share:.0f}% | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} | {c['errors']} | {c['server_cores']:.2f} | "
                     f"{c['client_cores']:.2f} |")
    la, lb = result["loadavg_before"], result["loadavg_after"]
    lines += ["", f"{result['cpu_count']} CPUs; load average before {la[0]:.1f}, after {lb[0]:.1f} "
                  f"(1-minute); {result['duration_s']} s per cell."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="run or base folder (default: an untrained CNN in a temp folder)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--max_batch_size", type=int, default=32)
    p.add_argument("--batch_timeout_micros", type=int, default=0)
    p.add_argument("--batch_threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("benchmarks/serve_bench.json"))
    args = p.parse_args(argv)
    result = run(args)
    table = markdown(result)
    print()
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(table + "\n")
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
