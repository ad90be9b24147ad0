"""Start and stop a real ``tfship serve`` subprocess on loopback ports (used by conftest and tests).

A module of its own, not conftest: several test folders have a conftest.py, and ``from conftest
import ...`` picks whichever was imported first."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

MODEL_NAME = "mnist"
# A cold TensorFlow import plus loading the SavedModel takes ~10-20 s on the shared 2-core machine.
READY_TIMEOUT_S = 180.0


@dataclass
class ServerProcess:
    grpc: str  # grpc://127.0.0.1:P
    rest: str  # http://127.0.0.1:Q
    model_dir: Path
    process: subprocess.Popen
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path | None, log: Path, grpc_port: int | None = None,
                 rest_port: int | None = None, *, config_file: Path | None = None,
                 model_name: str = MODEL_NAME) -> ServerProcess:
    """``tfship serve`` of ``model_dir`` as ``model_name``, or of the models a config file lists."""
    grpc_port = grpc_port or free_port()
    rest_port = rest_port or free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    models = (["--model_config_file", str(config_file)] if config_file is not None
              else ["--model", str(model_dir), "--model_name", model_name])
    command = [sys.executable, "-m", "tfship.cli", "serve", *models,
               "--port", str(grpc_port), "--rest_api_port", str(rest_port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    return ServerProcess(f"grpc://127.0.0.1:{grpc_port}", f"http://127.0.0.1:{rest_port}", model_dir, process, log)


def wait_until_available(server: ServerProcess, timeout: float = READY_TIMEOUT_S,
                         models: tuple[str, ...] = (MODEL_NAME,)) -> None:
    deadline = time.monotonic() + timeout
    pending = list(models)
    while pending and time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"tfship serve exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.rest}/v1/models/{pending[0]}", timeout=2) as answer:
                states = [v.get("state") for v in json.load(answer).get("model_version_status", [])]
                if "AVAILABLE" in states:
                    pending.pop(0)
                    continue
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
        time.sleep(0.3)
    if pending:
        stop_server(server)
        pytest.fail(f"tfship serve: {pending[0]} not AVAILABLE at {server.rest} within {timeout:.0f} s:\n"
                    f"{server.log_tail()}")


def stop_server(server: ServerProcess) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)
