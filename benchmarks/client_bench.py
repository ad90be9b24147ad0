"""Client-side costs of tfship's gRPC and REST clients (a script, not a test).

    python benchmarks/client_bench.py                       # encode/decode + import time
    python benchmarks/client_bench.py --serve runs/cnn      # + round trips against a local tfship serve
    python benchmarks/client_bench.py --install-size        # + installed size of tfship[client] (fresh venv)

Prints a table and writes JSON (default runs/benchmarks/client_bench.json). Numbers go to docs/CLIENTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BATCHES = (1, 64)


def _median_ms(fn: Callable[[], object], min_time: float = 0.5, min_runs: int = 20) -> float:
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _images(n: int) -> np.ndarray:
    mnist_dir = os.environ.get("TFSHIP_MNIST_DIR", str(REPO.parent / "shared" / "data" / "mnist"))
    if Path(mnist_dir).is_dir():
        from tfship import mnist

        return mnist.load(Path(mnist_dir)).test.flat_float()[:n]
    # MNIST-like: ~80% zeros, the rest k/255.
    rng = np.random.default_rng(0)
    u8 = np.where(rng.random((n, 784)) < 0.8, 0, rng.integers(1, 256, (n, 784)))
    return (u8.astype(np.float32) / 255).astype(np.float32)


def codec_costs() -> list[dict]:
    """Encode a request + decode a (N, 10) score answer, per encoding, without a network."""
    from tfship.clients import _proto
    from tfship.clients.rest_client import decode_predict, encode_predict
    from tfship.clients.tensors import from_tensor_proto, to_tensor_proto

    rows = []
    for n in BATCHES:
        batch = _images(n)
        scores = np.random.default_rng(1).random((n, 10), dtype=np.float32)
        for packed, name in ((True, "grpc tensor_content"), (False, "grpc float_val")):
            answer = _proto.PredictResponse()
            answer.outputs["scores"].CopyFrom(to_tensor_proto(scores, packed=packed))
            answer_bytes = answer.SerializeToString()

            def grpc_round(packed=packed, answer_bytes=answer_bytes, batch=batch):
                request = _proto.PredictRequest()
                request.model_spec.name = "mnist"
                request.inputs["images"].CopyFrom(to_tensor_proto(batch, packed=packed))
                request.SerializeToString()
                from_tensor_proto(_proto.PredictResponse.FromString(answer_bytes).outputs["scores"])

            request_bytes = len(_request_bytes(batch, packed))
            rows.append({"encoding": name, "images": n, "ms": _median_ms(grpc_round), "request_bytes": request_bytes})
        for fmt, key in (("columnar", "outputs"), ("row", "predictions")):
            answer_text = json.dumps({key: scores.tolist()})

            def rest_round(fmt=fmt, answer_text=answer_text, batch=batch):
                encode_predict(batch, "predict_images", "images", fmt)
                decode_predict(json.loads(answer_text), ("scores",), "bench")

            size = len(encode_predict(batch, "predict_images", "images", fmt))
            rows.append({"encoding": f"rest json {fmt}", "images": n, "ms": _median_ms(rest_round),
                         "request_bytes": size})
    return rows


def _request_bytes(batch: np.ndarray, packed: bool) -> bytes:
    from tfship.clients import _proto
    from tfship.clients.tensors import to_tensor_proto

    request = _proto.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(to_tensor_proto(batch, packed=packed))
    return request.SerializeToString()


def import_time(module: str, runs: int = 5) -> float:
    """Median wall time of ``import module`` in a fresh interpreter, seconds."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                  cwd=tempfile.gettempdir()).stdout) for _ in range(runs)]
    return statistics.median(times)


def round_trips(grpc_target: str, rest_url: str) -> list[dict]:
    """End-to-end latency against a live server: client + network + server + model."""
    from tfship.clients import GrpcClient, RestClient

    rows = []
    clients = {"grpc": GrpcClient(grpc_target), "rest columnar": RestClient(rest_url, json_format="columnar"),
               "rest row": RestClient(rest_url, json_format="row")}
    for n in BATCHES:
        batch = _images(n)
        for name, client in clients.items():
            rows.append({"transport": name, "images": n,
                         "ms": _median_ms(lambda c=client: c.predict(batch), min_time=2.0, min_runs=30)})
    for client in clients.values():
        client.close()
    return rows


