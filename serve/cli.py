"""``tfship serve``: serve SavedModels behind TF Serving's REST and gRPC APIs, or write the container's configs.

Takes ``tensorflow_model_server``'s flags (same names, same config files), plus ``--model`` (a run
or base folder), ``--host`` (127.0.0.1 unless told otherwise) and ``--write-config DIR``. Every
argument is checked before TensorFlow is imported. SIGTERM or Ctrl-C stops accepting requests,
lets those in flight finish, and exits 0.
"""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from tfship.errors import UsageError
from tfship.serve import config, flags
from tfship.serve.config import LoadOptions

log = logging.getLogger("tfship.serve")


def configure(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("tfship's own flags")
    src.add_argument("--model", type=Path, help="a run folder (from 'tfship train') or a SavedModel base folder; "
                     "shorthand for --model_base_path")
    src.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1; the container "
                     "uses 0.0.0.0)")
    src.add_argument("--max_request_bytes", type=int, default=None, help="largest request body accepted "
                     "(default: 64 MiB)")
    src.add_argument("--max_tensor_bytes", type=int, default=None, help="largest tensor a request may declare, "
                     "checked before it is built (default: 4x --max_request_bytes)")
    src.add_argument("--workers", type=int, default=1, help="server processes sharing the ports (SO_REUSEPORT), "
                     "each with its own GIL; connections are spread over them (default: 1)")
    src.add_argument("--backend", default=None, help="what computes: savedmodel (TensorFlow, every "
                     "signature), or onnx / tflite: the verified artifact export-all made from each version, "
                     "serving its predict signature (default: savedmodel; --prefer_tflite_model: tflite; "
                     "docs/SERVING.md)")
    src.add_argument("--backend_precision", default="fp32", help="with --backend onnx/tflite: which artifact "
                     "of the exports manifest (fp32, fp16, int8-dynamic, int8; default: fp32)")
    src.add_argument("--write-config", dest="write_config", type=Path, metavar="DIR",
                     help="write the tensorflow/serving container's config files and the Kubernetes manifests "
                     "for --model into DIR and exit")
    flags.add_to(parser)


@dataclass(frozen=True)
class ServeArgs:
    model_path: Path | None
    model_name: str
    model_config_file: Path | None
    host: str
    grpc_port: int | None  # None: no TCP gRPC (--port 0 with --grpc_socket_path)
    rest_port: int
    max_request_bytes: int | None
    batching: bool
    batching_file: Path | None
    monitoring_file: Path | None
    poll_seconds: float
    write_config: Path | None
    config_poll_seconds: float = 0.0
    workers: int = 1
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    backend: str = "savedmodel"
    backend_precision: str = "fp32"
    grpc_socket_path: str | None = None
    ssl_file: Path | None = None
    use_alts: bool = False
    channel_arguments: tuple = ()
    rest_timeout_ms: int = 30000
    cors: bool = False
    worker_threads: int | None = None
    session_config_file: Path | None = None
    load: LoadOptions = LoadOptions()
    prefer_tflite: bool = False
    method_name_check: bool = False
    tensor_content: bool = False
    ignored: tuple[str, ...] = ()  # one log line per ignored flag that was given
    max_tensor_bytes: int | None = None


def parse(args: argparse.Namespace) -> ServeArgs:
    """Check every argument (no TensorFlow, no file contents yet) and gather them."""
    v = functools.partial(flags.value, args)
    base_path = v("model_base_path")
    if args.model is not None and base_path is not None:
        raise UsageError("give --model or --model_base_path, not both (--model is shorthand for --model_base_path)")
    model_path = args.model if args.model is not None else base_path
    config_file = v("model_config_file")
    if config_file is not None and model_path is not None:
        raise UsageError("--model_config_file names the models itself; drop --model/--model_base_path")
    if config_file is None and model_path is None:
        raise UsageError("nothing to serve: give --model RUN_OR_BASE_FOLDER or --model_config_file FILE")
    if args.write_config is not None and model_path is None:
        raise UsageError("--write-config needs --model (the model the container will serve)")
    port, rest_port, socket_path = v("port"), v("rest_api_port"), v("grpc_socket_path") or None
    for flag, number in (("--port", port), ("--rest_api_port", rest_port)):
        if not 0 <= number <= 65535:
            raise UsageError(f"{flag} {number} is not a TCP port (0-65535)")
    if rest_port and rest_port == port:
        raise UsageError(f"--rest_api_port cannot be the same as --port ({port}); give REST a port of its own")
    if socket_path is not None and args.workers > 1:
        raise UsageError("--grpc_socket_path serves one process: drop --workers")
    poll, config_poll = v("file_system_poll_wait_seconds"), v("model_config_file_poll_wait_seconds")
    if poll < 0:
        raise UsageError("--file_system_poll_wait_seconds must be >= 0")
    if config_poll < 0:
        raise UsageError("--model_config_file_poll_wait_seconds must be >= 0")
    if config_poll > 0 and config_file is None:
        raise UsageError("--model_config_file_poll_wait_seconds needs --model_config_file")
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {args.workers}")
    intra, inter, both = (v("tensorflow_intra_op_parallelism"), v("tensorflow_inter_op_parallelism"),
                          v("tensorflow_session_parallelism"))
    for flag, n in (("--tensorflow_intra_op_parallelism", intra), ("--tensorflow_inter_op_parallelism", inter),
                    ("--tensorflow_session_parallelism", both)):
        if n < 0:
            raise UsageError(f"{flag} must be 0 (auto) or more, not {n}")
    if intra > 0 and inter > 0 and both > 0:  # TF Serving's own check (server.cc)
        raise UsageError("configure either --tensorflow_session_parallelism or --tensorflow_intra_op_parallelism "
                         "and --tensorflow_inter_op_parallelism, not all three")
    if not (intra or inter):
        intra = inter = both
    backend = args.backend or ("tflite" if v("prefer_tflite_model") else "savedmodel")
    if v("prefer_tflite_model") and args.backend is not None:
        raise UsageError(f"--prefer_tflite_model chooses the backend itself (tflite, else savedmodel); drop "
                         f"--backend {backend}")
    from tfship.serve.backends import check_backend

    check_backend(backend)
    if backend == "savedmodel" and args.backend_precision != "fp32":
        raise UsageError("--backend_precision chooses an exported artifact: use it with --backend onnx or tflite")
    from tfship.export.tolerances import TOLERANCES

    precisions = sorted({p for f, p in TOLERANCES if f == backend})
    if backend != "savedmodel" and args.backend_precision not in precisions:
        raise UsageError(f"--backend_precision {args.backend_precision}: {backend} artifacts come in "
                         f"{', '.join(precisions)}")
    if args.max_request_bytes is not None and args.max_request_bytes < 1024:
        raise UsageError("--max_request_bytes must be at least 1024")
    if args.max_tensor_bytes is not None and args.max_tensor_bytes < 1024:
        raise UsageError("--max_tensor_bytes must be at least 1024")
    ssl_file = v("ssl_config_file")
    if v("use_alts_credentials") and ssl_file is not None:
        raise UsageError("either --use_alts_credentials or --ssl_config_file, not both (as in TF Serving)")
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file", "ssl_config_file",
                 "tensorflow_session_config_file"):
        path = v(flag)
        if path is not None and not path.is_file():
            raise UsageError(f"--{flag} '{path}' is not a file")
    for flag in ("rest_api_num_threads", "grpc_max_threads", "num_load_threads", "num_unload_threads",
                 "max_num_load_retries", "num_request_iterations_for_warmup"):
        if v(flag) is not None and v(flag) < 0:
            raise UsageError(f"--{flag} must be >= 0, not {v(flag)}")
    tags = tuple(t.strip() for t in v("saved_model_tags").split(",") if t.strip())
    if not tags:
        raise UsageError("--saved_model_tags needs at least one tag (TF Serving's default: serve)")
    threads = [n for n in (v("rest_api_num_threads"), v("grpc_max_threads")) if n]
    retry_micros = v("load_retry_interval_micros")
    load = LoadOptions(tags, v("max_num_load_retries"), max(retry_micros, 0) / 1e6, v("enable_model_warmup"),
                       max(v("num_request_iterations_for_warmup"), 1),
                       v("allow_version_labels_for_unavailable_models"))
    batching_file = v("batching_parameters_file")
    ignored = flags.ignored_lines(args)
    for flag in ("num_load_threads", "num_unload_threads"):
        if getattr(args, flag):
            ignored.append(f"--{flag}={getattr(args, flag)} is accepted; versions load and unload one after another "
                           "here (each load is TensorFlow's own multi-threaded work)")
    return ServeArgs(model_path, v("model_name"), config_file, args.host,
                     None if port == 0 and socket_path else port, rest_port, args.max_request_bytes,
                     v("enable_batching") or batching_file is not None, batching_file, v("monitoring_config_file"),
                     poll, args.write_config, config_poll, args.workers, intra or None, inter or None,
                     backend, args.backend_precision,
                     socket_path, ssl_file, v("use_alts_credentials"),
                     config.parse_channel_arguments(v("grpc_channel_arguments")), v("rest_api_timeout_in_ms"),
                     v("rest_api_enable_cors_support"), max(threads) if threads else None,
                     v("tensorflow_session_config_file"), load, v("prefer_tflite_model"),
                     v("enable_signature_method_name_check"), v("enable_serialization_as_tensor_content"),
                     tuple(ignored), args.max_tensor_bytes)


