"""tfship verify: it passes faithful artifacts and catches broken ones (each check is shown to fail)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from export_helpers import onnx_reverse_outputs
from tfship.export import manifest, registry
from tfship.export.errors import ParityError
from tfship.export.tolerances import tolerance_for
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
    assert {(a["status"], a["reason"]) for a in merged["artifacts"]} == {("verified", "")}


def _failed(report, path):
    (entry,) = [a for a in report["artifacts"] if a["path"] == path]
    assert not entry["passed"] and not report["passed"]
    return entry


# Every artifact of every registered format, from the registry: a new format gets this test by adding
# its entry (and its perturb hook).
PERTURBABLE = [(fmt, path) for fmt, paths in {
    "tflite": ["model.tflite", "model_fp16.tflite", "model_int8_dynamic.tflite", "model_int8.tflite"],
    "onnx": ["model.onnx"], "coreml": ["MNISTClassifier.mlmodel", "MNISTClassifier.mlpackage"]}.items()
    for path in paths]


def test_perturbation_cases_cover_the_registry():
    assert {fmt for fmt, _ in PERTURBABLE} == set(registry.FORMATS)


@pytest.mark.parametrize("fmt,artifact", PERTURBABLE)
def test_verify_catches_a_perturbed_artifact(exports, fmt, artifact):
    """The registry's perturb hook changes one weight tensor by 20 times the artifact's relative tolerance
    (the sha256 is restored in the manifest, so only the numbers can give it away): verify must fail the
    artifact on its scores."""
    precision = next(a["precision"] for a in manifest.read(exports)["artifacts"] if a["path"] == artifact)
    factor = 1 + 20 * tolerance_for(fmt, precision).max_rel_diff
    changed = registry.perturber(fmt)(exports / artifact, exports / f"perturbed-{artifact}", factor)
    original = exports / artifact
    shutil.rmtree(original) if original.is_dir() else original.unlink()
    (exports / f"perturbed-{artifact}").rename(original)
    document = manifest.read(exports)
    for entry in document["artifacts"]:
        if entry["path"] == artifact:
            entry["sha256"] = manifest.sha256_of(original)
    manifest.write(exports, document)
    entry = _failed(_run(exports, artifact), artifact)
    assert any(f.startswith("max |diff|") for f in entry["failures"]), (changed, entry["failures"])
    assert manifest.read(exports)["artifacts"][[a["path"] for a in document["artifacts"]].index(artifact)][
        "status"] == "failed_verification"


def test_swapped_output_order_is_caught(exports):
    onnx_reverse_outputs(exports / "model.onnx", exports / "model.onnx")
    entry = _failed(_run(exports, "model.onnx"), "model.onnx")
    assert entry["top1_agreement"] < 0.2
    assert any(f.startswith("top-1 agreement") for f in entry["failures"])


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
    registry.perturber("onnx")(exports / "model.onnx", exports / "model.onnx")
    with pytest.raises(ParityError, match=r"model\.onnx: .*max \|diff\| \S+ = \S+ of the score range \S+ > 0\.001 "
                                          r"at image \d+.*\(worst image \d+, \|diff\| "):
        verify_and_report(VerifyConfig(exports=exports, samples=SAMPLES, latency=False))


def test_cli_exit_code(exports):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "tfship.cli", "verify", "--model", str(exports), "--samples", "500", "--no-latency"]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "all artifacts match the SavedModel within tolerance" in ok.stdout
    registry.perturber("onnx")(exports / "model.onnx", exports / "model.onnx")
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 1
    assert "verify: error: parity check failed for model.onnx" in bad.stderr


@pytest.mark.parametrize("flips,n,bound,fails", [
    (1, 285, 0.999, False),     # one near-tie flip in a 300-input run: not evidence of a bad artifact
    (3, 285, 0.999, True),      # three are (P < 1% at a 0.1% flip rate)
    (4, 10000, 0.9999, False),  # MNIST's 10k images: as strict as the rate itself, give or take noise
    (5, 10000, 0.9999, True),
    (0, 300, 1.0, False),
    (300, 300, 0.98, True),     # the swapped-output case
])
def test_agreement_bound_is_a_rate_judged_with_confidence(flips, n, bound, fails):
    from tfship.export.tolerances import too_many_flips

    assert too_many_flips(flips, n, bound) is fails