def _start_server(model: Path):
    sys.path.insert(0, str(REPO / "tests" / "clients"))
    import live_server  # the tests' server helpers: free ports, start, wait until AVAILABLE

    log = Path(tempfile.mkdtemp()) / "serve.log"
    server = live_server.start_server(model, log)
    live_server.wait_until_available(server)
    return server, live_server.stop_server


def install_size() -> dict:
    """MB that ``pip install tfship[client]`` adds to a fresh venv (site-packages, minus pip itself)."""
    sys.path.insert(0, str(REPO / "tests" / "clients"))
    import test_install  # the tests' wheel builder: every package folder pyproject lists

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wheel = test_install.build_wheel(root)
        venv.EnvBuilder(with_pip=True).create(root / "venv")
        python = root / "venv" / "bin" / "python"
        site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
        before = _du(site)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"{wheel}[client]"], check=True, cwd=tmp)
        after = _du(site)
        packages = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True,
                                  text=True, check=True).stdout.split()
        per_package = json.loads(subprocess.run([str(python), "-c", _SIZES_BY_DISTRIBUTION], capture_output=True,
                                                text=True, check=True, cwd=tmp).stdout)
        imported = float(subprocess.run(
            [str(python), "-c", "import time; t = time.perf_counter(); import tfship.clients; "
                                "print(time.perf_counter() - t)"], capture_output=True, text=True, check=True,
            cwd=tmp).stdout)
    return {"added_mb": (after - before) / 1e6, "packages": packages, "mb_by_package": per_package,
            "import_s_in_client_venv": imported}


# Run inside the client venv: installed MB per distribution, from each one's RECORD.
_SIZES_BY_DISTRIBUTION = '''
import json, importlib.metadata as md
sizes = {}
for dist in md.distributions():
    total = 0
    for f in dist.files or []:
        path = f.locate()
        if path.is_file():
            total += path.stat().st_size
    sizes[dist.metadata["Name"]] = round(total / 1e6, 1)
print(json.dumps(dict(sorted(sizes.items(), key=lambda kv: -kv[1]))))
'''


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=Path, help="start 'tfship serve' on this run folder for round trips")
    parser.add_argument("--grpc", help="an already running server's gRPC target (with --rest)")
    parser.add_argument("--rest", help="an already running server's REST url (with --grpc)")
    parser.add_argument("--install-size", action="store_true", help="measure the client extra in a fresh venv")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "benchmarks" / "client_bench.json")
    args = parser.parse_args(argv)

    results: dict = {"python": platform.python_version(), "machine": platform.machine(),
                     "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    results["codec"] = codec_costs()
    print("client-side encode + decode per request (median)")
    for r in results["codec"]:
        print(f"  {r['encoding']:<22} {r['images']:>3} images  {r['ms']:8.3f} ms  request {r['request_bytes']:>9,} B")
    results["import_s"] = {m: import_time(m) for m in ("numpy", "tfship.clients", "tensorflow_serving.apis.predict_pb2")}
    for module, seconds in results["import_s"].items():
        print(f"import {module}: {seconds:.3f} s")

    server, stop = None, None
    if args.serve:
        server, stop = _start_server(args.serve)
        args.grpc, args.rest = server.grpc, server.rest
    try:
        if args.grpc and args.rest:
            results["round_trip"] = round_trips(args.grpc, args.rest)
            print("round trip to the server (median)")
            for r in results["round_trip"]:
                print(f"  {r['transport']:<14} {r['images']:>3} images  {r['ms']:8.2f} ms")
    finally:
        if server is not None:
            stop(server)
    if args.install_size:
        results["install"] = install_size()
        print(f"tfship[client] adds {results['install']['added_mb']:.1f} MB to a fresh venv; "
              f"import there {results['install']['import_s_in_client_venv']:.3f} s")
        print("  MB by package: " + ", ".join(f"{k} {v}" for k, v in results["install"]["mb_by_package"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
