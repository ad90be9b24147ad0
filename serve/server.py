"""The local model server: the core, a gRPC server and a REST server, started and stopped together.

``ModelServer(options).start()`` loads the configured models first (as ``tensorflow_model_server``
does), then opens the ports; :meth:`ModelServer.stop` stops accepting, lets requests in flight
finish (up to ``grace_seconds``), then unloads. Port ``0`` in :class:`ServerOptions` means an
ephemeral port (the chosen ones are in :attr:`ModelServer.grpc_port` / ``rest_port``); ``None`` turns
that transport off.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from tfship.errors import UsageError
from tfship.serve.backends.base import BackendOptions
from tfship.serve.config import (BatchingOptions, LoadOptions, ModelConfig, MonitoringOptions, SSLOptions,
                                 read_model_config_file)
from tfship.serve.core import ServingCore
from tfship.serve.errors import ServingError
from tfship.serve.manager import ModelManager
from tfship.serve.metrics import Metrics
from tfship.serve.tensors import limits_for_request_bytes

log = logging.getLogger("tfship.serve")
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024  # ~20k MNIST images as JSON; far above any sane request


@dataclass(frozen=True)
class ServerOptions:
    models: tuple[ModelConfig, ...]
    host: str = "127.0.0.1"
    grpc_port: int | None = 8500
    rest_port: int | None = 8501
    batching: BatchingOptions | None = None
    monitoring: MonitoringOptions = MonitoringOptions()
    poll_seconds: float = 1.0
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_tensor_bytes: int | None = None  # per request tensor; None: 4x max_request_bytes (serve/tensors.py)
    worker_threads: int = 64  # unbatched inference and the rarer RPCs (metadata, classify, ...)
    model_config_file: Path | None = None  # re-read every config_poll_seconds when both are set
    config_poll_seconds: float = 0.0
    # TF Serving's --tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism (None: TF's
    # default, one thread per core). Applied when the server starts; TensorFlow fixes them at first use.
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    backend: BackendOptions = BackendOptions()  # --backend: which runtime computes (serve/backends/)
    reuse_port: bool = False  # SO_REUSEPORT on both ports: several worker processes share them (workers.py)
    grace_seconds: float = 30.0
    grpc_socket_path: str | None = None  # --grpc_socket_path: gRPC on a UNIX socket too
    ssl: SSLOptions | None = None  # --ssl_config_file: TLS (client_verify: mutual TLS) on every gRPC listener
    use_alts: bool = False  # --use_alts_credentials
    grpc_channel_arguments: tuple[tuple[str, int | str], ...] = ()  # --grpc_channel_arguments
    rest_timeout_ms: int = 30000  # --rest_api_timeout_in_ms (<= 0: none)
    cors: bool = False  # --rest_api_enable_cors_support
    load: LoadOptions = LoadOptions()  # tags, load retries, warmup, labels for unavailable versions
    tensor_content: bool = False  # --enable_serialization_as_tensor_content
    method_name_check: bool = False  # --enable_signature_method_name_check


class ModelServer:
    def __init__(self, options: ServerOptions) -> None:
        if not options.models:
            raise UsageError("no model to serve: give --model, --model_base_path or --model_config_file")
        if options.grpc_port is None and options.rest_port is None and options.grpc_socket_path is None:
            raise UsageError("both gRPC and REST are turned off; nothing would answer")
        self.options = options
        self.metrics = Metrics() if options.monitoring.prometheus_enabled else None
        self.manager = ModelManager(list(options.models), options.batching,
                                    self.metrics.observe_batch if self.metrics else None, _refreeze_heap,
                                    options.backend.or_threads(options.intra_op_threads, options.inter_op_threads),
                                    load=options.load)
        self.core = ServingCore(self.manager, self.metrics.observe_request if self.metrics else None,
                                options.worker_threads,
                                limits_for_request_bytes(options.max_request_bytes, options.max_tensor_bytes),
                                options.method_name_check)
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self._grpc = None
        self._health = None
        self._grpc_loop: asyncio.AbstractEventLoop | None = None
        self._grpc_thread: threading.Thread | None = None
        self._uvicorn = None
        self._rest_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._config_watcher: threading.Thread | None = None

    def start(self) -> None:
        _set_tensorflow_threads(self.options.intra_op_threads, self.options.inter_op_threads)
        self.manager.reconcile()  # ends with _refreeze_heap() when it loaded something
        try:
            self.manager.check_labels()
        except ServingError as e:  # TF Serving does not start either
            self.manager.stop()
            raise UsageError(f"cannot serve the model config: {e.message}") from e
        self.manager.start_polling(self.options.poll_seconds)
        if self.options.model_config_file is not None and self.options.config_poll_seconds > 0:
            self._config_watcher = threading.Thread(target=self._watch_config, name="config-poller", daemon=True)
            self._config_watcher.start()
        if self.options.grpc_port is not None or self.options.grpc_socket_path is not None:
            self._start_grpc()
        if self.options.rest_port is not None:
            self._start_rest()

    def _watch_config(self) -> None:
        """``--model_config_file_poll_wait_seconds``: when the file's text changes, serve what it lists. A
        file that does not parse, or models that do not load, are logged; what was serving keeps serving."""
        path = self.options.model_config_file
        last = _read_or_none(path)
        while not self._stopped.wait(self.options.config_poll_seconds):
            text = _read_or_none(path)
            if text is None or text == last:
                continue
            last = text
            try:
                models = read_model_config_file(path)
                self.core.reload_config(models)
            except (UsageError, ServingError) as e:
                log.error("model config file %s changed but was not applied: %s", path, e)
            else:
                log.info("model config file %s changed: now serving %s", path, ", ".join(m.name for m in models))

    def _start_grpc(self) -> None:
        """A ``grpc.aio`` server on an event loop of its own thread: no thread per request in flight."""
        self._grpc_loop = asyncio.new_event_loop()
        self._grpc_thread = threading.Thread(target=self._grpc_loop.run_forever, name="grpc", daemon=True)
        self._grpc_thread.start()
        addresses = []
        if self.options.grpc_port is not None:
            addresses.append(f"{_bracket(self.options.host)}:{self.options.grpc_port}")
        if self.options.grpc_socket_path is not None:
            addresses.append(f"unix:{self.options.grpc_socket_path}")
        try:
            self._grpc, self._health, ports = asyncio.run_coroutine_threadsafe(
                self._serve_grpc(addresses), self._grpc_loop).result()
        except RuntimeError as e:
            self._grpc_loop.call_soon_threadsafe(self._grpc_loop.stop)
            raise UsageError(f"cannot listen for gRPC on {' and '.join(addresses)}: {e}") from e
        if self.options.grpc_port is not None:
            self.grpc_port = ports[0]

    def _credentials(self):
        """gRPC server credentials as TF Serving builds them (server.cc, BuildServerCredentials); None: insecure."""
        import grpc

        ssl = self.options.ssl
        if ssl is not None:
            return grpc.ssl_server_credentials([(ssl.server_key.encode(), ssl.server_cert.encode())],
                                               root_certificates=ssl.custom_ca.encode() or None,
                                               require_client_auth=ssl.client_verify)
        if self.options.use_alts:
            return grpc.alts_server_credentials()
        return None

    async def _serve_grpc(self, addresses: list[str]):
        import grpc
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        from tfship.serve.grpc_service import add_services

        limit = self.options.max_request_bytes
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit),
                                          ("grpc.max_send_message_length", limit),
                                          ("grpc.so_reuseport", int(self.options.reuse_port)),
                                          *self.options.grpc_channel_arguments])
        add_services(server, self.core, self.options.tensor_content)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        credentials = self._credentials()
        ports = [server.add_insecure_port(a) if credentials is None else server.add_secure_port(a, credentials)
                 for a in addresses]
        await server.start()
        for service in ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"):
            await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        return server, health_servicer, ports

    async def _stop_grpc(self, grace: float) -> None:
        await self._health.enter_graceful_shutdown()
        await self._grpc.stop(grace)

    def _start_rest(self) -> None:
        import uvicorn

        from tfship.serve.rest import build_app

        sock = _listen(self.options.host, self.options.rest_port, self.options.reuse_port)
        self.rest_port = sock.getsockname()[1]
        mon = self.options.monitoring
        app = build_app(self.core, self.options.max_request_bytes, self.metrics,
                        mon.prometheus_path if mon.prometheus_enabled else None, self.options.rest_timeout_ms,
                        self.options.cors)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=int(self.options.grace_seconds))
        self._uvicorn = uvicorn.Server(config)
        # Off the main thread uvicorn installs no signal handlers; the CLI owns SIGTERM.
        self._rest_thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [sock]},
                                             name="rest", daemon=True)
        self._rest_thread.start()
        while not self._uvicorn.started:
            if not self._rest_thread.is_alive():
                raise UsageError(f"the REST server on port {self.rest_port} failed to start (see the log)")
            self._stopped.wait(0.01)

    def stop(self) -> None:
        """Stop accepting requests, let those in flight finish, then unload every model."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._config_watcher is not None:
            self._config_watcher.join()
        grace = self.options.grace_seconds
        grpc_done = None
        if self._grpc is not None:  # both transports drain at the same time
            grpc_done = asyncio.run_coroutine_threadsafe(self._stop_grpc(grace), self._grpc_loop)
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
            self._rest_thread.join(grace + 5)
        if grpc_done is not None:
            grpc_done.result(grace + 5)
            self._grpc_loop.call_soon_threadsafe(self._grpc_loop.stop)
            self._grpc_thread.join(5)
        self.core.close()
        self.manager.stop()


