"""Fixtures for the browser playground: a live ``tfship serve``, the playground, headless Chromium."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The live-server helpers of tests/clients and the shared preprocessing cases of tests/ios.
_TESTS = Path(__file__).resolve().parents[1]
for folder in ("clients", "ios"):
    if str(_TESTS / folder) not in sys.path:
        sys.path.append(str(_TESTS / folder))

from live_server import MODEL_NAME, start_server, stop_server, wait_until_available  # noqa: E402
from playground_helpers import ARTIFACTS, browser_or_skip, start_playground  # noqa: E402


@pytest.fixture(scope="session")
def model_server(cnn_run, tmp_path_factory):
    """``tfship serve`` on free loopback ports, model ``mnist`` = the session's trained CNN."""
    proc = start_server(cnn_run, tmp_path_factory.mktemp("serve-playground") / "serve.log")
    wait_until_available(proc)
    yield proc
    stop_server(proc)


@pytest.fixture(scope="session")
def playground(model_server, cnn_run, tmp_path_factory):
    """``tfship playground`` in front of the live server, knowing the run folder."""
    pg = start_playground(model_server.rest, tmp_path_factory.mktemp("playground") / "playground.log",
                          "--model-name", MODEL_NAME, "--model", str(cnn_run))
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def browser():
    driver = browser_or_skip()
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (build/ is ignored by git; CI keeps the folder as the tests' artifacts)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
