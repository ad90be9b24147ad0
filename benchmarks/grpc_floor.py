"""grpcio's own CPU cost per unary call: a bare PredictionService that answers a canned response.

No tfship code, no TensorFlow in the call path: a ``grpc.aio`` (or sync, ``--sync``) servicer whose
Predict returns the same 10-float ``PredictResponse`` every time, loaded by h2load (Debian's
nghttp2-client) at ``--concurrency`` connections. Prints requests/s, the server's cores and its CPU
milliseconds per request, and writes them to ``--out``. This is the floor under any Python gRPC
server's cost per request on the machine (docs/SERVING.md, "Why gRPC cannot reach 60%"):

    python benchmarks/grpc_floor.py --duration 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import loadgen  # benchmarks/loadgen.py: benchmarks/ is on sys.path when this runs as a script


def _servicer_main(port: int, sync: bool) -> None:
    """Run in a child process: serve the canned Predict until killed."""
    import asyncio
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    canned = predict_pb2.PredictResponse()
    canned.model_spec.name = "mnist"
    out = canned.outputs["scores"]
    out.dtype = 1
    out.tensor_shape.dim.add(size=1)
    out.tensor_shape.dim.add(size=10)
    out.float_val.extend([0.1] * 10)

    class Sync(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            return canned

    class Aio(prediction_service_pb2_grpc.PredictionServiceServicer):
        async def Predict(self, request, context):
            return canned

    address = f"127.0.0.1:{port}"
    if sync:
        server = grpc.server(futures.ThreadPoolExecutor(64))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Sync(), server)
        server.add_insecure_port(address)
        server.start()
        print("ready", flush=True)
        server.wait_for_termination()
        return

    async def main() -> None:
        server = grpc.aio.server()
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Aio(), server)
        server.add_insecure_port(address)
        await server.start()
        print("ready", flush=True)
        await server.wait_for_termination()

    asyncio.run(main())


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--sync", action="store_true", help="the thread-pool grpc.server instead of grpc.aio")
    p.add_argument("--out", type=Path, default=Path("benchmarks/grpc_floor.json"))
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # internal: the child's port
    args = p.parse_args(argv)
    if args.serve:
        _servicer_main(args.serve, args.sync)
        return 0
    if shutil.which("h2load") is None:
        raise SystemExit("needs h2load on PATH (Debian: apt-get install nghttp2-client)")
    port = _free_port()
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port)] + (["--sync"] if args.sync else []),
                             stdout=subprocess.PIPE, text=True)
    try:
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("the servicer did not start")
        with tempfile.TemporaryDirectory() as scratch:
            body = Path(scratch) / "request.bin"
            body.write_bytes(loadgen.grpc_frame())
            cpu, wall = _cpu_seconds(child.pid), time.perf_counter()
            out = subprocess.run(["h2load", "-t", "1", "-c", str(args.concurrency), "-m", "1", "-D", f"{args.duration:g}",
                                  "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body),
                                  f"http://127.0.0.1:{port}/tensorflow.serving.PredictionService/Predict"],
                                 capture_output=True, text=True, check=True).stdout
            wall, cpu = time.perf_counter() - wall, _cpu_seconds(child.pid) - cpu
    finally:
        child.kill()
        child.wait()
    done = int(out.split("requests: ")[1].split(" total")[0])
    result = {"server": "grpc.server (sync)" if args.sync else "grpc.aio", "concurrency": args.concurrency,
              "requests_per_s": done / args.duration, "server_cores": cpu / wall,
              "server_cpu_ms_per_request": 1e3 * cpu / done, "cpu_count": os.cpu_count()}
    print(f"{result['server']}, c={args.concurrency}: {result['requests_per_s']:.0f} req/s, server "
          f"{result['server_cores']:.2f} cores, {result['server_cpu_ms_per_request']:.3f} ms of CPU per request")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