def _refreeze_heap() -> None:
    """Take everything alive now out of the cyclic GC's reach (``gc.freeze``). TensorFlow and a loaded
    model are ~330k tracked objects; a full collection walks them all in ~100 ms with every thread
    stopped, which was REST's p99 at concurrency 32 (docs/SERVING.md). Run after each load or unload,
    after a collection, so an unloaded model's reference cycles are still freed."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as e:
        log.error("cannot read model config file %s: %s", path, e.strerror)
        return None


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _set_tensorflow_threads(intra: int | None, inter: int | None) -> None:
    if intra is None and inter is None:
        return
    import tensorflow as tf

    try:
        if intra is not None:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter is not None:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as e:  # TensorFlow already ran something in this process
        raise UsageError(f"cannot set TensorFlow's thread counts in this process: {e}") from e


def bind_tcp(host: str, port: int, reuse_port: bool = False, what: str = "") -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: a free port), not yet listening; a port in use is a
    :class:`UsageError` naming it. ``reuse_port``: SO_REUSEPORT, so other workers can bind it too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio turns Nagle off (TCP_NODELAY) only on accepted sockets whose
    # proto says TCP, and a socket made with proto 0 left every REST reply ~40 ms late (Nagle meeting
    # delayed ACKs, since uvicorn writes headers and body separately).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen{what} on {host}:{port}: {e.strerror}") from e
    return sock


def _listen(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    sock = bind_tcp(host, port, reuse_port, " for REST")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock
