"""First-request latency of `tfship serve` with and without model warmup (--enable_model_warmup).

Each round starts a fresh server process (`python -m tfship.cli serve`), waits until the model is
AVAILABLE, then times the first Predict request and the next five, over gRPC or REST. The two
settings run interleaved (on, off, on, off, ...) so load on a shared machine hits both alike:

    python benchmarks/warmup_latency.py --rounds 3 --transport grpc rest
    python benchmarks/warmup_latency.py --model runs/cnn --rounds 5

`on` is TF Serving's default: the version's `assets.extra/tf_serving_warmup_requests` (written by
`tfship train` / `tfship warmup`) is replayed before the version is AVAILABLE. `off` is
`--enable_model_warmup=false`: nothing runs before the first request. Without `--model` an
untrained CNN with its warmup file is written to a temporary folder (same arithmetic per image).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_serving import free_port, untrained_model  # noqa: E402


def _wait_available(rest_port: int, proc: subprocess.Popen, model: str) -> float:
    import requests

    start = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()}")
        try:
            r = requests.get(f"http://127.0.0.1:{rest_port}/v1/models/{model}", timeout=2)
            if r.ok and r.json()["model_version_status"][0]["state"] == "AVAILABLE":
                return time.monotonic() - start
        except requests.ConnectionError:
            pass
        time.sleep(0.05)


def _requests(transport: str, grpc_port: int, rest_port: int, model: str, signature: str):
    """A function that sends one single-image Predict and returns its latency in ms."""
    import numpy as np

    image = np.random.default_rng(0).random((1, 784), dtype=np.float32)
    if transport == "rest":
        import requests

        session = requests.Session()
        body = json.dumps({"signature_name": signature, "instances": image.round(4).tolist()})
        url = f"http://127.0.0.1:{rest_port}/v1/models/{model}:predict"

        def rest() -> float:
            t = time.perf_counter()
            session.post(url, data=body, timeout=60).raise_for_status()
            return (time.perf_counter() - t) * 1e3

        return rest
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfship.tensorproto import from_numpy

    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = model, signature
    from_numpy(image, request.inputs["images"], packed=True)

    def call() -> float:
        t = time.perf_counter()
        stub.Predict(request, timeout=60)
        return (time.perf_counter() - t) * 1e3

    return call


def one_round(base: Path, model: str, warmup: bool, transport: str, signature: str) -> dict:
    grpc_port, rest_port = free_port(), free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, "-m", "tfship.cli", "serve", "--model_base_path", str(base),
                             "--model_name", model, "--port", str(grpc_port), "--rest_api_port", str(rest_port),
                             "--file_system_poll_wait_seconds=0", f"--enable_model_warmup={str(warmup).lower()}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready = _wait_available(rest_port, proc, model)
        send = _requests(transport, grpc_port, rest_port, model, signature)
        first = send()
        after = [send() for _ in range(5)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    return {"warmup": warmup, "transport": transport, "ready_s": round(ready, 2), "first_ms": round(first, 1),
            "next_median_ms": round(statistics.median(after), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a SavedModel base folder with the warmup file (default: an "
                        "untrained CNN written here)")
    parser.add_argument("--model_name", default="mnist")
    parser.add_argument("--signature", default="predict_images")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setting and transport")
    parser.add_argument("--transport", nargs="+", choices=["grpc", "rest"], default=["grpc", "rest"])
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.model or untrained_model(Path(tmp))  # writes the warmup file too
        rows = []
        for transport in args.transport:
            for _ in range(args.rounds):
                for warmup in (True, False):  # interleaved: on, off, on, off...
                    rows.append(one_round(base, args.model_name, warmup, transport, args.signature))
                    print(json.dumps(rows[-1]), flush=True)
    print(f"\n| transport | warmup | first request, ms (median of {args.rounds}) | next requests, ms | "
          "start to AVAILABLE, s |")
    print("| --- | --- | --- | --- | --- |")
    for transport in args.transport:
        for warmup in (True, False):
            cell = [r for r in rows if r["transport"] == transport and r["warmup"] == warmup]
            print(f"| {transport} | {'on' if warmup else 'off'} | "
                  f"{statistics.median(r['first_ms'] for r in cell):.1f} | "
                  f"{statistics.median(r['next_median_ms'] for r in cell):.2f} | "
                  f"{statistics.median(r['ready_s'] for r in cell):.1f} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
