"""``tfship serve``: serve SavedModels behind TF Serving's REST and gRPC APIs, or write the container's configs.

Takes ``tensorflow_model_server``'s flags (same names, same config files), plus ``--model`` (a run
or base folder), ``--host`` (127.0.0.1 unless told otherwise) and ``--write-config DIR``. Every
argument is checked before TensorFlow is imported. SIGTERM or Ctrl-C stops accepting requests,
lets those in flight finish, and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from tfship import contract
from tfship.errors import UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("what to serve")
    src.add_argument("--model", type=Path, help="a run folder (from 'tfship train') or a SavedModel base folder; "
                     "shorthand for --model_base_path")
    src.add_argument("--model_name", default=None, help=f"model name in URLs and requests (default: "
                     f"{contract.DEFAULT_MODEL_NAME})")
    src.add_argument("--model_base_path", type=Path, help="folder holding <version>/saved_model.pb")
    src.add_argument("--model_config_file", type=Path, help="text ModelServerConfig: several models, version "
                     "policies, labels (excludes --model/--model_base_path)")
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1; the container "
                     "uses 0.0.0.0)")
    net.add_argument("--port", type=int, default=8500, help="gRPC port (default: 8500; 0: any free port)")
    net.add_argument("--rest_api_port", type=int, default=8501, help="REST port (default: 8501; 0: REST off, "
                     "as in tensorflow_model_server)")
    net.add_argument("--max_request_bytes", type=int, default=None, help="largest request body accepted "
                     "(default: 64 MiB)")
    run = parser.add_argument_group("serving")
    run.add_argument("--enable_batching", action="store_true", help="batch concurrent requests on the server")
    run.add_argument("--batching_parameters_file", type=Path, help="text BatchingParameters (implies "
                     "--enable_batching)")
    run.add_argument("--monitoring_config_file", type=Path, help="text MonitoringConfig; enables Prometheus "
                     "metrics at its path")
    run.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0, help="how often to look for "
                     "new model versions (default: 1; 0: never)")
    run.add_argument("--workers", type=int, default=1, help="server processes sharing the ports (SO_REUSEPORT), "
                     "each with its own GIL; connections are spread over them (default: 1)")
    run.add_argument("--tensorflow_intra_op_parallelism", type=int, default=None, help="threads one TensorFlow "
                     "op may use (default: one per core; with --workers N, cores/N)")
    run.add_argument("--tensorflow_inter_op_parallelism", type=int, default=None, help="TensorFlow ops run at "
                     "once (default: one per core; with --workers N, cores/N)")
    run.add_argument("--backend", default="savedmodel", help="what computes: savedmodel (TensorFlow, every "
                     "signature), or onnx / tflite: the verified artifact export-all made from each version, "
                     "serving its predict signature (default: savedmodel; docs/SERVING.md)")
    run.add_argument("--backend_precision", default="fp32", help="with --backend onnx/tflite: which artifact "
                     "of the exports manifest (fp32, fp16, int8-dynamic, int8; default: fp32)")
    run.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0.0, help="how often to "
                     "re-read --model_config_file and serve what it lists (default: 0, never)")
    parser.add_argument("--write-config", dest="write_config", type=Path, metavar="DIR",
                        help="write the tensorflow/serving container's config files for --model into DIR and exit")


@dataclass(frozen=True)
class ServeArgs:
    model_path: Path | None
    model_name: str
    model_config_file: Path | None
    host: str
    grpc_port: int
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


def parse(args: argparse.Namespace) -> ServeArgs:
    if args.model is not None and args.model_base_path is not None:
        raise UsageError("give --model or --model_base_path, not both (--model is shorthand for --model_base_path)")
    model_path = args.model if args.model is not None else args.model_base_path
    if args.model_config_file is not None and model_path is not None:
        raise UsageError("--model_config_file names the models itself; drop --model/--model_base_path")
    if args.model_config_file is None and model_path is None:
        raise UsageError("nothing to serve: give --model RUN_OR_BASE_FOLDER or --model_config_file FILE")
    if args.write_config is not None and model_path is None:
        raise UsageError("--write-config needs --model (the model the container will serve)")
    for flag, port in (("--port", args.port), ("--rest_api_port", args.rest_api_port)):
        if not 0 <= port <= 65535:
            raise UsageError(f"{flag} {port} is not a TCP port (0-65535)")
    if args.file_system_poll_wait_seconds < 0:
        raise UsageError("--file_system_poll_wait_seconds must be >= 0")
    if args.model_config_file_poll_wait_seconds < 0:
        raise UsageError("--model_config_file_poll_wait_seconds must be >= 0")
    if args.model_config_file_poll_wait_seconds > 0 and args.model_config_file is None:
        raise UsageError("--model_config_file_poll_wait_seconds needs --model_config_file")
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {args.workers}")
    for flag, n in (("--tensorflow_intra_op_parallelism", args.tensorflow_intra_op_parallelism),
                    ("--tensorflow_inter_op_parallelism", args.tensorflow_inter_op_parallelism)):
        if n is not None and n < 1:
            raise UsageError(f"{flag} must be at least 1, not {n}")
    from tfship.serve.backends import check_backend

    check_backend(args.backend)
    if args.backend == "savedmodel" and args.backend_precision != "fp32":
        raise UsageError("--backend_precision chooses an exported artifact: use it with --backend onnx or tflite")
    from tfship.export.tolerances import TOLERANCES

    precisions = sorted({p for f, p in TOLERANCES if f == args.backend})
    if args.backend != "savedmodel" and args.backend_precision not in precisions:
        raise UsageError(f"--backend_precision {args.backend_precision}: {args.backend} artifacts come in "
                         f"{', '.join(precisions)}")
    if args.max_request_bytes is not None and args.max_request_bytes < 1024:
        raise UsageError("--max_request_bytes must be at least 1024")
    for flag, path in (("--model_config_file", args.model_config_file),
                       ("--batching_parameters_file", args.batching_parameters_file),
                       ("--monitoring_config_file", args.monitoring_config_file)):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} '{path}' is not a file")
    return ServeArgs(model_path, args.model_name or contract.DEFAULT_MODEL_NAME, args.model_config_file, args.host,
                     args.port, args.rest_api_port, args.max_request_bytes,
                     args.enable_batching or args.batching_parameters_file is not None, args.batching_parameters_file,
                     args.monitoring_config_file, args.file_system_poll_wait_seconds, args.write_config,
                     args.model_config_file_poll_wait_seconds, args.workers, args.tensorflow_intra_op_parallelism,
                     args.tensorflow_inter_op_parallelism, args.backend, args.backend_precision)


def options(a: ServeArgs):
    """The server options for parsed arguments (reads the config files; no TensorFlow)."""
    from tfship.savedmodel import resolve_model
    from tfship.serve import config
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
    return ServerOptions(tuple(models), a.host, a.grpc_port, a.rest_port or None, batching, monitoring,
                         a.poll_seconds, a.max_request_bytes or DEFAULT_MAX_REQUEST_BYTES,
                         model_config_file=a.model_config_file, config_poll_seconds=a.config_poll_seconds,
                         intra_op_threads=a.intra_op_threads, inter_op_threads=a.inter_op_threads,
                         backend=BackendOptions(a.backend, a.backend_precision))


def run(args: argparse.Namespace) -> int:
    a = parse(args)
    if a.write_config is not None:
        from tfship.serve.config import write_container_config

        written = write_container_config(a.model_path, a.write_config, a.model_name)
        for path in (written.model_config, written.batching, written.monitoring):
            print(path)
        return 0
    opts = options(a)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    if a.workers > 1:
        from tfship.serve import workers

        workers.serve(opts, a.workers, stop, lambda o: _print_listening(o.host, o.grpc_port, o.rest_port,
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
        _print_listening(a.host, server.grpc_port, server.rest_port)
        while not stop.wait(0.5):
            pass
        print("serve: stopping (in-flight requests finish first)", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return 0


def _print_listening(host: str, grpc_port: int | None, rest_port: int | None, note: str = "") -> None:
    where = []
    if grpc_port is not None:
        where.append(f"gRPC {host}:{grpc_port}")
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
