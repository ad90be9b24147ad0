"""The playground in a real browser (Debian's Chromium, headless, driven by Selenium): drawing with
pointer events, dropping an image, the JavaScript preprocessing, errors, and the run view."""

from __future__ import annotations

import base64
import shutil
import time

import numpy as np
import pytest

from live_server import MODEL_NAME
from playground_helpers import PAGE_TIMEOUT_S, RGB_CLASSES, RGB_MODEL, RGB_SHAPE, get_json, start_playground
from tfship.clients import RestClient
from tfship.clients import images as client_images
from tfship.clients.rest_client import encode_predict

# The page computes in float64 and rounds to float32 where NumPy stores float32: inputs agree to
# float32 rounding (~6e-8 of 1.0) plus BOX averaging's summation order; 1e-6 leaves room for both.
INPUT_TOL = 1e-6
# The same float32 input reaches the same model through the same server: the only difference is the
# request's JSON (the page's shortest float64 text vs Python's repr), which parses to the same float32.
# Batching on the server is off, so the scores should be bit-equal; 1e-6 allows a kernel's reordering.
SCORE_TOL = 1e-6
# The shared cases store 0..255 values with 4 decimals (tests/ios/test_ios_preprocessing_cases.py).
CASE_TOL = 1e-3
CANVAS_SIDE = 280

# Strokes on the 280x280 canvas, as (x, y) polylines; digits a 97% MNIST model reads without doubt.
DIGITS = {
    "7": [[(70, 60), (210, 60), (120, 230)]],
    "1": [[(150, 40), (140, 240)]],
    "4": [[(170, 40), (70, 170), (220, 170)], [(170, 40), (170, 250)]],
}


