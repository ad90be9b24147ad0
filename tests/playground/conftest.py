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

from live_server import MODEL_NAME, free_port, start_server, stop_server, wait_until_available  # noqa: E402
from playground_helpers import (ARTIFACTS, RGB_CLASSES, RGB_MODEL, RGB_SHAPE, browser_or_skip,  # noqa: E402
                                start_playground)


@pytest.fixture(scope="session")
def rgb_base(tmp_path_factory) -> Path:
    """An untrained 32x32 RGB, 5-class Keras model as Keras 3 exports it (``serving_default``,
    input named after the keras.Input): the shape of most users' image SavedModels. Seeded."""
    import keras

    keras.utils.set_random_seed(5)
    pixels = keras.Input(RGB_SHAPE, name="pixels")
    x = keras.layers.Conv2D(4, 3, activation="relu")(pixels)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(pixels, keras.layers.Dense(RGB_CLASSES, activation="softmax")(x))
    base = tmp_path_factory.mktemp("rgb") / "base"
    model.export(str(base / "1"), verbose=False)
    return base


@pytest.fixture(scope="session")
def model_server(cnn_run, rgb_base, tmp_path_factory):
    """One ``tfship serve`` on free loopback ports with two models: ``mnist`` (the session's trained
    CNN) and ``rgb`` (:func:`rgb_base`), from a model config file as TF Serving takes it."""
    folder = tmp_path_factory.mktemp("serve-playground")
    config = folder / "models.config"
    config.write_text("model_config_list {\n"
                      f'  config {{ name: "{MODEL_NAME}" base_path: "{cnn_run / "saved_model"}" model_platform: "tensorflow" }}\n'
                      f'  config {{ name: "{RGB_MODEL}" base_path: "{rgb_base}" model_platform: "tensorflow" }}\n'
                      "}\n", encoding="utf-8")
    proc = start_server(None, folder / "serve.log", config_file=config)
    wait_until_available(proc, models=(MODEL_NAME, RGB_MODEL))
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
def playground_without_server(tmp_path_factory):
    """The playground pointed at a port where nothing listens: what it sees of a stopped server.
    Yields (playground, that server's URL)."""
    server = f"http://127.0.0.1:{free_port()}"
    pg = start_playground(server, tmp_path_factory.mktemp("playground-down") / "playground.log")
    yield pg, server
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
