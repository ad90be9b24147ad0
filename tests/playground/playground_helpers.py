"""Start ``tfship playground`` as a subprocess and drive Debian's Chromium through chromedriver.

A module of its own, not conftest: several test folders have a conftest.py, and ``from conftest
import ...`` picks whichever was imported first."""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "test-artifacts" / "playground"
# The playground imports no TensorFlow: it is up in ~1 s; 30 s covers a loaded 2-core machine.
START_TIMEOUT_S = 30.0
# How long the page may take to show an answer: a predict through the proxy takes milliseconds,
# but the shared 2-core machine can stall a process for seconds.
PAGE_TIMEOUT_S = 30.0
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
# The second model the tests serve: an image classifier that is not MNIST (conftest.rgb_base).
RGB_MODEL = "rgb"
RGB_SHAPE = (32, 32, 3)
RGB_CLASSES = 5


@dataclass
class Playground:
    url: str  # http://127.0.0.1:P
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        from live_server import stop_server

        stop_server(self)  # terminate, then kill if it lingers: the same as for tfship serve


def start_playground(server: str, log: Path, *extra: str) -> Playground:
    """``tfship playground --server SERVER --port 0 ...``; returns once it prints its URL."""
    command = [sys.executable, "-m", "tfship.cli", "playground", "--server", server, "--port", "0", *extra]
    with log.open("wb") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err)
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT_S
    line = b""
    while time.monotonic() < deadline and process.poll() is None:
        if selector.select(timeout=0.2):
            line = process.stdout.readline()
            break
    match = re.search(rb"http://[\d.]+:\d+", line)
    if not match:
        process.kill()
        process.wait(timeout=10)
        pytest.fail(f"tfship playground did not start: stdout {line!r}, stderr:\n{log.read_text(errors='replace')}")
    return Playground(match.group(0).decode(), process, log)


def get_json(url: str, data: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=PAGE_TIMEOUT_S) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def browser_or_skip():
    """Headless Chromium under Selenium, or a skip naming what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install 'tfship[dev]')")
    binary = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("Chromium or chromedriver is not installed (Debian: apt-get install chromium chromium-driver; "
                    ".ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--disable-extensions", "--no-first-run",
                     "--force-device-scale-factor=1"):
        options.add_argument(argument)
    # Selenium Manager would look for (and try to download) a driver: the system one is given.
    os.environ.setdefault("SE_OFFLINE", "true")
    return webdriver.Chrome(options=options, service=Service(driver))
