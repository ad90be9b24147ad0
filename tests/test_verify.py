"""tfship verify: it passes faithful artifacts and catches broken ones (each check is shown to fail)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from export_helpers import onnx_reverse_outputs, onnx_scale_initializer, tflite_scale_tensor
from tfship.export import manifest
from tfship.export.errors import ParityError
from tfship.export.verify import VerifyConfig, verify, verify_and_report

SAMPLES = 2000  # enough for agreement bounds of 99.5% to mean something; the CLI default is all 10k


@pytest.fixture
def exports(cnn_exports, tmp_path):
    """A private copy of the session's export (every format) that each test may break."""
    copy = tmp_path / "exports"
    shutil.copytree(cnn_exports.out, copy)
    return copy


def _run(folder, *only):
    return verify(VerifyConfig(exports=folder, samples=SAMPLES, latency=False, only=only), progress=lambda *_: None)


def test_faithful_exports_pass_and_reports_are_written(exports):
    report = _run(exports)
    assert report["passed"], [a["failures"] for a in report["artifacts"]]
    assert report["inputs"] == {"source": "MNIST test images", "count": SAMPLES}
    assert {a["path"] for a in report["artifacts"]} == {
        "model.tflite", "model_fp16.tflite", "model_int8_dynamic.tflite", "model_int8.tflite", "model.onnx",
        "MNISTClassifier.mlmodel", "MNISTClassifier.mlpackage"}
    for a in report["artifacts"]:
        assert a["top1_agreement"] >= 0.995 and a["accuracy"] > 0.9
    fp32 = {a["path"]: a for a in report["artifacts"]}["model.tflite"]
    assert fp32["max_abs_diff"] <= 1e-5 and fp32["top1_agreement"] == 1.0
    assert json.loads((exports / "parity.json").read_text())["passed"] is True
    assert "| model_int8.tflite | int8 | pass |" in (exports / "parity.md").read_text()
    assert (exports / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    merged = manifest.read(exports)
    assert merged["parity"]["passed"] and all("parity" in a for a in merged["artifacts"])


def _failed(report, path):
    (entry,) = [a for a in report["artifacts"] if a["path"] == path]
    assert not entry["passed"] and not report["passed"]
    return entry


def test_perturbed_tflite_weight_is_caught(exports):
    tflite_scale_tensor(exports / "model.tflite", exports / "model.tflite", 1.01)
    entry = _failed(_run(exports, "model.tflite"), "model.tflite")
    assert any(f.startswith("max |diff|") for f in entry["failures"])


def test_perturbed_onnx_weight_is_caught(exports):
    onnx_scale_initializer(exports / "model.onnx", exports / "model.onnx", 1.01)
    entry = _failed(_run(exports, "model.onnx"), "model.onnx")
    assert any(f.startswith("max |diff|") for f in entry["failures"])


@pytest.mark.parametrize("artifact", ["MNISTClassifier.mlmodel", "MNISTClassifier.mlpackage"])
def test_perturbed_coreml_weight_is_caught(exports, artifact):
    from tfship.export.coremleval import perturb_weight

    changed = perturb_weight(exports / artifact, exports / f"perturbed-{artifact}")
    shutil.rmtree(exports / artifact) if (exports / artifact).is_dir() else (exports / artifact).unlink()
    (exports / f"perturbed-{artifact}").rename(exports / artifact)
    entry = _failed(_run(exports, artifact), artifact)
    assert any(f.startswith("max |diff|") for f in entry["failures"]), (changed, entry["failures"])


def test_swapped_output_order_is_caught(exports):
    onnx_reverse_outputs(exports / "model.onnx", exports / "model.onnx")
    entry = _failed(_run(exports, "model.onnx"), "model.onnx")
    assert entry["top1_agreement"] < 0.2
    assert any(f.startswith("top-1 agreement") for f in entry["failures"])


def test_int8_model_with_wrong_scale_is_caught(exports):
    tflite_scale_tensor(exports / "model_int8.tflite", exports / "model_int8.tflite", 1.5, quantization_scale=True)
    entry = _failed(_run(exports, "model_int8.tflite"), "model_int8.tflite")
    assert entry["failures"]


def test_changed_file_is_reported_even_when_numbers_agree(exports):
    with open(exports / "model.onnx", "ab") as f:
        f.write(b"")  # no change: passes
    assert _run(exports, "model.onnx")["passed"]
    import onnx

    model = onnx.load(str(exports / "model.onnx"))
    model.doc_string = "edited"
    onnx.save(model, str(exports / "model.onnx"))
    entry = _failed(_run(exports, "model.onnx"), "model.onnx")
    assert entry["failures"] == ["file changed since export (sha256 differs from the manifest)"]


def test_failure_names_artifact_and_worst_image(exports, capsys):
    onnx_scale_initializer(exports / "model.onnx", exports / "model.onnx", 1.05)
    with pytest.raises(ParityError, match=r"model\.onnx: .*max \|diff\| \S+ > 1e-05 at image \d+.*\(worst image \d+, \|diff\| "):
        verify_and_report(VerifyConfig(exports=exports, samples=SAMPLES, latency=False))


def test_cli_exit_code(exports):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "tfship.cli", "verify", "--model", str(exports), "--samples", "500", "--no-latency"]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "all artifacts match the SavedModel within tolerance" in ok.stdout
    onnx_scale_initializer(exports / "model.onnx", exports / "model.onnx", 1.05)
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 1
    assert "verify: error: parity check failed for model.onnx" in bad.stderr
