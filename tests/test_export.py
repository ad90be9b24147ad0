"""export-all: every registered format, the manifest, atomicity, errors, and a non-MNIST model.

Tests are generated from the registry: a new format is tested by adding its entry.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from export_helpers import generic_classifier
from tfship.export import manifest, registry
from tfship.export.base import ExportOptions
from tfship.export.errors import ExportError
from tfship.export.pipeline import ExportConfig, export_all
from tfship.export.tolerances import reference_scale, tolerance_for
from tfship.savedmodel import resolve_model


@pytest.mark.parametrize("fmt", list(registry.FORMATS))
def test_every_format_exports_loads_and_agrees(fmt, cnn_exports, mnist):
    from tfship.export.source import load_source

    entries = [a for a in cnn_exports.manifest["artifacts"] if a["format"] == fmt]
    assert entries, f"export-all wrote no {fmt} artifact"
    source = load_source(resolve_model(cnn_exports.manifest["source"]["path"]))
    x = mnist.test.flat_float()[:300]
    reference = registry.runner_class("savedmodel")(source.path, source).run({"images": x})["scores"]
    for entry in entries:
        tol = tolerance_for(entry["format"], entry["precision"])
        runner = registry.runner_class(fmt)(cnn_exports.out / entry["path"], source)
        scores = runner.run({"images": x})["scores"]
        assert scores.shape == (300, 10)
        assert entry["status"] == "exported" and entry["reason"] == "not verified yet"
        assert np.abs(scores - reference).max() <= tol.max_rel_diff * reference_scale(reference), entry["path"]
        assert np.mean(scores.argmax(1) == reference.argmax(1)) >= tol.min_top1_agreement - 2 / 300, entry["path"]
        assert entry["labels"] == [str(i) for i in range(10)]
        assert entry["inputs"] and entry["outputs"]
        assert all(v != "not installed" for v in entry["converter"].values())


def test_expected_artifact_names(cnn_exports):
    names = {a["path"]: a["precision"] for a in cnn_exports.manifest["artifacts"]}
    assert names == {
        "model.tflite": "fp32", "model_fp16.tflite": "fp16", "model_int8_dynamic.tflite": "int8-dynamic",
        "model_int8.tflite": "int8", "model.onnx": "fp32",
        "MNISTClassifier.mlmodel": "fp32", "MNISTClassifier.mlpackage": "fp16"}


def test_manifest_describes_exactly_the_files(cnn_exports):
    out = cnn_exports.out
    document = json.loads((out / manifest.MANIFEST).read_text())
    listed = {a["path"] for a in document["artifacts"]}
    on_disk = {p.name for p in out.iterdir() if p.name != manifest.MANIFEST and not p.name.startswith("parity")}
    assert listed == on_disk
    for a in document["artifacts"]:
        assert manifest.sha256_of(out / a["path"]) == a["sha256"], a["path"]
        assert manifest.size_of(out / a["path"]) == a["size_bytes"], a["path"]
    assert document["schema_version"] == 2
    assert {a["status"] for a in document["artifacts"]} == {"exported"}
    source = document["source"]
    assert source["signature"] == "predict_images" and source["version"] == 1
    assert source["fingerprint"].startswith("tf:")
    assert source["inputs"] == [{"name": "images", "dtype": "float32", "shape": [None, 784]}]


def test_tflite_keeps_signature_names_and_provenance(cnn_exports):
    from ai_edge_litert.interpreter import Interpreter

    from tfship.export.tflite import read_provenance

    for name in ("model.tflite", "model_int8.tflite"):
        interpreter = Interpreter(model_path=str(cnn_exports.out / name))
        assert interpreter.get_signature_list() == {"predict_images": {"inputs": ["images"], "outputs": ["scores"]}}
        assert read_provenance(cnn_exports.out / name)["fingerprint"] == cnn_exports.manifest["source"]["fingerprint"]


def test_onnx_contract(cnn_exports):
    import onnx

    model = onnx.load(str(cnn_exports.out / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["images"]
    assert [o.name for o in model.graph.output] == ["scores"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] == 17
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["labels"]) == [str(i) for i in range(10)]
    assert props["source_fingerprint"] == cnn_exports.manifest["source"]["fingerprint"]


def test_one_failing_format_does_not_stop_the_others(cnn_run, tmp_path, monkeypatch):
    import tf2onnx

    def broken(*args, **kwargs):
        raise RuntimeError("simulated converter crash")

    monkeypatch.setattr(tf2onnx.convert, "from_graph_def", broken)
    result = export_all(ExportConfig(model=cnn_run, out=tmp_path / "exports", formats=("onnx", "tflite")),
                        progress=lambda *_: None)
    by_path = {a["path"]: a for a in result.manifest["artifacts"]}
    assert by_path["model.onnx"]["status"] == "not_exported"
    assert by_path["model.onnx"]["reason"] == "onnx export failed: tf2onnx: RuntimeError: simulated converter " \
                                               "crash (try another --opset (13-18) or run with --debug)"
    assert "sha256" not in by_path["model.onnx"] and not (result.out / "model.onnx").exists()
    assert [by_path[f"model{s}.tflite"]["status"] for s in ("", "_fp16", "_int8_dynamic", "_int8")] == ["exported"] * 4
    assert sorted(p.name for p in result.out.iterdir()) == [
        "manifest.json", "model.tflite", "model_fp16.tflite", "model_int8.tflite", "model_int8_dynamic.tflite"]


def test_interrupted_export_leaves_previous_export_intact(cnn_run, tmp_path, monkeypatch):
    out = tmp_path / "exports"
    export_all(ExportConfig(model=cnn_run, out=out, formats=("onnx",)), progress=lambda *_: None)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    import tf2onnx

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tf2onnx.convert, "from_graph_def", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_all(ExportConfig(model=cnn_run, out=out, formats=("tflite", "onnx")), progress=lambda *_: None)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["exports"]  # no temporary folder left behind


def test_generic_three_channel_model_exports(tmp_path):
    base, images = generic_classifier(tmp_path / "generic")
    np.save(tmp_path / "images.npy", images)
    result = export_all(ExportConfig(model=base, out=tmp_path / "exports", calibration_data=tmp_path / "images.npy"),
                        progress=lambda *_: None)
    source = result.manifest["source"]
    assert source["signature"] == "serving_default"
    assert source["image"] == {"height": 32, "width": 32, "channels": 3}
    assert source["labels"] == [str(i) for i in range(100)] and not source["labels_from_asset"]
    assert {a["format"] for a in result.manifest["artifacts"]} == set(registry.FORMATS)
    for a in result.manifest["artifacts"]:
        assert a["sanity_top1_agreement"] >= 0.9, a["path"]
    assert (result.out / "Generic.mlmodel").exists()  # the class is named after the model folder

    # Verification of a non-MNIST model runs on the user's inputs (and needs no labels).
    from tfship.export.verify import VerifyConfig, verify

    report = verify(VerifyConfig(exports=result.out, inputs=tmp_path / "images.npy", latency=False),
                    progress=lambda *_: None)
    assert report["inputs"] == {"source": str(tmp_path / "images.npy"), "count": len(images)}
    assert report["passed"], [(a["path"], a["failures"]) for a in report["artifacts"] if not a["passed"]]
    assert all(a["accuracy"] is None for a in report["artifacts"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tfship.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_cli_errors_are_one_line(tmp_path, cnn_run):
    unknown = _cli("export", "--model", str(cnn_run), "--formats", "tflite,caffe")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines()[-1] == \
        "export: error: unknown format 'caffe'; valid formats: tflite, onnx, coreml"
    missing = _cli("export", "--model", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "empty").mkdir()
    nothing = _cli("export", "--model", str(tmp_path / "empty"))
    assert nothing.returncode == 1 and "no SavedModel version found" in nothing.stderr


def test_no_usable_signature_is_explained(tmp_path):
    import tensorflow as tf

    class TextOnly(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def f(self, text):
            return {"length": tf.strings.length(text)}

    module = TextOnly()
    tf.saved_model.save(module, str(tmp_path / "m" / "1"), signatures={"serving_default": module.f})
    from tfship.errors import SignatureError

    with pytest.raises(SignatureError, match=r"no exportable predict signature.*'serving_default' .*input 'text' is string"):
        export_all(ExportConfig(model=tmp_path / "m"), progress=lambda *_: None)


def test_missing_verify_inputs_fail_before_exporting(tmp_path, cnn_run):
    out = tmp_path / "exports"
    result = _cli("export", "--model", str(cnn_run), "--out", str(out), "--formats", "onnx",
                  "--verify-inputs", str(tmp_path / "missing.npy"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == \
        f"export: error: --verify-inputs '{tmp_path / 'missing.npy'}' does not exist (expected a .npy file)"
    assert not out.exists()  # nothing was exported for a run that could not be verified


@pytest.mark.parametrize("args,message", [
    (("--opset", "12"), "--opset 12 is not supported by tf2onnx here; use 13-18 (default 17)"),
    (("--coreml-name", "1Model"), "--coreml-name '1Model' must be a Swift identifier"),
    (("--formats", "tflite", "--coreml-name", "My-Model"), "--coreml-name"),
])
def test_every_formats_options_are_checked_before_tensorflow_loads(cnn_run, tmp_path, args, message):
    """plan() runs every requested exporter's check(options) first: a bad --opset fails before any
    conversion, and without importing TensorFlow at all. (A --coreml-name is checked only when CoreML
    is exported: with --formats tflite it is ignored.)"""
    code = ("import sys; from pathlib import Path; from tfship.cli import build_parser; "
            "from tfship.export import cli; from tfship.errors import UsageError\n"
            f"args = build_parser().parse_args(['export', '--model', {str(cnn_run)!r}, '--out', "
            f"{str(tmp_path / 'x')!r}, *{list(args)!r}])\n"
            "from tfship.export.pipeline import plan, ExportConfig\n"
            "from tfship.export.base import ExportOptions\n"
            "from tfship.export.registry import parse_formats\n"
            "try:\n"
            "    plan(ExportConfig(model=args.model, out=args.out, formats=parse_formats(args.formats), "
            "options=ExportOptions(opset=args.opset, coreml_name=args.coreml_name)))\n"
            "    print('PLANNED')\n"
            "except UsageError as e:\n"
            "    print('ERROR', e)\n"
            "print('tensorflow loaded' if 'tensorflow' in sys.modules else 'no tensorflow')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    if args[:2] == ("--formats", "tflite"):
        assert done.stdout.splitlines() == ["PLANNED", "no tensorflow"]
    else:
        first, second = done.stdout.splitlines()
        assert first.startswith(f"ERROR {message}") and second == "no tensorflow"


def test_coreml_class_is_named_after_the_model_folder(cnn_run, tmp_path):
    from tfship.export.coreml import class_name_for
    from tfship.export.pipeline import plan

    assert plan(ExportConfig(model=cnn_run, out=tmp_path)).options.coreml_name == "Cnn"
    assert plan(ExportConfig(model=cnn_run, out=tmp_path,
                             options=ExportOptions(coreml_name="MNISTClassifier"))).options.coreml_name == "MNISTClassifier"
    assert [class_name_for(n) for n in ("mobilenet_v2", "resnet-50", "3d_net", "self", "")] == [
        "MobilenetV2", "Resnet50", "Model3dNet", "SelfModel", "Model"]


def test_sanity_check_rejects_a_converter_that_silently_drops_weights(cnn_run, tmp_path, monkeypatch):
    """STACK.md's real failure: TFLite's from_saved_model reports success and writes a model without its
    weights. Its outputs are usually NaN, sometimes finite garbage (11% top-1 agreement in one run of
    2026-11-22): the check must reject both, and only that artifact."""
    import tensorflow as tf

    version_dir = str(resolve_model(cnn_run).path)
    converter_class = tf.lite.TFLiteConverter
    working = converter_class.from_concrete_functions
    calls = []

    def fp32_through_from_saved_model(funcs, trackable_obj=None):
        calls.append(1)  # the first conversion is model.tflite; the quantized ones stay correct
        if len(calls) == 1:
            return converter_class.from_saved_model(version_dir, signature_keys=["predict_images"])
        return working(funcs, trackable_obj)

    monkeypatch.setattr(converter_class, "from_concrete_functions", staticmethod(fp32_through_from_saved_model))
    result = export_all(ExportConfig(model=cnn_run, out=tmp_path / "exports", formats=("tflite",)),
                        progress=lambda *_: None)
    first, *others = result.manifest["artifacts"]
    assert (first["path"], first["status"]) == ("model.tflite", "not_exported")
    assert re.fullmatch(r"the converter produced a broken model: (non-finite outputs \(NaN or inf\) on \d+ of 64 "
                        r"inputs|top-1 agreement \d+% on 64 inputs is chance level \(\d+% for unrelated "
                        r"predictions\)|the same outputs for every input .*)", first["reason"]), first["reason"]
    assert not (result.out / "model.tflite").exists()
    assert [a["status"] for a in others] == ["exported"] * 3


@pytest.mark.parametrize("scores,problem", [
    ("nan", r"non-finite outputs \(NaN or inf\) on 1 of 64 inputs"),
    ("constant", r"the same outputs for every input"),
    ("shuffled", r"top-1 agreement \d+% on 64 inputs is chance level"),
    ("noisy", None),
])
def test_sanity_check_catches_broken_converters_only(scores, problem):
    """NaN, constant or chance-level outputs are a broken converter; a lossy but faithful one is not."""
    from tfship.export.pipeline import sanity_problem

    rng = np.random.default_rng(0)
    reference = rng.dirichlet(np.ones(10) * 0.3, size=64).astype(np.float32)
    got = {"nan": np.where(np.arange(64)[:, None] == 5, np.nan, reference),
           "constant": np.tile(reference.mean(axis=0), (64, 1)),
           "shuffled": reference[rng.permutation(64)],
           "noisy": reference + rng.normal(0, 0.02, reference.shape)}[scores]
    found = sanity_problem(got.astype(np.float32), reference)
    assert (found is None) if problem is None else re.match(problem, found), found


def test_ios_install_finds_the_exports_mlmodel_by_its_manifest(tmp_path):
    """export-all names the CoreML file after the model folder (runs/cnn -> Cnn.mlmodel); ios-install
    still finds it, through the manifest, to install it under the app's class name."""
    from tfship.errors import ModelNotFoundError
    from tfship.export.ios_install import find_mlmodel

    exports = tmp_path / "run" / "exports"
    exports.mkdir(parents=True)
    (exports / "Cnn.mlmodel").write_bytes(b"spec")
    with pytest.raises(ModelNotFoundError, match="no exported MNISTClassifier.mlmodel"):
        find_mlmodel(tmp_path / "run")
    (exports / "manifest.json").write_text(json.dumps({"schema_version": 2, "artifacts": [
        {"path": "Cnn.mlmodel", "status": "verified"}, {"path": "Cnn.mlpackage", "status": "verified"},
        {"path": "model.onnx", "status": "not_exported"}]}))
    assert find_mlmodel(tmp_path / "run") == exports / "Cnn.mlmodel"
