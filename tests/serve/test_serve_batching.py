"""Server-side batching: concurrent requests share one run, each gets its own rows back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from serve_helpers import MODEL, predict_request

from tfship.serve.batching import Batcher
from tfship.serve.config import BatchingOptions, ModelConfig, MonitoringOptions
from tfship.serve.errors import InvalidArgumentError, UnavailableError
from tfship.serve.server import ModelServer, ServerOptions

# Rows computed in a batch of another size: last-bit float32 differences in the matmul sums.
OTHER_BATCH = 1e-6


class _SlowDoubler:
    """A stand-in signature: doubles its input, slowly, and records the batch sizes it saw."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sizes: list[int] = []
        self.threads: list[str] = []  # the thread that ran each batch

    def __call__(self, inputs):
        self.sizes.append(len(inputs["x"]))
        self.threads.append(threading.current_thread().name)
        time.sleep(self.seconds)
        return {"y": inputs["x"] * 2}


def test_concurrent_requests_are_batched_and_split_back():
    run = _SlowDoubler(0.05)
    batches: list[tuple[int, int]] = []
    b = Batcher(run, BatchingOptions(max_batch_size=16, batch_timeout_micros=20_000, num_batch_threads=1),
                "t", lambda rows, pad: batches.append((rows, pad)))
    try:
        with ThreadPoolExecutor(12) as pool:
            futures = [pool.submit(b.submit, {"x": np.full((1 + i % 2, 3), i, dtype=np.float32)}) for i in range(12)]
            results = [f.result(timeout=30) for f in futures]
    finally:
        b.stop()
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r["y"], np.full((1 + i % 2, 3), 2 * i, dtype=np.float32))
    assert sum(run.sizes) == 18
    assert max(run.sizes) > 2, run.sizes  # requests really shared runs
    assert all(size <= 16 for size in run.sizes)
    assert sum(rows for rows, _ in batches) == 18


def test_zero_timeout_idle_request_runs_on_caller_thread_and_load_still_batches():
    run = _SlowDoubler(0.05)
    b = Batcher(run, BatchingOptions(max_batch_size=16, batch_timeout_micros=0, num_batch_threads=1), "t")
    try:
        b.submit({"x": np.ones((1, 1), np.float32)})
        assert run.threads == [threading.current_thread().name]  # no hand-off when idle
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: b.submit({"x": np.full((1, 1), i, np.float32)}), range(8)))
    finally:
        b.stop()
    assert max(run.sizes) > 1, run.sizes  # requests queued behind a running one were batched


def test_submit_future_returns_at_once_and_completes_on_a_batch_thread():
    run = _SlowDoubler(0.2)
    b = Batcher(run, BatchingOptions(max_batch_size=16, batch_timeout_micros=0, num_batch_threads=1), "t")
    try:
        start = time.monotonic()
        futures = [b.submit_future({"x": np.full((1, 2), i, np.float32)}) for i in range(6)]
        assert time.monotonic() - start < 0.15  # nobody waited for the 0.2 s run
        with pytest.raises(InvalidArgumentError, match="Task size 17 is larger"):
            b.submit_future({"x": np.zeros((17, 2), np.float32)})  # the request's own error: raised at once
        results = [f.result(timeout=30) for f in futures]
    finally:
        b.stop()
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r["y"], np.full((1, 2), 2 * i, np.float32))
    assert run.threads and all(name.startswith("batch-t-") for name in run.threads), run.threads
    assert len(run.sizes) < 6, run.sizes  # queued together, run together


def test_padding_to_allowed_batch_sizes():
    run = _SlowDoubler(0.0)
    b = Batcher(run, BatchingOptions(max_batch_size=8, batch_timeout_micros=0, num_batch_threads=1,
                                     allowed_batch_sizes=(4, 8)), "t")
    try:
        out = b.submit({"x": np.arange(3, dtype=np.float32).reshape(3, 1)})
    finally:
        b.stop()
    assert run.sizes == [4]
    np.testing.assert_array_equal(out["y"], [[0], [2], [4]])


def test_oversized_task_and_full_queue():
    run = _SlowDoubler(0.3)
    b = Batcher(run, BatchingOptions(max_batch_size=2, batch_timeout_micros=0, max_enqueued_batches=1,
                                     num_batch_threads=1), "t")
    try:
        with pytest.raises(InvalidArgumentError, match="Task size 3 is larger than maximum input batch size 2"):
            b.submit({"x": np.zeros((3, 1), np.float32)})
        errors: list[Exception] = []

        def submit():
            try:
                b.submit({"x": np.zeros((1, 1), np.float32)})
            except UnavailableError as e:
                errors.append(e)

        threads = [threading.Thread(target=submit) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors and "queue to which this task was submitted is full" in str(errors[0])
    finally:
        b.stop()


def test_batching_server_scores_and_metrics(serve_base, images, reference):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    opts = ServerOptions(models=(ModelConfig(MODEL, serve_base),), grpc_port=0, rest_port=0, poll_seconds=0,
                         batching=BatchingOptions(max_batch_size=8, batch_timeout_micros=5000, num_batch_threads=1),
                         monitoring=MonitoringOptions(True))
    server = ModelServer(opts)
    server.start()
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        def one(i: int) -> np.ndarray:
            resp = stub.Predict(predict_request(images[i % 4:i % 4 + 1]), timeout=30)
            return tf.make_ndarray(resp.outputs["scores"])[0]

        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(one, range(32)))
        channel.close()
        np.testing.assert_allclose(np.stack(got), reference[[i % 4 for i in range(32)]], rtol=0, atol=OTHER_BATCH)
        text = requests.get(f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics", timeout=10).text
    finally:
        server.stop()
    counts = {}
    for line in text.splitlines():
        if line.startswith(":tensorflow:serving:batching_session:processed_batch_size_bucket"):
            le = line.split('le="')[1].split('"')[0]
            counts[le] = float(line.rsplit(" ", 1)[1])
    # 32 single-image requests from 16 threads ran in fewer than 32 batches: some batches held > 1.
    assert counts["+Inf"] < 32 and counts["1.0"] < counts["+Inf"], counts
    assert f':tensorflow:serving:request_count_total{{model_name="{MODEL}",status="OK"}} 32.0' in text
