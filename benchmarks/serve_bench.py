"""Benchmark ``tfship serve``: single-image requests over gRPC and REST, batching off and on.

Prints a table and writes it (JSON + Markdown) next to ``--out``:

    python benchmarks/serve_bench.py --model runs/cnn --duration 5 --out benchmarks/serve_bench.json
    python benchmarks/serve_bench.py --model runs/cnn --backend savedmodel onnx tflite --batching on

For each backend (``tfship serve --backend``), transport, batching setting and concurrency (1, 8, 32
by default) it reports requests/s, p50 and p99 latency and errors, plus the in-process numbers of
each backend on the same model (batch-1 latency; batched throughput at the server's max_batch_size
and the best of batch 32/64/128), measured in this process through the same backend classes the
server uses. Ratios are against the SavedModel's in-process best batched throughput of the same run.
The server runs as a subprocess (``python -m tfship.cli serve``). Without ``--model`` an untrained
CNN is used (the arithmetic per image is the same), exported and verified here for the onnx and
tflite backends; with ``--model`` those backends need the run's verified exports.

Load generators: with ``--load-generator native`` (the default when both are on PATH: Debian's
``nghttp2-client`` and ``wrk`` packages), gRPC load comes from ``h2load`` and REST load from ``wrk``,
C programs that cost the shared CPU a fraction of what a Python client does; ``python`` uses
``grpc.aio`` and ``http.client`` instead. Errors are what the load generator saw plus every
non-OK request in the server's own Prometheus counts (h2load cannot read gRPC trailers).

A last pair of cells serves a model that does almost nothing (a slice of its input), batching on,
at the highest concurrency: the server's own cost per request, the ceiling any model stays under.
The machine's load average is recorded with the results; on a shared machine it moves the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import loadgen  # benchmarks/loadgen.py: benchmarks/ is on sys.path when this runs as a script
from loadgen import MODEL


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
    client_cores: float  # the same for the load generator (this process, or h2load / wrk)
    model: str = "cnn"  # "cnn", or "null" for the do-nothing model of the ceiling cells
    backend: str = "savedmodel"  # tfship serve --backend

    @property
    def server_cpu_ms_per_request(self) -> float:
        return 1e3 * self.server_cores / self.rps if self.rps else float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children (``--workers``), from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # it exited between the two reads
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_seconds(int(c)) for c in children)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model_base(model: str | None, scratch: Path, backends: list[str]) -> Path:
    from tfship.savedmodel import resolve_model

    if model:
        return resolve_model(model).base
    import keras

    from tfship.train import models, saved_model

    keras.utils.set_random_seed(0)
    version = saved_model.save(models.build("cnn"), scratch / "saved_model")
    formats = tuple(b for b in backends if b != "savedmodel")
    if formats:  # the artifact backends serve only verified exports: export and verify them here
        from tfship.export.pipeline import ExportConfig, export_all
        from tfship.export.verify import VerifyConfig, verify

        export_all(ExportConfig(model=version.path, formats=formats, out=scratch / "exports"), progress=lambda *_: None)
        verify(VerifyConfig(exports=scratch / "exports", samples=1000, latency=False), progress=lambda *_: None)
    return version.base


def in_process(version: Path, backend: str, seconds: float, max_batch_size: int) -> dict:
    """One backend in this process, through the class the server uses: batch-1 p50 and batched images/s."""
    from tfship.serve.backends import backend_class
    from tfship.serve.backends.base import BackendOptions

    runner = backend_class(backend)(version, BackendOptions(backend))

    def run(x: np.ndarray) -> None:
        runner.run("predict_images", {"images": x})

    rng = np.random.default_rng(0)
    one = rng.random((1, 784), dtype=np.float32)
    for _ in range(20):
        run(one)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        run(one)
        times.append(time.perf_counter() - t)
    best, cpu = {}, {}
    for batch in sorted({max_batch_size, 32, 64, 128}):
        x = rng.random((batch, 784), dtype=np.float32)
        run(x)
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds / 2:
            run(x)
            n += batch
        best[batch] = n / (time.perf_counter() - t0)
        cpu[batch] = 1e3 * (time.process_time() - c0) / n  # all of this process's threads
    runner.close()
    top = max(best, key=best.get)
    return {"batch1_p50_ms": statistics.median(times) * 1e3, "batched_images_per_s": best[top],
            "at_max_batch_images_per_s": best[max_batch_size], "batched_by_size": best,
            # CPU per image at the best batch: on a shared machine, a steadier measure than images/s
            "cpu_ms_per_image": cpu[top], "min_cpu_ms_per_image": min(cpu.values())}


def _start_server(base: Path, batching_file: Path | None, monitoring_file: Path,
                  workers: int, backend: str = "savedmodel") -> tuple[subprocess.Popen, int, int]:
    """Start ``tfship serve`` and return once it says it listens (with ``--workers``: all of them)."""
    grpc_port, rest_port = _free_port(), _free_port()
    cmd = [sys.executable, "-m", "tfship.cli", "serve", "--model_base_path", str(base), "--model_name", MODEL,
           "--port", str(grpc_port), "--rest_api_port", str(rest_port), "--file_system_poll_wait_seconds", "0",
           "--monitoring_config_file", str(monitoring_file), "--workers", str(workers),
           "--backend", backend]
    if batching_file is not None:
        cmd += ["--enable_batching", "--batching_parameters_file", str(batching_file)]
    log = monitoring_file.with_name(f"serve-{grpc_port}.log")
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), stderr=err)
    deadline = time.monotonic() + 180
    while "serve: listening" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the server did not start; its log:\n{log.read_text()}")
        time.sleep(0.3)
    return proc, grpc_port, rest_port


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _server_failures(rest_port: int) -> int:
    """Requests the server answered with anything but OK, from its Prometheus counter."""
    import requests

    text = requests.get(f"http://127.0.0.1:{rest_port}/monitoring/prometheus/metrics", timeout=10).text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(":tensorflow:serving:request_count_total") and 'status="OK"' not in line))


def _null_model(scratch: Path) -> Path:
    """A SavedModel with the CNN's signature that does almost nothing: the server's own ceiling."""
    import tensorflow as tf

    class Null(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32, name="images")])
        def predict_images(self, images):
            return {"scores": images[:, :10]}

    module = Null()
    base = scratch / "null_model"
    tf.saved_model.save(module, str(base / "1"), signatures={"predict_images": module.predict_images})
    return base


def _serve_cells(base: Path, batching_file: Path | None, concurrency: list[int], generator: str, seconds: float,
                 scratch: Path, model: str, workers: int, backend: str = "savedmodel") -> list[Cell]:
    monitoring = scratch / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }\n')
    proc, grpc_port, rest_port = _start_server(base, batching_file, monitoring, workers, backend)
    cells = []
    try:
        for transport in ("grpc", "rest"):
            for c in concurrency:
                failed = _server_failures(rest_port)
                server_cpu, wall = _cpu_seconds(proc.pid), time.perf_counter()
                client_cpu = time.process_time() + _children_cpu()
                n, rps, p50, p99, errors = loadgen.measure(generator, transport, grpc_port if transport == "grpc" else rest_port,
                                                    c, seconds, scratch)
                wall = time.perf_counter() - wall
                errors += _server_failures(rest_port) - failed
                cell = Cell(transport, batching_file is not None, c, n, errors, rps, p50 * 1e3, p99 * 1e3,
                            (_cpu_seconds(proc.pid) - server_cpu) / wall,
                            (time.process_time() + _children_cpu() - client_cpu) / wall, model, backend)
                cells.append(cell)
                print(f"{backend:10} {model:4} {transport:4} batching={'on ' if cell.batching else 'off'} c={c:2}: "
                      f"{cell.rps:7.0f} req/s  p50 {cell.p50_ms:6.2f} ms  p99 {cell.p99_ms:6.2f} ms  errors {errors}  "
                      f"cores: server {cell.server_cores:.2f} client {cell.client_cores:.2f}  "
                      f"server CPU {cell.server_cpu_ms_per_request:.2f} ms/request", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return cells


def run(args: argparse.Namespace) -> dict:
    from tfship.savedmodel import list_versions
    from tfship.serve.config import BatchingOptions, batching_text

    generator = args.load_generator
    if generator == "auto":
        generator = "native" if loadgen.native_available() else "python"
    elif generator == "native" and not loadgen.native_available():
        raise SystemExit("--load-generator native needs h2load and wrk on PATH "
                         "(Debian: apt-get install nghttp2-client wrk)")
    scratch = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    base = _model_base(args.model, scratch, args.backend)
    version = base / str(list_versions(base)[-1])
    batching_file = scratch / "batching.txt"
    batching = BatchingOptions(max_batch_size=args.max_batch_size, batch_timeout_micros=args.batch_timeout_micros,
                               num_batch_threads=args.batch_threads, max_enqueued_batches=1000)
    batching_file.write_text(batching_text(batching))
    load_before = os.getloadavg()
    references = {"savedmodel": in_process(version, "savedmodel", args.duration, args.max_batch_size)}
    cells: list[Cell] = []
    for backend in args.backend:
        if backend not in references:  # measured just before its server runs: the same load
            references[backend] = in_process(version, backend, args.duration, args.max_batch_size)
        ref = references[backend]
        print(f"{backend} in process: batch-1 p50 {ref['batch1_p50_ms']:.2f} ms; batched {ref['batched_by_size']}",
              flush=True)
        for batched in args.batching:
            cells += _serve_cells(base, batching_file if batched == "on" else None, args.concurrency, generator,
                                  args.duration, scratch, "cnn", args.workers, backend)
    if not args.no_ceiling:
        cells += _serve_cells(_null_model(scratch), batching_file, [max(args.concurrency)], generator, args.duration,
                              scratch, "null", args.workers)
    after = in_process(version, "savedmodel", args.duration, args.max_batch_size)
    reference = references["savedmodel"]
    reference["batched_images_per_s_after"] = after["batched_images_per_s"]
    reference["at_max_batch_images_per_s_after"] = after["at_max_batch_images_per_s"]
    reference["batch1_p50_ms_after"] = after["batch1_p50_ms"]
    return {"in_process": reference, "in_process_by_backend": references, "load_generator": generator,
            "workers": args.workers,
            "cells": [dict(asdict(c), server_cpu_ms_per_request=c.server_cpu_ms_per_request) for c in cells],
            "batching": asdict(batching), "duration_s": args.duration, "cpu_count": os.cpu_count(),
            "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "model": str(base) if args.model else "untrained CNN (same FLOPs)"}


def markdown(result: dict) -> str:
    ref = result["in_process"]
    refs = result.get("in_process_by_backend", {"savedmodel": ref})
    size = result["batching"]["max_batch_size"]
    tools = {"native": "h2load (gRPC) and wrk (REST)", "python": "grpc.aio (gRPC) and http.client threads (REST)"}
    lines = [f"Server: `tfship serve --workers {result['workers']} --backend B`. Load generator: "
             f"{tools[result['load_generator']]}. SavedModel in process, before the servers ran: batch-1 p50 "
             f"{ref['batch1_p50_ms']:.2f} ms; batched {ref['at_max_batch_images_per_s']:.0f} images/s at batch {size} "
             f"(the server's max_batch_size), best {ref['batched_images_per_s']:.0f} images/s (batch 32/64/128). "
             f"After: {ref['batch1_p50_ms_after']:.2f} ms; {ref['at_max_batch_images_per_s_after']:.0f} and "
             f"{ref['batched_images_per_s_after']:.0f} images/s. '× SM best' is req/s over the SavedModel's best "
             "(before); '× own best' over the serving backend's own in-process best; 'p50 − own b1' is the p50 "
             "minus that backend's in-process batch-1 p50. '× SM (CPU)' compares CPU costs instead of rates, "
             "which another load on the machine disturbs less: the SavedModel's least in-process CPU per image "
             "over the server's CPU per request (both sides CPU-bound on the same cores).", "",
             f"| backend | in process: batch-1 p50 ms | batch {size} images/s | best images/s | × SM best | "
             "CPU ms/image (least) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in refs.items():
        lines.append(f"| {name} | {r['batch1_p50_ms']:.2f} | {r['at_max_batch_images_per_s']:.0f} | "
                     f"{r['batched_images_per_s']:.0f} | {r['batched_images_per_s'] / ref['batched_images_per_s']:.2f} | "
                     f"{r.get('min_cpu_ms_per_image', float('nan')):.3f} |")
    lines += ["", "| backend | model | transport | batching | concurrency | req/s | × SM best | × own best | "
              "× SM (CPU) | p50 ms | p50 − own b1 ms | p99 ms | errors | server cores | server CPU ms/request | "
              "client cores |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in result["cells"]:
        backend = c.get("backend", "savedmodel")
        own = refs.get(backend, ref)
        cnn = c["model"] == "cnn"
        sm = f"{c['rps'] / ref['batched_images_per_s']:.2f}" if cnn else "—"
        mine = f"{c['rps'] / own['batched_images_per_s']:.2f}" if cnn else "—"
        delta = f"{c['p50_ms'] - own['batch1_p50_ms']:+.2f}" if cnn else "—"
        by_cpu = (f"{ref.get('min_cpu_ms_per_image', float('nan')) / c['server_cpu_ms_per_request']:.2f}"
                  if cnn and c["rps"] else "—")
        lines.append(f"| {backend} | {c['model']} | {c['transport']} | {'on' if c['batching'] else 'off'} | "
                     f"{c['concurrency']} | {c['rps']:.0f} | {sm} | {mine} | {by_cpu} | {c['p50_ms']:.2f} | {delta} | "
                     f"{c['p99_ms']:.2f} | {c['errors']} | {c['server_cores']:.2f} | "
                     f"{c['server_cpu_ms_per_request']:.2f} | {c['client_cores']:.2f} |")
    la, lb = result["loadavg_before"], result["loadavg_after"]
    lines += ["", f"{result['cpu_count']} CPUs; load average before {la[0]:.1f}, after {lb[0]:.1f} "
                  f"(1-minute); {result['duration_s']} s per cell. Model 'null' slices its input (no arithmetic): "
                  "the server's own cost per request."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="run or base folder (default: an untrained CNN in a temp folder)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--max_batch_size", type=int, default=32)
    p.add_argument("--batch_timeout_micros", type=int, default=0)
    p.add_argument("--batch_threads", type=int, default=1)
    p.add_argument("--load-generator", choices=["auto", "native", "python"], default="auto",
                   help="native: h2load + wrk (default when on PATH); python: grpc.aio + http.client")
    p.add_argument("--workers", type=int, default=1, help="tfship serve --workers (server processes)")
    p.add_argument("--backend", nargs="+", default=["savedmodel"], choices=["savedmodel", "onnx", "tflite"],
                   help="tfship serve --backend, one server after the other (default: savedmodel)")
    p.add_argument("--batching", nargs="+", default=["off", "on"], choices=["off", "on"],
                   help="cells without and/or with server-side batching (default: both)")
    p.add_argument("--no-ceiling", action="store_true", help="skip the do-nothing model's cells")
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
