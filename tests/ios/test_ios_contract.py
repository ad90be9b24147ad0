"""The names the Swift code relies on (ModelContract.swift) match what the exporter writes.

Three views of one contract must agree: ModelContract.swift (what the app uses), APP_CONTRACT in
tfship.export.ios_install (what `tfship ios-install` checks before copying) and the spec of a
freshly exported MNISTClassifier.mlmodel, read with coremltools.
"""

from __future__ import annotations

import pytest

import ios_swift
from tfship import contract
from tfship.errors import SignatureError
from tfship.export.ios_install import (APP_CONTRACT, AppModelContract, check_mlmodel, contract_mismatches,
                                       read_mlmodel_contract)


def swift_contract() -> AppModelContract:
    values = ios_swift.read_contract(ios_swift.CONTRACT_FILE.read_bytes())
    return AppModelContract(
        class_name=values["className"],
        input_name=values["inputName"],
        image_width=values["imageSize"],
        image_height=values["imageSize"],
        color_space=values["colorSpace"],
        label_output=values["labelOutput"],
        probabilities_output=values["probabilitiesOutput"],
        labels=tuple(values["labels"]),
        pixel_scale=values["pixelScale"],
    )


def test_swift_contract_equals_the_python_mirror():
    assert contract_mismatches(APP_CONTRACT, swift_contract()) == []


def test_swift_server_names_are_tfship_and_tf_servings():
    values = ios_swift.read_contract(ios_swift.CONTRACT_FILE.read_bytes())
    assert values["Server.modelName"] == contract.DEFAULT_MODEL_NAME
    assert values["Server.signatureName"] == contract.PREDICT_SIGNATURE
    assert values["Server.outputName"] == contract.PREDICT_OUTPUT
    # TF Serving's REST predict API (g3doc/api_rest.md), row ("instances") format.
    assert values["Server.predictPathFormat"].replace("%@", values["Server.modelName"]) == "/v1/models/mnist:predict"
    assert (values["Server.signatureKey"], values["Server.instancesKey"], values["Server.predictionsKey"],
            values["Server.errorKey"]) == ("signature_name", "instances", "predictions", "error")
    # The compiled form Xcode puts into the bundle, which DigitClassifier loads by name.
    assert values["compiledModelExtension"] == "mlmodelc"


def test_exported_model_matches_the_swift_contract(exported_mlmodel):
    actual = read_mlmodel_contract(exported_mlmodel)
    assert contract_mismatches(swift_contract(), actual) == []
    assert actual.class_name == exported_mlmodel.stem == "MNISTClassifier"


def _rename_output(spec, old: str, new: str) -> None:
    import coremltools as ct

    ct.utils.rename_feature(spec, old, new)


# Each alteration is something an exporter change could do; each must be caught by its field.
ALTERATIONS = {
    "probabilities output renamed": (
        "probabilities_output",
        lambda spec: _rename_output(spec, APP_CONTRACT.probabilities_output, "Identity")),
    "label output renamed": (
        "label_output", lambda spec: _rename_output(spec, APP_CONTRACT.label_output, "label")),
    "input renamed": (
        "input_name", lambda spec: _rename_output(spec, APP_CONTRACT.input_name, "input_1")),
    "input width changed": (
        "image_width", lambda spec: setattr(spec.description.input[0].type.imageType, "width", 32)),
    "input height changed": (
        "image_height", lambda spec: setattr(spec.description.input[0].type.imageType, "height", 32)),
    "input made RGB": (
        "color_space", lambda spec: setattr(spec.description.input[0].type.imageType, "colorSpace", 20)),
    "labels changed": (
        "labels", lambda spec: spec.neuralNetworkClassifier.stringClassLabels.vector.__setitem__(0, "zero")),
    "pixel scaling dropped": (
        "pixel_scale", lambda spec: setattr(spec.neuralNetworkClassifier.preprocessing[0].scaler,
                                            "channelScale", 1.0)),
}


@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_an_altered_model_breaks_the_contract(alteration, exported_mlmodel, tmp_path):
    import coremltools as ct

    field, alter = ALTERATIONS[alteration]
    spec = ct.utils.load_spec(str(exported_mlmodel))
    alter(spec)
    altered = tmp_path / exported_mlmodel.name
    ct.utils.save_spec(spec, str(altered))

    problems = contract_mismatches(swift_contract(), read_mlmodel_contract(altered))
    assert [p.split(":")[0] for p in problems] == [field]
    with pytest.raises(SignatureError, match=field):
        check_mlmodel(altered, swift_contract())


def test_a_renamed_file_changes_the_class_name(exported_mlmodel, tmp_path):
    renamed = tmp_path / "MnistClassifier.mlmodel"
    renamed.write_bytes(exported_mlmodel.read_bytes())
    problems = contract_mismatches(swift_contract(), read_mlmodel_contract(renamed))
    assert problems == ["class_name: app expects 'MNISTClassifier', model has 'MnistClassifier'"]


def test_a_model_that_is_not_a_classifier_is_refused(exported_mlmodel, tmp_path):
    import coremltools as ct

    spec = ct.utils.load_spec(str(exported_mlmodel))
    plain = ct.proto.Model_pb2.Model()
    plain.CopyFrom(spec)
    plain.neuralNetwork.layers.extend(spec.neuralNetworkClassifier.layers)  # switches the oneof
    path = tmp_path / "MNISTClassifier.mlmodel"
    ct.utils.save_spec(plain, str(path))
    with pytest.raises(SignatureError, match="neuralNetworkClassifier"):
        read_mlmodel_contract(path)