def _wait(browser, script: str, what: str, timeout: float = PAGE_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    errors = browser.find_element("id", "error").text
    pytest.fail(f"the page did not show {what} within {timeout:.0f} s (error box: {errors!r})")


def _open(browser, url: str):
    browser.get(url)
    _wait(browser, "return document.body.dataset.ready === 'true'", "its first state")


def _draw(browser, kind: str, strokes) -> None:
    """Each stroke as real pointer input of ``kind`` (mouse, pen or touch) through chromedriver."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    canvas = browser.find_element("id", "draw")
    half = CANVAS_SIDE // 2  # Selenium's offsets are from the element's centre
    for stroke in strokes:
        actions = ActionBuilder(browser, mouse=PointerInput(kind, f"{kind}-pointer"))
        pointer = actions.pointer_action
        pointer.move_to(canvas, stroke[0][0] - half, stroke[0][1] - half)
        pointer.pointer_down()
        for (xa, ya), (xb, yb) in zip(stroke, stroke[1:]):
            for step in range(1, 11):
                pointer.move_to(canvas, round(xa + (xb - xa) * step / 10) - half, round(ya + (yb - ya) * step / 10) - half)
        pointer.pointer_up()
        actions.perform()


def _last(browser, source: str, after: int) -> dict:
    """The answer to the newest request (sent after request number ``after``), once nothing is pending."""
    script = (f"const p = window.tfshipPlayground, l = p.last; return !p.state.pending && l && l.source === '{source}' "
              f"&& l.request > {after} && l.request === p.state.request && l")
    return _wait(browser, script, f"a prediction from the {source}")


def _requests(browser) -> int:
    return browser.execute_script("return window.tfshipPlayground.state.request")


def _bars(browser) -> list[tuple[str, float]]:
    return browser.execute_script(
        "return [...document.querySelectorAll('#bars li')].map(li => [li.dataset.label, Number(li.dataset.score)])")


def test_js_preprocessing_equals_the_python_clients(browser, playground):
    import preprocessing_cases

    _open(browser, playground.url)
    sources = preprocessing_cases.source_images()
    cases = preprocessing_cases.compute_cases()["cases"]
    got = browser.execute_script("""
        return arguments[0].map(c => {
          const d = TfshipPreprocess.mnistDigit({width: c.width, height: c.height, pixels: Float32Array.from(c.pixels)});
          const x = TfshipPreprocess.mnistInput({width: c.width, height: c.height, pixels: Float32Array.from(c.pixels)});
          return [d && Array.from(d.pixels), x && Array.from(x)];
        });""", cases)
    for case, (digit, values) in zip(cases, got):
        if case["expected"] is None:
            assert digit is None and values is None, case["name"]
            continue
        np.testing.assert_allclose(digit, case["expected"], rtol=0, atol=CASE_TOL, err_msg=case["name"])
        exact = client_images.preprocess(sources[case["name"]].astype(np.float32), name=case["name"])
        np.testing.assert_allclose(values, exact, rtol=0, atol=INPUT_TOL, err_msg=case["name"])
    # Step 1: grayscale as Pillow's "L" conversion, on every kind of colour.
    from PIL import Image

    rgb = np.random.default_rng(3).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((16, 16, 1), 255, np.uint8)], axis=2)
    gray = browser.execute_script("return Array.from(TfshipPreprocess.grayFromRGBA(arguments[0], 16, 16).pixels)",
                                  rgba.reshape(-1).tolist())
    assert gray == np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32).reshape(-1).tolist()


@pytest.mark.parametrize("kind, digit", [("mouse", "7"), ("pen", "1"), ("touch", "4")])
def test_a_drawn_digit_is_classified_as_the_python_client_would(browser, playground, model_server, tmp_path,
                                                                artifacts, kind, digit):
    _open(browser, f"{playground.url}/?model={MODEL_NAME}")
    _wait(browser, "return document.getElementById('signature')", "the model's signatures")
    before = _requests(browser)
    _draw(browser, kind, DIGITS[digit])
    last = _last(browser, "canvas", before)
    strokes = browser.execute_script("return window.tfshipPlayground.strokes")
    assert [s["pointerType"] for s in strokes] == [kind] * len(DIGITS[digit])
    assert last["label"] == digit, last["scores"]
    assert tuple(_bars(browser)[0]) == (digit, pytest.approx(max(last["scores"])))
    assert browser.find_element("id", "error").is_displayed() is False
    assert "ms round trip" in browser.find_element("id", "latency").text

    # The same canvas saved as a PNG and sent by the Python client: same input, same scores.
    png = tmp_path / f"drawn_{digit}.png"
    png.write_bytes(base64.b64decode(browser.execute_script(
        "return document.getElementById('draw').toDataURL('image/png').split(',')[1]")))
    np.testing.assert_allclose(last["input"], client_images.load_image(png), rtol=0, atol=INPUT_TOL)
    with RestClient(model_server.rest, MODEL_NAME) as client:
        expected = client.predict(png).scores[0]
    np.testing.assert_allclose(last["scores"], expected, rtol=0, atol=SCORE_TOL)
    browser.save_screenshot(str(artifacts / f"drawn_{kind}_{digit}.png"))


def _drop(browser, path) -> None:
    browser.execute_script("""
        const [b64, name] = arguments;
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], name, {type: 'image/png'}));
        const zone = document.getElementById('drop-zone');
        for (const type of ['dragenter', 'dragover', 'drop']) {
          zone.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
        }""", base64.b64encode(path.read_bytes()).decode(), path.name)


def test_a_dropped_mnist_png_scores_as_with_the_python_client(browser, playground, model_server, mnist, tmp_path,
                                                              artifacts):
    from PIL import Image

    x_test, y_test = mnist.test.images, mnist.test.labels
    _open(browser, f"{playground.url}/?model={MODEL_NAME}")
    _wait(browser, "return document.getElementById('signature')", "the model's signatures")
    with RestClient(model_server.rest, MODEL_NAME) as client:
        for index in (0, 1):  # MNIST's first test digits, as a user would save them
            png = tmp_path / f"mnist_test_{index}.png"
            Image.fromarray(x_test[index]).save(png)
            before = _requests(browser)
            _drop(browser, png)
            last = _last(browser, "file", before)
            expected = client.predict(png)
            assert last["label"] == expected.labels[int(expected.scores[0].argmax())] == str(int(y_test[index]))
            np.testing.assert_allclose(last["input"], client_images.load_image(png), rtol=0, atol=INPUT_TOL)
            np.testing.assert_allclose(last["scores"], expected.scores[0], rtol=0, atol=SCORE_TOL)
    browser.save_screenshot(str(artifacts / "dropped_mnist.png"))


def test_an_unknown_model_shows_the_servers_own_words(browser, playground, model_server):
    _open(browser, playground.url)
    status, answer = get_json(f"{model_server.rest}/v1/models/no_such_model")
    box = browser.find_element("id", "model-name")
    box.clear()
    box.send_keys("no_such_model\n")
    text = _wait(browser, "const e = document.getElementById('error'); return !e.hidden && e.textContent",
                 "an error")
    assert status == 404
    assert text == f"The model server answered HTTP 404: {answer['error']}"


def test_versions_and_labels_address_the_model(browser, playground, model_server):
    _open(browser, f"{playground.url}/?model={MODEL_NAME}")
    _wait(browser, "return document.getElementById('signature')", "the model's signatures")
    options = browser.execute_script("return [...document.getElementById('version').options].map(o => o.text)")
    assert options == ["latest", "1 (AVAILABLE)"]
    _choose(browser, "version", "1")
    _wait(browser, "return document.getElementById('signature')", "version 1's signatures")
    before = _requests(browser)
    _draw(browser, "mouse", DIGITS["1"])
    assert _last(browser, "canvas", before)["model"] == f"/v1/models/{MODEL_NAME}/versions/1"
    # A version label the server does not know: its own words, as for any other error. (Status ignores
    # labels, as TF Serving's GetModelStatus does; metadata resolves them.)
    status, answer = get_json(f"{model_server.rest}/v1/models/{MODEL_NAME}/labels/stable/metadata")
    label = browser.find_element("id", "version-label")
    label.send_keys("stable\n")
    text = _wait(browser, "const e = document.getElementById('error'); return !e.hidden && e.textContent", "an error")
    assert status >= 400
    assert text == f"The model server answered HTTP {status}: {answer['error']}"


def test_a_stopped_server_shows_a_readable_error(browser, playground_without_server):
    pg, server = playground_without_server
    _open(browser, f"{pg.url}/?model={MODEL_NAME}")
    text = _wait(browser, "const e = document.getElementById('error'); return !e.hidden && e.textContent", "an error")
    assert text == f"Playground: cannot reach the model server at {server}: connection refused"


@pytest.fixture(scope="module")
def verified_run(cnn_run, cnn_exports, tmp_path_factory):
    """A run folder whose exports were verified (two artifacts, a few hundred images: the view is
    under test, not the export), beside the session's SavedModel."""
    from tfship.export.verify import VerifyConfig, verify

    run = tmp_path_factory.mktemp("verified") / "run"
    run.mkdir()
    (run / "saved_model").symlink_to(cnn_run / "saved_model", target_is_directory=True)
    shutil.copytree(cnn_exports.out, run / "exports")
    report = verify(VerifyConfig(exports=run / "exports", samples=256, latency=False,
                                 only=("model.onnx", "model_int8.tflite")), progress=lambda *_: None)
    return run, report


