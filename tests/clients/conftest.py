"""A real ``tfship serve`` subprocess on loopback ports, serving the session's trained CNN."""

from __future__ import annotations

import pytest

from live_server import ServerProcess, start_server, stop_server, wait_until_available


@pytest.fixture(scope="session")
def server(cnn_run, tmp_path_factory) -> ServerProcess:
    """``tfship serve`` on free loopback ports, model ``mnist`` = the session's trained CNN."""
    proc = start_server(cnn_run, tmp_path_factory.mktemp("serve") / "serve.log")
    wait_until_available(proc)
    yield proc
    stop_server(proc)
