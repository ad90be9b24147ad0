"""``tfship serve --workers N``: N server processes sharing the gRPC and REST ports.

One Python process runs its request handling under one GIL and tops out near 1.5 cores however
many the machine has (docs/SERVING.md, "Benchmark"). Workers are the usual answer (gunicorn's and
uvicorn's ``--workers``): each worker is a whole :class:`ModelServer` (models, batching, both
transports) in its own process, all bound to the same ports with ``SO_REUSEPORT``, so the kernel
spreads *connections* over them. A client that keeps one connection (one gRPC channel) talks to one
worker; many clients, or many connections, use them all.

What the parent does: resolves port 0 to a real port (held with ``SO_REUSEPORT`` so every worker
gets the same one), gives each worker ``cores / N`` TensorFlow intra-op threads unless told
otherwise, points prometheus-client's multiprocess mode at a private folder so a scrape of any
worker returns the counts of all of them, waits until every worker serves, forwards SIGTERM/SIGINT,
and if a worker dies, stops the others and fails (a supervisor such as systemd restarts the set).
Each worker polls the model folders itself; during a version swap workers can briefly differ.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable

from tfship.errors import TfshipError, UsageError
from tfship.serve.metrics import MULTIPROCESS_ENV
from tfship.serve.server import ServerOptions, bind_tcp

log = logging.getLogger("tfship.serve")


class WorkerDiedError(TfshipError):
    """A worker process exited while the server was meant to be running."""


def worker_options(options: ServerOptions, workers: int) -> ServerOptions:
    """The options each worker runs with: shared ports, and a share of the cores for TensorFlow."""
    share = max(1, (os.cpu_count() or 1) // workers)
    return dataclasses.replace(
        options, reuse_port=True,
        intra_op_threads=options.intra_op_threads if options.intra_op_threads is not None else share,
        inter_op_threads=options.inter_op_threads if options.inter_op_threads is not None else share)


def reserve_port(host: str, port: int | None) -> tuple[socket.socket | None, int | None]:
    """Bind ``port`` (0: a free one) with SO_REUSEPORT and keep the socket, unlistened: the workers
    bind the same port, and a port someone else holds fails here, with its name."""
    if port is None:
        return None, None
    sock = bind_tcp(host, port, reuse_port=True)
    return sock, sock.getsockname()[1]


def serve(options: ServerOptions, workers: int, stop: threading.Event,
          on_ready: Callable[[ServerOptions], None]) -> None:
    """Run ``workers`` server processes until ``stop`` is set; ``on_ready(options)`` once all serve
    (``options`` then carries the real ports). Raises :class:`WorkerDiedError` if one dies."""
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    grpc_holder, grpc_port = reserve_port(options.host, options.grpc_port)
    rest_holder, rest_port = reserve_port(options.host, options.rest_port)
    metrics_dir = tempfile.mkdtemp(prefix="tfship-metrics-")
    previous_env = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = metrics_dir  # inherited by the spawned workers
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter each: no threads or TF state forked
    opts = dataclasses.replace(worker_options(options, workers), grpc_port=grpc_port, rest_port=rest_port)
    procs: list = []
    try:
        for i in range(workers):
            ready = ctx.Event()
            proc = ctx.Process(target=_worker_main, args=(opts, ready, i), name=f"tfship-serve-worker-{i}")
            proc.start()
            procs.append((proc, ready))
        for proc, ready in procs:
            while not ready.wait(0.2):
                _check_alive(procs)
                if stop.is_set():
                    return
        on_ready(opts)
        while not stop.wait(0.5):
            _check_alive(procs)
    finally:
        _stop_all([p for p, _ in procs], options.grace_seconds)
        for holder in (grpc_holder, rest_holder):
            if holder is not None:
                holder.close()
        if previous_env is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous_env
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _check_alive(procs: list) -> None:
    for proc, _ in procs:
        if proc.exitcode is not None:
            raise WorkerDiedError(f"server worker {proc.name} (pid {proc.pid}) exited with code {proc.exitcode}; "
                                  "its log is above. Stopping the other workers.")


def _stop_all(procs: list, grace: float) -> None:
    """SIGTERM every live worker (each lets its requests in flight finish), then wait; kill stragglers."""
    for proc in procs:
        if proc.exitcode is None:
            proc.terminate()
    for proc in procs:
        proc.join(grace + 10)
        if proc.exitcode is None:
            log.error("server worker %s did not stop within %.0f s; killing it", proc.name, grace + 10)
            proc.kill()
            proc.join()


def _worker_main(options: ServerOptions, ready, index: int) -> None:
    """One worker: a whole ModelServer on the shared ports, until SIGTERM/SIGINT."""
    from tfship.serve.server import ModelServer

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s %(name)s[worker {index}]: "
                                                   "%(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = ModelServer(options)
    try:
        server.start()
        ready.set()
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
