"""``tfship serve --workers 2``: two processes on the same ports, connections spread over both, one set
of metrics, and the set stops together (SIGTERM) or fails together (a worker dies)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from serve_helpers import MODEL, predict_request

# Rows computed in a batch of another size: last-bit float32 differences in the matmul sums.
OTHER_BATCH = 1e-6


class _Workers:
    """``tfship serve --workers 2 --port 0 --rest_api_port FREE``, with its stderr collected (gRPC port 0: a
    free port the parent picks for both workers; REST port 0 would mean "REST off", as in TF Serving)."""

    def __init__(self, base: Path, *extra: str) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        self.proc = subprocess.Popen([sys.executable, "-m", "tfship.cli", "serve", "--model", str(base.parent),
                                      "--workers", "2", "--port", "0", "--rest_api_port", str(_free_port()),
                                      "--file_system_poll_wait_seconds", "0", *extra],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 180
        while not any("serve: listening" in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail("workers did not start:\n" + "".join(self.lines))
            time.sleep(0.2)
        line = next(line for line in self.lines if "serve: listening" in line)
        self.grpc_port = int(re.search(r"gRPC 127\.0\.0\.1:(\d+)", line).group(1))
        self.rest_port = int(re.search(r"REST http://127\.0\.0\.1:(\d+)", line).group(1))

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(p) for p in children
                if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=90)
        self._reader.join(10)
        return code


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_share_the_ports_and_their_metrics(serve_base, images, reference, tmp_path):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }\n')
    server = _Workers(serve_base, "--monitoring_config_file", str(monitoring))
    try:
        pids = server.worker_pids()
        assert len(pids) == 2, pids
        environ = Path(f"/proc/{pids[0]}/environ").read_bytes().split(b"\0")
        metrics_dir = Path(next(e for e in environ if e.startswith(b"PROMETHEUS_MULTIPROC_DIR=")).split(b"=", 1)[1]
                           .decode())
        url = f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}:predict"
        for i in range(40):  # a new connection each time: the kernel spreads connections, not requests
            r = requests.post(url, json={"signature_name": "predict_images", "instances": images[i % 4:i % 4 + 1].tolist()},
                              timeout=30, headers={"Connection": "close"})
            assert r.status_code == 200, r.text
            np.testing.assert_allclose(r.json()["predictions"][0], reference[i % 4], rtol=0, atol=OTHER_BATCH)
        for i in range(10):
            with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                got = tf.make_ndarray(stub.Predict(predict_request(images[:1]), timeout=30).outputs["scores"])
                np.testing.assert_allclose(got[0], reference[0], rtol=0, atol=OTHER_BATCH)
        # prometheus-client writes a process's counts to counter_<pid>.db from its first request on.
        answered = {int(f.stem.split("_")[1]) for f in metrics_dir.glob("counter_*.db")}
        assert answered == set(pids), (answered, pids)  # both workers answered some of the requests
        text = requests.get(f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics", timeout=10).text
        # Whichever worker answers the scrape reports the requests of both.
        assert f':tensorflow:serving:request_count_total{{model_name="{MODEL}",status="OK"}} 50.0' in text, text
    finally:
        code = server.stop()
    assert code == 0, "".join(server.lines)
    assert all(not Path(f"/proc/{p}").exists() or "Z" in Path(f"/proc/{p}/stat").read_text().split()[2]
               for p in pids)


def test_a_dead_worker_stops_the_set_with_a_message(serve_base):
    server = _Workers(serve_base)
    try:
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        code = server.proc.wait(timeout=90)
    finally:
        server.stop()
    assert code != 0
    text = "".join(server.lines)
    assert f"(pid {victim}) exited with code -9" in text, text
    assert "Traceback" not in text