def options(a: ServeArgs):
    """The server options for parsed arguments (reads the config files)."""
    from tfship.savedmodel import resolve_model
    from tfship.serve.backends.base import BackendOptions
    from tfship.serve.server import DEFAULT_MAX_REQUEST_BYTES, ServerOptions

    if a.model_config_file is not None:
        models = config.read_model_config_file(a.model_config_file)
    else:
        base = resolve_model(a.model_path).base
        models = [config.ModelConfig(a.model_name, base)]
    batching = None
    if a.batching:
        batching = config.read_batching_file(a.batching_file) if a.batching_file else config.BatchingOptions()
    monitoring = config.read_monitoring_file(a.monitoring_file) if a.monitoring_file else config.MonitoringOptions()
    intra, inter = a.intra_op_threads, a.inter_op_threads
    if a.session_config_file is not None:
        file_intra, file_inter, others = config.read_session_config_threads(a.session_config_file)
        intra, inter = intra or file_intra or None, inter or file_inter or None
        if others:
            log.warning("--tensorflow_session_config_file %s: only the thread counts are applied; ignored: %s",
                        a.session_config_file, ", ".join(others))
    ssl = config.read_ssl_file(a.ssl_file) if a.ssl_file is not None else None
    return ServerOptions(tuple(models), a.host, a.grpc_port, a.rest_port or None, batching, monitoring,
                         a.poll_seconds, a.max_request_bytes or DEFAULT_MAX_REQUEST_BYTES,
                         max_tensor_bytes=a.max_tensor_bytes,
                         worker_threads=a.worker_threads or flags.default_threads(),
                         model_config_file=a.model_config_file, config_poll_seconds=a.config_poll_seconds,
                         intra_op_threads=intra, inter_op_threads=inter, grpc_socket_path=a.grpc_socket_path,
                         ssl=ssl, use_alts=a.use_alts, grpc_channel_arguments=a.channel_arguments,
                         rest_timeout_ms=a.rest_timeout_ms, cors=a.cors, load=a.load,
                         tensor_content=a.tensor_content, method_name_check=a.method_name_check,
                         backend=BackendOptions(a.backend, a.backend_precision, tags=a.load.saved_model_tags,
                                                fallback="savedmodel" if a.prefer_tflite else None))


def run(args: argparse.Namespace) -> int:
    if args.version:
        print(flags.version_text(), end="")
        return 0
    a = parse(args)
    if a.write_config is not None:
        from tfship.serve.config import write_container_config

        from tfship.serve import k8s

        written = write_container_config(a.model_path, a.write_config, a.model_name)
        for path in (written.model_config, written.batching, written.monitoring,
                     *k8s.write(a.write_config, a.model_name)):
            print(path)
        return 0
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for line in a.ignored:
        log.warning(line)
    opts = options(a)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    if a.workers > 1:
        from tfship.serve import workers

        workers.serve(opts, a.workers, stop, lambda o: _print_listening(o, o.grpc_port, o.rest_port,
                                                                       f" ({a.workers} worker processes)"))
        print("serve: stopped", file=sys.stderr, flush=True)
        return 0

    from tfship.serve.server import ModelServer

    server = ModelServer(opts)
    try:
        server.start()
        for m in opts.models:
            states = server.manager.status(m.name) if _has_versions(server, m.name) else []
            loaded = sorted(s.version for s in states if s.state == "AVAILABLE")
            print(f"serve: model '{m.name}' from {m.base_path}: versions {loaded or 'none yet'} available",
                  file=sys.stderr)
        _print_listening(opts, server.grpc_port, server.rest_port)
        while not stop.wait(0.5):
            pass
        print("serve: stopping (in-flight requests finish first)", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return 0


def _print_listening(opts, grpc_port: int | None, rest_port: int | None, note: str = "") -> None:
    host, secure = opts.host, " (TLS)" if opts.ssl is not None else ""
    where = []
    if grpc_port is not None:
        where.append(f"gRPC {host}:{grpc_port}{secure}")
    if opts.grpc_socket_path is not None:
        where.append(f"gRPC unix:{opts.grpc_socket_path}{secure}")
    if rest_port is not None:
        where.append(f"REST http://{host}:{rest_port}")
    print(f"serve: listening: {', '.join(where)}{note}", file=sys.stderr, flush=True)


def _has_versions(server, name: str) -> bool:
    from tfship.serve.errors import NotFoundError

    try:
        server.manager.status(name)
        return True
    except NotFoundError:
        return False
