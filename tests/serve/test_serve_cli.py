"""``tfship serve`` as a subprocess: readiness, SIGTERM with requests in flight, argument errors, --write-config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
from serve_helpers import MODEL

BIG_BATCH = 1500  # ~0.3 s of CNN work per request on 2 cores: long enough to be in flight at SIGTERM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(*args: str) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, "-m", "tfship.cli", "serve", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_available(proc: subprocess.Popen, rest_port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            r = requests.get(f"http://127.0.0.1:{rest_port}/v1/models/{MODEL}", timeout=2)
            if r.ok and r.json()["model_version_status"][0]["state"] == "AVAILABLE":
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail("server did not report AVAILABLE in time")


def test_sigterm_lets_in_flight_requests_finish(serve_base):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    from serve_helpers import predict_request

    grpc_port, rest_port = _free_port(), _free_port()
    proc = _serve("--model", str(serve_base.parent), "--port", str(grpc_port), "--rest_api_port", str(rest_port),
                  "--file_system_poll_wait_seconds", "0")
    try:
        _wait_available(proc, rest_port)
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        batch = np.random.default_rng(0).random((BIG_BATCH, 784), dtype=np.float32)
        results: list[tuple[str, float]] = []

        def call():
            try:
                resp = stub.Predict(predict_request(batch), timeout=120)
                results.append((str(tf.make_ndarray(resp.outputs["scores"]).shape), time.monotonic()))
            except grpc.RpcError as e:
                results.append((f"{e.code()}: {e.details()}", time.monotonic()))

        rest_body = json.dumps({"signature_name": "predict_images", "instances": batch[:500].round(3).tolist()})

        def rest_call():
            try:
                r = requests.post(f"http://127.0.0.1:{rest_port}/v1/models/{MODEL}:predict", data=rest_body, timeout=120)
                results.append((f"REST {r.status_code} {len(r.json().get('predictions', []))}", time.monotonic()))
            except requests.RequestException as e:
                results.append((f"REST {type(e).__name__}", time.monotonic()))

        threads = [threading.Thread(target=call) for _ in range(3)] + [threading.Thread(target=rest_call)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        sent_term = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join()
        assert proc.wait(timeout=60) == 0
        channel.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sorted(r for r, _ in results) == sorted([str((BIG_BATCH, 10))] * 3 + ["REST 200 500"])
    assert max(t for _, t in results) > sent_term, "no request was still in flight at SIGTERM"
    stderr = proc.stderr.read()
    assert "serve: stopping (in-flight requests finish first)" in stderr
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{rest_port}/v1/models/{MODEL}", timeout=2)


@pytest.mark.parametrize("args, message", [
    ([], "nothing to serve"),
    (["--model", "/nonexistent/run"], "does not exist"),
    (["--model", "x", "--model_base_path", "y"], "not both"),
    (["--model", "x", "--port", "70000"], "is not a TCP port"),
    (["--model", "x", "--model_config_file_poll_wait_seconds", "5"], "needs --model_config_file"),
    (["--model", "x", "--workers", "0"], "--workers must be at least 1"),
])
def test_usage_errors_exit_fast_with_a_message(args, message):
    start = time.monotonic()
    proc = _serve(*args)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert message in stderr
    assert "Traceback" not in stderr
    assert time.monotonic() - start < 20  # no model load, no server start


def test_write_config(serve_base, tmp_path):
    proc = _serve("--model", str(serve_base.parent), "--write-config", str(tmp_path / "cfg"))
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert sorted(os.path.basename(p) for p in stdout.split()) == [
        "batching_parameters.txt", "inferenceservice.yaml", "kubernetes.yaml", "models.config", "monitoring.config"]
    assert 'base_path: "/models/mnist"' in (tmp_path / "cfg" / "models.config").read_text()


def test_model_config_file_serves_several_models(serve_base, tmp_path):
    """The flags go through the same parser as the CLI; two models from one ModelServerConfig file."""
    import argparse

    from tfship.serve import cli, config
    from tfship.serve.server import ModelServer

    path = tmp_path / "models.config"
    path.write_text(config.model_config_text([
        config.ModelConfig("first", serve_base),
        config.ModelConfig("second", serve_base, config.VersionPolicy("all"), {"stable": 1})]))
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--model_config_file", str(path), "--port", "0", "--rest_api_port", str(_free_port()),
                              "--file_system_poll_wait_seconds", "0"])
    server = ModelServer(cli.options(cli.parse(args)))
    server.start()
    try:
        for name, path_ in (("first", ""), ("second", "/labels/stable")):
            r = requests.get(f"http://127.0.0.1:{server.rest_port}/v1/models/{name}{path_}", timeout=10)
            assert r.json()["model_version_status"][0]["state"] == "AVAILABLE", r.text
    finally:
        server.stop()
