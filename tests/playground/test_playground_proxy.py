"""``tfship playground`` without a browser: /v1 forwarding, upstream failures as JSON, the run view, the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from live_server import MODEL_NAME
from playground_helpers import get_json, start_playground


def test_status_and_metadata_pass_through_unchanged(playground, model_server):
    for path in (f"/v1/models/{MODEL_NAME}", f"/v1/models/{MODEL_NAME}/metadata",
                 f"/v1/models/{MODEL_NAME}/versions/1"):
        assert get_json(playground.url + path) == get_json(model_server.rest + path), path


def test_server_errors_pass_through_in_the_servers_words(playground, model_server):
    # TF Serving's own wording (json_tensor.cc, http_rest_api_handler.cc), status and text unchanged.
    cases = [("/v1/models/no_such_model", None),
             (f"/v1/models/{MODEL_NAME}:predict", b'{"instances": [[1.0, 2.0]]'),
             (f"/v1/models/{MODEL_NAME}:predict", b'{"signature_name": "predict_images", "instances": [[1.0]]}')]
    for path, body in cases:
        direct = get_json(model_server.rest + path, body)
        assert direct[0] >= 400 and direct[1]["error"], (path, direct)
        assert get_json(playground.url + path, body) == direct, path


def test_a_prediction_through_the_playground_equals_the_direct_one(playground, model_server):
    body = json.dumps({"signature_name": "predict_images", "inputs": {"images": [[0.5] * 784]}}).encode()
    path = f"/v1/models/{MODEL_NAME}:predict"
    assert get_json(playground.url + path, body) == get_json(model_server.rest + path, body)
    with urllib.request.urlopen(urllib.request.Request(playground.url + path, data=body)) as answer:
        assert answer.headers["server-timing"].startswith("upstream;dur=")


def test_a_stopped_server_is_a_readable_json_error(playground_without_server):
    pg, server = playground_without_server
    status, doc = get_json(f"{pg.url}/v1/models/{MODEL_NAME}")
    assert status == 502
    assert doc == {"error": f"cannot reach the model server at {server}: connection refused",
                   "origin": "playground"}


def test_a_server_that_never_answers_times_out_as_json(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel accepts connections; nobody ever reads or answers
    port = silent.getsockname()[1]
    pg = start_playground(f"http://127.0.0.1:{port}", tmp_path / "pg.log", "--timeout", "1")
    try:
        started = time.monotonic()
        status, doc = get_json(f"{pg.url}/v1/models/{MODEL_NAME}/metadata")
        waited = time.monotonic() - started
    finally:
        pg.stop()
        silent.close()
    assert status == 504
    assert doc == {"error": f"the model server at http://127.0.0.1:{port} did not answer within 1 s "
                            "(connected, but no answer)", "origin": "playground"}
    assert waited < 10


def test_only_v1_is_forwarded(playground):
    status, doc = get_json(playground.url + "/monitoring/prometheus/metrics")
    assert status == 404
    assert doc["error"] == ("the playground serves its page at / and forwards /v1/... only, "
                            "not /monitoring/prometheus/metrics")
    with urllib.request.urlopen(playground.url + "/") as page:
        html = page.read().decode()
    assert "<canvas id=\"draw\"" in html
    # Everything the page loads is served by the playground itself: no CDN, works offline.
    assert "http://" not in html and "https://" not in html
    for script in ("preprocess.js", "model.js", "runview.js", "playground.js", "playground.css"):
        with urllib.request.urlopen(f"{playground.url}/static/{script}") as answer:
            assert answer.status == 200
            assert b"https://" not in answer.read(), script


def test_run_view_reads_the_run_folder(playground, cnn_run):
    status, run = get_json(playground.url + "/playground/run")
    assert status == 200
    assert run["run_dir"] == str(cnn_run.resolve())
    assert run["versions"] == [{"version": 1, "labels": [str(d) for d in range(10)]}]
    if run["manifest"] is None:  # the session's export may not have been written into the run yet
        assert run["manifest_error"].startswith(f"no manifest.json in '{cnn_run.resolve() / 'exports'}'")


def test_without_a_run_folder_the_run_view_says_so(tmp_path, model_server):
    pg = start_playground(model_server.rest, tmp_path / "pg.log")
    try:
        assert get_json(pg.url + "/playground/config") == (
            200, {"server": model_server.rest, "models": [], "run": False})
        status, doc = get_json(pg.url + "/playground/run")
    finally:
        pg.stop()
    assert status == 404
    assert "started without --model RUN_DIR" in doc["error"]


def _cli(capsys, *args: str) -> tuple[int, str]:
    from tfship.cli import main

    code = main(["playground", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--server", "localhost:8501"], "--server 'localhost:8501' must be the REST API's URL, like http://localhost:8501"),
    (["--server", "http://h:8501/v1/models/mnist"], "must be scheme://host:port only"),
    (["--server", "http://h:8501", "--port", "70000"], "--port 70000 is not a TCP port"),
    (["--server", "http://h:8501", "--timeout", "0"], "--timeout must be a positive number of seconds"),
])
def test_bad_arguments_are_refused(capsys, args, message):
    code, err = _cli(capsys, *args)
    assert code == 2, err
    assert err.startswith("playground: error: --") and message in err


def test_a_folder_that_is_not_a_run_is_refused(capsys, tmp_path):
    code, err = _cli(capsys, "--server", "http://127.0.0.1:8501", "--model", str(tmp_path))
    assert code == 1
    assert f"'{tmp_path}' is not a run folder: no 'saved_model/<version>/'" in err


def test_a_taken_port_is_refused_with_its_reason(capsys):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        code, err = _cli(capsys, "--server", "http://127.0.0.1:8501", "--port", str(port))
    finally:
        taken.close()
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in err


def test_the_playground_imports_no_tensorflow(cnn_run):
    # 'tfship[playground]' installs no TensorFlow: parsing arguments, building the app and reading a
    # run must not need it.
    code = ("import sys; from pathlib import Path; from tfship.playground.app import PlaygroundConfig, build_app; "
            "from tfship.cli import main; assert main(['playground', '--server', 'ftp://x']) == 2; "
            "from tfship.playground.run_folder import RunFolder; "
            f"build_app(PlaygroundConfig(server='http://127.0.0.1:1', run=Path({str(cnn_run)!r}))); "
            f"RunFolder.open(Path({str(cnn_run)!r})).describe(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
