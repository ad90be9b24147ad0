"""``tfship playground``: serve the playground page for a model server speaking TF Serving's REST API.

``tfship playground --server http://localhost:8501 [--port 8080] [--host 127.0.0.1] [--model RUN_DIR]
[--model-name NAME ...]``. Every argument is checked before the web stack is imported; nothing here
imports TensorFlow (the page works against TF Serving's container as well as ``tfship serve``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from urllib.parse import urlsplit

from tfship.errors import UsageError

DEFAULT_PORT = 8080


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, help="the model server's REST API, e.g. http://localhost:8501 "
                        "(tfship serve or TensorFlow Serving)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port of the page (default: {DEFAULT_PORT}; "
                        "0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--model", type=Path, metavar="RUN_DIR", help="the run folder of the served model "
                        "('tfship train --out'): adds a view of its exports manifest and parity report")
    parser.add_argument("--model-name", dest="model_names", action="append", default=[], metavar="NAME",
                        help="a model name to offer in the page (repeatable; TF Serving's REST API cannot list "
                        "its models)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the model server's "
                        "answer (default: 30)")


def parse(args: argparse.Namespace):
    from tfship.playground.app import PlaygroundConfig

    server = args.server.rstrip("/")
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--server '{args.server}' must be the REST API's URL, like http://localhost:8501")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"--server '{args.server}' must be scheme://host:port only: the playground adds "
                         "/v1/models/... itself")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a TCP port (0-65535)")
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    names = tuple(dict.fromkeys(n.strip() for n in args.model_names if n.strip()))
    if any("/" in n or ":" in n for n in names):
        raise UsageError(f"--model-name takes bare model names, got {list(names)}")
    return PlaygroundConfig(server=server, host=args.host, port=args.port, model_names=names,
                            run=args.model, timeout_s=args.timeout)


def run(args: argparse.Namespace) -> int:
    config = parse(args)
    from tfship.errors import require

    require("starlette", "starlette", "playground", "'tfship playground'")
    require("httpx", "httpx", "playground", "'tfship playground'")
    uvicorn = require("uvicorn", "uvicorn", "playground", "'tfship playground'")
    from tfship.playground.app import build_app

    app = build_app(config)  # a bad --model folder fails here, before the port is bound
    sock = _bind(config.host, config.port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    _announce_when_ready(server, config, sock.getsockname()[1])
    server.run(sockets=[sock])
    return 0


def _bind(host: str, port: int):
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"--host '{host}' is not an address of this machine: {e.strerror}") from e
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    sock.listen(128)
    return sock


def _announce_when_ready(server, config, port: int) -> None:
    """Print the page's URL once uvicorn is serving (with --port 0 the port is the one bound)."""
    startup = server.startup

    async def startup_and_announce(*a, **kw):
        await startup(*a, **kw)
        if server.started:
            host = f"[{config.host}]" if ":" in config.host else config.host
            print(f"playground: http://{host}:{port}/ -> model server {config.server}"
                  + (f" (run folder {config.run})" if config.run else ""), flush=True)

    server.startup = startup_and_announce
