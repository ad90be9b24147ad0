"""The app's Swift package (ios_demo/MNISTDemoCore), compiled and tested with the real toolchain.

Each test here runs one group of Swift XCTest classes with ``swift test`` and hands them what they
check against, through the environment: the preprocessing cases computed now by clients/images.py,
the spec of a model exported by tfship's real exporters, and a live ``tfship serve`` plus the Python
REST client's answers for the shared digit images. A machine without Swift skips these tests.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import preprocessing_cases
import swift_package
from tfship import contract

REPO = Path(__file__).resolve().parents[2]
SHARED_DIGITS = sorted((REPO / "examples" / "digits").glob("*.png"))


@pytest.fixture(scope="session")
def swift() -> swift_package.SwiftPackage:
    found = swift_package.find_swift()
    if found is None:
        pytest.skip(f"no Swift toolchain: 'swift' is not on PATH nor at {swift_package.SWIFT_FALLBACK} "
                    "(the Swift package's tests need it; everything else in tests/ios runs without)")
    package = swift_package.SwiftPackage(found)
    try:
        package.build()
    except RuntimeError as e:
        problem = str(e)  # failed outside the except block: the compiler's words, no chained traceback
    else:
        return package
    pytest.fail(problem, pytrace=False)


def _run(swift, suites: list[str], **env: str) -> None:
    run = swift.test(suites, env)
    print(run.output)  # pytest shows it with a failure, or always with -s / -rA
    swift_package.assert_swift_tests_pass(run, suites)


def test_pure_swift_units(swift):
    """Prediction ranking, the predict API's JSON, URL handling and the stroke rasterizer."""
    _run(swift, ["PredictionTests", "PredictAPITests", "StrokeRasterizerTests"])


def test_swift_preprocessing_equals_the_python_clients(swift, tmp_path):
    cases = tmp_path / "preprocessing_cases.json"
    cases.write_text(json.dumps(preprocessing_cases.compute_cases()), encoding="utf-8")
    _run(swift, ["PreprocessingParityTests"], TFSHIP_PREPROCESSING_CASES=str(cases))


@pytest.fixture(scope="module")
def model_spec(exported_mlmodel, softmax_run, tmp_path_factory) -> Path:
    """What the exported model has, for ModelContractTests.swift: the CoreML classifier's contract
    read with coremltools, and the SavedModel's signatures and labels."""
    from tfship.export.ios_install import PIXEL_SCALE_REL_TOL, read_mlmodel_contract
    from tfship.export.source import read_labels, signatures_of
    from tfship.savedmodel import resolve_model

    saved_model = resolve_model(softmax_run).path
    signatures = {
        name: {kind: [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in tensors]
               for kind, tensors in zip(("inputs", "outputs"), io)}
        for name, io in signatures_of(saved_model).items()
    }
    scores = signatures[contract.PREDICT_SIGNATURE]["outputs"][0]["shape"][-1]
    spec = {
        "coreml": {**dataclasses.asdict(read_mlmodel_contract(exported_mlmodel)),
                   "pixel_scale_rel_tol": PIXEL_SCALE_REL_TOL},
        "savedmodel": {"signatures": signatures, "labels": list(read_labels(saved_model, scores)[0]),
                       "served_model_name": contract.DEFAULT_MODEL_NAME},
    }
    path = tmp_path_factory.mktemp("spec") / "model_spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def test_swift_contract_names_match_the_exported_model(swift, model_spec):
    _run(swift, ["ModelContractTests"], TFSHIP_MODEL_SPEC=str(model_spec))


def _live_server_module():
    """tests/clients/live_server.py: how the test suite starts ``tfship serve`` (imported by path,
    since each test folder's modules are found from its own folder)."""
    import importlib.util
    import sys

    if "live_server" not in sys.modules:
        spec = importlib.util.spec_from_file_location("live_server", REPO / "tests" / "clients" / "live_server.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["live_server"] = module
        spec.loader.exec_module(module)
    return sys.modules["live_server"]


@pytest.fixture(scope="module")
def live_rest_url(cnn_run, tmp_path_factory, request):
    """``tfship serve`` with the session's trained CNN on free loopback ports. The server starts
    loading before the Swift package is built (the ``swift`` fixture), so the two overlap."""
    if swift_package.find_swift() is None:
        request.getfixturevalue("swift")  # skips, saying why, before a server is started for nothing
    live = _live_server_module()
    server = live.start_server(cnn_run, tmp_path_factory.mktemp("serve-ios") / "serve.log")
    try:
        request.getfixturevalue("swift")
        live.wait_until_available(server)
        yield server.rest
    finally:
        live.stop_server(server)


def _shared_digits() -> list[tuple[str, np.ndarray]]:
    """The repository's sample digit files (decoded as the clients decode them) and the
    preprocessing cases that hold a digit: (name, float 0..255 grayscale)."""
    from tfship.clients import images

    digits = [(path.name, images.decode_grayscale(path)) for path in SHARED_DIGITS]
    for case in preprocessing_cases.compute_cases()["cases"]:
        if case["expected"] is not None:
            pixels = np.asarray(case["pixels"], np.float32).reshape(case["height"], case["width"])
            digits.append((case["name"], pixels))
    return digits


@pytest.fixture(scope="module")
def digits_with_answers(live_rest_url, tmp_path_factory) -> Path:
    """The shared digits and what the Python REST client answers for each, for LiveServerTests."""
    from tfship.clients import RestClient, images

    digits = _shared_digits()
    assert len(SHARED_DIGITS) >= 3, f"examples/digits has {SHARED_DIGITS}"
    batch = np.stack([images.preprocess(gray, name=name) for name, gray in digits])
    with RestClient(live_rest_url, live_server_model_name()) as client:
        prediction = client.predict(batch)
    best = prediction.best
    payload = {
        "labels": list(prediction.labels),
        "digits": [{"name": name, "width": int(gray.shape[1]), "height": int(gray.shape[0]),
                    "pixels": gray.reshape(-1).tolist(), "label": best[i].label,
                    "scores": prediction.scores[i].astype(float).tolist()}
                   for i, (name, gray) in enumerate(digits)],
    }
    path = tmp_path_factory.mktemp("digits") / "digits.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def live_server_model_name() -> str:
    return _live_server_module().MODEL_NAME


def test_swift_rest_client_against_a_live_server(swift, live_rest_url, digits_with_answers):
    _run(swift, ["LiveServerTests"], TFSHIP_SERVER_URL=live_rest_url, TFSHIP_DIGITS=str(digits_with_answers))
