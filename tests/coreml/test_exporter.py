"""CoremlExporter: the contract names, metadata and precision of both artifacts; the generic
32x32x3 / 100-class model; argument checks and converter failures as errors a user can act on."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from coreml_helpers import contract_source

from tfship.errors import UsageError
from tfship.export import coremleval
from tfship.export.base import ExportOptions, ImageLayout, SourceModel, TensorInfo
from tfship.export.coreml import CLASS_LABEL, CLASS_PROBS, IMAGE_INPUT, CoremlExporter
from tfship.export.errors import ExportError
from tfship.export.runners.coreml import CoremlRunner
from tfship.savedmodel import ModelVersion

# Same bounds as test_cnn_parity.py, measured there: fp32 4e-7, fp16 ~1e-3.
FP32_TOL = 1e-5
FP16_TOL = 5e-3


def _feature(spec, name, outputs=False):
    feats = spec.description.output if outputs else spec.description.input
    return next(f for f in feats if f.name == name)


@pytest.mark.parametrize("artifact,spec_version,kind", [("MNISTClassifier.mlmodel", 4, "neuralNetworkClassifier"),
                                                        ("MNISTClassifier.mlpackage", 6, "mlProgram")])
def test_contract_names_and_metadata(coreml_exports, cnn_source, artifact, spec_version, kind):
    out, arts = coreml_exports
    assert sorted(a.path for a in arts) == ["MNISTClassifier.mlmodel", "MNISTClassifier.mlpackage"]
    spec = coremleval.load_spec(out / artifact)
    assert spec.specificationVersion == spec_version
    assert spec.WhichOneof("Type") == kind
    desc = spec.description
    assert [f.name for f in desc.input] == [IMAGE_INPUT]
    image = _feature(spec, IMAGE_INPUT).type.imageType
    assert (image.width, image.height, image.colorSpace) == (28, 28, 10)   # 10 = GRAYSCALE
    assert sorted(f.name for f in desc.output) == sorted([CLASS_LABEL, CLASS_PROBS])
    assert _feature(spec, CLASS_LABEL, True).type.WhichOneof("Type") == "stringType"
    assert _feature(spec, CLASS_PROBS, True).type.dictionaryType.WhichOneof("KeyType") == "stringKeyType"
    assert (desc.predictedFeatureName, desc.predictedProbabilitiesName) == (CLASS_LABEL, CLASS_PROBS)
    assert coremleval.load(out / artifact).class_labels == tuple(str(i) for i in range(10))
    meta = desc.metadata
    assert (meta.author, meta.license, meta.versionString) == ("tfship", "Apache-2.0", "1.2.3")
    assert "28x28 grayscale" in meta.shortDescription
    assert all(f.shortDescription for f in list(desc.input) + list(desc.output))
    user = dict(meta.userDefined)
    assert user["tfship.source_path"] == str(cnn_source.path)
    assert user["tfship.source_version"] == str(cnn_source.model.version)
    assert user["tfship.source_fingerprint"] == "test-fingerprint"
    assert json.loads(user["tfship.labels"]) == list(cnn_source.labels)
    assert {"tfship.version", "tensorflow.version", "coremltools.version", "tfship.created"} <= set(user)


def test_artifact_details(coreml_exports):
    _, arts = coreml_exports
    by_path = {a.path: a for a in arts}
    nn, prog = by_path["MNISTClassifier.mlmodel"], by_path["MNISTClassifier.mlpackage"]
    assert (nn.format, nn.precision, prog.precision) == ("coreml", "fp32", "fp16")
    assert nn.details["minimum_deployment_target"] == "iOS13" and nn.details["spec_version"] == 4
    assert prog.details["minimum_deployment_target"] == "iOS15" and prog.details["spec_version"] == 6
    assert prog.details["model_type"] == "mlProgram" and prog.details["swift_class"] == "MNISTClassifier"
    assert prog.details["inputs"][0]["color_space"] == "GRAYSCALE"
    assert [o.name for o in prog.outputs] == [CLASS_LABEL, CLASS_PROBS]


def _program_dtypes(path) -> set[int]:
    spec = coremleval.load_spec(path)
    main = spec.mlProgram.functions["main"]
    return {o.type.tensorType.dataType for op in main.block_specializations[main.opset].operations
            for o in op.outputs if o.type.WhichOneof("type") == "tensorType"}


def test_precision_asked_for_is_the_precision_written(coreml_exports, coreml_fp32_exports):
    fp16, fp32 = 10, 11   # MIL DataType
    assert fp16 in _program_dtypes(coreml_exports[0] / "MNISTClassifier.mlpackage")
    assert fp16 not in _program_dtypes(coreml_fp32_exports[0] / "MNISTClassifier.mlpackage")
    assert fp32 in _program_dtypes(coreml_fp32_exports[0] / "MNISTClassifier.mlpackage")


@pytest.mark.parametrize("options,match", [(ExportOptions(coreml_precision="int8"), "precision 'int8'"),
                                           (ExportOptions(coreml_name="1Model"), "Swift identifier"),
                                           (ExportOptions(coreml_name="My-Model"), "Swift identifier")])
def test_bad_options_fail_before_any_conversion(cnn_source, tmp_path, options, match):
    start = time.perf_counter()
    with pytest.raises(UsageError, match=match):
        CoremlExporter().export(cnn_source, tmp_path, options)
    assert time.perf_counter() - start < 1.0
    assert list(tmp_path.iterdir()) == []


def test_label_count_mismatch_is_a_usage_error(cnn_source, tmp_path):
    source = contract_source(cnn_source.model, labels=("a", "b"))
    with pytest.raises(UsageError, match="10 classes but 2 labels"):
        CoremlExporter().export(source, tmp_path, ExportOptions())


def _save_module(tmp_path, module, signature):
    import tensorflow as tf

    tf.saved_model.save(module, str(tmp_path / "sm" / "1"), signatures={"predict": signature})
    return ModelVersion(tmp_path / "sm", 1)


def test_unconvertible_op_is_an_export_error_naming_the_format(tmp_path):
    import tensorflow as tf

    class Odd(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.ones((16, 3), np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32, name="images")])
        def predict(self, images):
            return {"scores": tf.nn.softmax(tf.math.bessel_i0e(images) @ self.w)}

    module = Odd()
    source = SourceModel(_save_module(tmp_path, module, module.predict), "predict",
                         TensorInfo("images", "float32", (None, 16)), TensorInfo("scores", "float32", (None, 3)),
                         ImageLayout(4, 4, 1), ("a", "b", "c"), False, "x")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError, match=r"CoreML \(neuralnetwork, \.mlmodel\).*BesselI0e.*--formats") as info:
        CoremlExporter().export(source, out, ExportOptions())
    assert "\n" not in str(info.value)
    assert isinstance(info.value.__cause__, NotImplementedError)


def test_generic_rgb_100_class_model_exports_and_evaluates(tmp_path):
    """A predict signature over NHWC 32x32x3 images, 100 classes, labels "0".."99" (no label file)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(5)
    inputs = keras.Input(shape=(32, 32, 3), name="pixels")
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.AveragePooling2D(2)(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(100, activation="softmax")(h))
    # Non-trivial batch-norm statistics, so folding them wrongly would show.
    bn = model.layers[2]
    bn.set_weights([w + np.random.default_rng(0).uniform(0.5, 1.5, w.shape).astype(np.float32)
                    for w in bn.get_weights()])

    class Generic(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32, name="pixels")])
        def predict(self, pixels):
            return {"probabilities": self.model(pixels, training=False)}

    module = Generic()
    labels = tuple(str(i) for i in range(100))
    source = SourceModel(_save_module(tmp_path, module, module.predict), "predict",
                         TensorInfo("pixels", "float32", (None, 32, 32, 3)),
                         TensorInfo("probabilities", "float32", (None, 100)), ImageLayout(32, 32, 3), labels,
                         False, "generic")
    out = tmp_path / "out"
    out.mkdir()
    arts = CoremlExporter().export(source, out, ExportOptions(coreml_name="CifarClassifier"))
    assert sorted(a.path for a in arts) == ["CifarClassifier.mlmodel", "CifarClassifier.mlpackage"]
    x = np.random.default_rng(1).random((16, 32, 32, 3), dtype=np.float32)
    want = module.predict(tf.constant(x))["probabilities"].numpy()
    for artifact, tol in (("CifarClassifier.mlmodel", FP32_TOL), ("CifarClassifier.mlpackage", FP16_TOL)):
        spec = coremleval.load_spec(out / artifact)
        image = _feature(spec, IMAGE_INPUT).type.imageType
        assert (image.width, image.height, image.colorSpace) == (32, 32, 20)   # 20 = RGB
        runner = CoremlRunner(out / artifact, source)
        assert runner.labels == labels
        got = runner.run({"pixels": x})["probabilities"]
        assert got.shape == (16, 100)
        assert np.abs(got - want).max() <= tol, f"{artifact}: max |diff| {np.abs(got - want).max():.3g}"
