"""Prometheus metrics with TF Serving's names and labels, served at its path when monitoring is on.

TF Serving exports ``/tensorflow/serving/request_count`` (labels model_name, status),
``/tensorflow/serving/request_latency`` (model_name, API, entrypoint; microseconds) and
``/tensorflow/serving/batching_session/processed_batch_size``; its Prometheus exporter turns ``/``
into ``:``. prometheus-client adds ``_total`` to counters and ``_bucket``/``_sum``/``_count`` to
histograms, as every Prometheus client does.
"""

from __future__ import annotations

import os

# prometheus-client's multiprocess mode: each process writes its values to files in this folder.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """Request counts, latencies and batch sizes in a registry of their own (one per server)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self._requests = Counter(":tensorflow:serving:request_count", "The total number of requests.",
                                 ["model_name", "status"], registry=self.registry)
        # TF Serving's buckets: 10 us, growing by 1.8x, 33 of them (~20 minutes).
        latency_buckets = [10 * 1.8 ** i for i in range(33)]
        self._latency = Histogram(":tensorflow:serving:request_latency",
                                  "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
                                  ["model_name", "API", "entrypoint"], buckets=latency_buckets,
                                  registry=self.registry)
        self._batch = Histogram(":tensorflow:serving:batching_session:processed_batch_size",
                                "Tracks the batch size distribution on processing.", ["model_name"],
                                buckets=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], registry=self.registry)
        self._padding = Histogram(":tensorflow:serving:batching_session:padding_size",
                                  "Tracks the padding size distribution on batches.", ["model_name"],
                                  buckets=[0, 1, 2, 4, 8, 16, 32, 64, 128], registry=self.registry)

    def observe_request(self, model: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        self._requests.labels(model, status).inc()
        self._latency.labels(model, api, entrypoint).observe(seconds * 1e6)

    def observe_batch(self, model: str, rows: int, padding: int) -> None:
        self._batch.labels(model).observe(rows + padding)
        self._padding.labels(model).observe(padding)

    def render(self) -> bytes:
        """Prometheus text. Under ``tfship serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set) the
        counts of every worker process, summed, whichever worker answers the scrape."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if os.environ.get(MULTIPROCESS_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