def test_the_run_view_shows_the_manifest_and_parity_report(browser, model_server, verified_run, tmp_path, artifacts):
    import json

    run, report = verified_run
    manifest = json.loads((run / "exports" / "manifest.json").read_text())
    pg = start_playground(model_server.rest, tmp_path / "pg.log", "--model", str(run))
    try:
        _open(browser, pg.url)
        browser.find_element("id", "tab-run").click()
        _wait(browser, "const i = document.getElementById('parity-png'); return !i.hidden && i.complete && i.naturalWidth",
              "parity.png")
        rows = browser.execute_script("""
            const read = id => [...document.querySelectorAll('#' + id + ' tbody tr')].map(
              tr => [...tr.children].map(td => td.textContent));
            return {manifest: read('manifest'), parity: read('parity')};""")
        browser.save_screenshot(str(artifacts / "run_view.png"))
    finally:
        pg.stop()
    assert [r[0] for r in rows["manifest"]] == [a["path"] for a in manifest["artifacts"]]
    verified = {r[0]: r[-1] for r in rows["manifest"]}
    assert verified["model.onnx"] == "pass" and verified["model.tflite"] == "not verified"
    assert [r[0] for r in rows["parity"]] == [a["path"] for a in report["artifacts"]]
    onnx = next(r for r in rows["parity"] if r[0] == "model.onnx")
    onnx_report = next(a for a in report["artifacts"] if a["path"] == "model.onnx")
    assert onnx[2] == "pass" and onnx[3] == f"{onnx_report['max_abs_diff']:.2e}"


def _choose(browser, select_id: str, value: str) -> None:
    browser.execute_script("const s = document.getElementById(arguments[0]); s.value = arguments[1]; "
                           "s.dispatchEvent(new Event('change'));", select_id, value)


@pytest.mark.parametrize("value_range, scale", [("0..1", lambda v: v / 255.0), ("-1..1", lambda v: v / 127.5 - 1.0),
                                                ("0..255", lambda v: v)])
def test_an_rgb_model_gets_the_image_resized_in_the_chosen_value_range(browser, playground, model_server, tmp_path,
                                                                        value_range, scale):
    from PIL import Image

    _open(browser, f"{playground.url}/?model={RGB_MODEL}")
    _wait(browser, "return document.getElementById('signature')", "the model's signatures")
    _choose(browser, "value-range", value_range)
    rng = np.random.default_rng(11)
    cases = {
        # The model's own size: the pixels arrive unchanged, in H, W, C order.
        "exact.png": rng.integers(0, 256, size=RGB_SHAPE, dtype=np.uint8),
        # Another size and aspect: resized to H x W; one colour stays that colour under any filter.
        "solid.png": np.broadcast_to(np.array([200, 100, 50], np.uint8), (45, 70, 3)),
    }
    for name, pixels in cases.items():
        png = tmp_path / name
        Image.fromarray(np.ascontiguousarray(pixels)).save(png)
        before = _requests(browser)
        _drop(browser, png)
        last = _last(browser, "file", before)
        expected_input = scale(np.asarray(pixels if name == "exact.png" else
                                          np.broadcast_to(pixels[0, 0], RGB_SHAPE), dtype=np.float64))
        np.testing.assert_allclose(np.reshape(last["input"], RGB_SHAPE), expected_input, rtol=0, atol=INPUT_TOL,
                                   err_msg=name)
        # The page's answer is the server's for that input (sent here by the Python client's encoder).
        body = encode_predict(expected_input[np.newaxis].astype(np.float32), last["signature"], "pixels", "columnar")
        status, direct = get_json(f"{model_server.rest}/v1/models/{RGB_MODEL}:predict", body)
        assert status == 200, direct
        np.testing.assert_allclose(last["scores"], np.ravel(direct["outputs"]), rtol=0, atol=SCORE_TOL)
        assert len(last["scores"]) == RGB_CLASSES
        assert last["labels"] == [str(i) for i in range(RGB_CLASSES)]  # no labels known: class indices
