"""The Kubernetes manifests `tfship serve --write-config` writes, validated offline (no cluster here).

Built-in kinds against Kubernetes' own JSON schemas of a pinned version (kubernetes-validate, strict:
unknown fields fail); the InferenceService's shape against what KServe's v1beta1 API says
(modelFormat tensorflow, protocolVersion v1, storageUri); and names, ports and paths against the
Dockerfile and the generated config files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from serve_helpers import MODEL

from tfship.serve import config, k8s

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.33.0"  # a pinned, currently supported release (kubernetes-validate ships its schemas)


@pytest.fixture(scope="module")
def written(serve_base, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cfg")
    config.write_container_config(serve_base, out, MODEL)
    k8s.write(out, MODEL)
    return out


def _docs(written: Path) -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all((written / k8s.MANIFESTS_FILE).read_text())}


def test_builtin_kinds_validate_against_the_kubernetes_schemas(written):
    import kubernetes_validate

    docs = _docs(written)
    assert sorted(docs) == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]
    for doc in docs.values():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_wrong_manifest_is_refused(written):
    import kubernetes_validate

    deployment = _docs(written)["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8500"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = _docs(written)["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # typo: unknown field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_deployment_agrees_with_the_dockerfile_and_configs(written):
    docs = _docs(written)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM (\S+)", dockerfile, re.M).group(1) == config.TF_SERVING_IMAGE
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*?\])", dockerfile, re.S | re.M).group(1).replace("\\\n", ""))
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert [*container["command"], *container["args"]] == entry
    assert container["image"] == config.TF_SERVING_IMAGE
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}
    assert re.findall(r"^EXPOSE (\d+) (\d+)", dockerfile, re.M) == [("8500", "8501")]
    assert {p["port"] for p in docs["Service"]["spec"]["ports"]} == {8500, 8501}
    # The ConfigMap holds exactly the files the flags name, mounted where the flags look.
    cm = docs["ConfigMap"]["data"]
    for name in (config.MODEL_CONFIG_FILE, config.BATCHING_FILE, config.MONITORING_FILE):
        assert cm[name] == (written / name).read_text()
        assert any(a.endswith(f"={config.CONTAINER_CONFIG_DIR}/{name}") for a in container["args"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["config"] == config.CONTAINER_CONFIG_DIR
    assert f'base_path: "{mounts["models"]}"' in cm[config.MODEL_CONFIG_FILE]
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{MODEL}"
    assert pod["volumes"][0]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]
    selector = docs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    assert docs["Service"]["spec"]["selector"] == selector


def _kserve_models():
    """kserve's generated model classes (kserve.models), without its package __init__: that imports
    the model server, whose dependencies (protobuf 6, ...) are not installed here. The Makefile
    installs kserve with --no-deps for this test; the models need only urllib3 and six."""
    import importlib
    import importlib.util
    import sys
    import types

    if "kserve" not in sys.modules:
        spec = importlib.util.find_spec("kserve")
        if spec is None:
            pytest.fail("kserve is not installed (the Makefile runs: pip install --no-deps kserve==0.21.0)")
        package = types.ModuleType("kserve")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["kserve"] = package
    return importlib.import_module("kserve.models")


def _build(models, type_name: str, value, where: str):
    """``value`` (YAML) as kserve's class ``type_name``: unknown fields and wrong types fail, and each
    class's constructor checks its own required fields (client-side validation)."""
    scalars = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}
    if type_name in scalars:
        assert isinstance(value, scalars[type_name]), f"{where}: {value!r} is not {type_name}"
        return value
    if type_name.startswith("list["):
        return [_build(models, type_name[5:-1], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if type_name.startswith("dict("):
        inner = type_name[5:-1].split(", ", 1)[1]
        return {k: _build(models, inner, v, f"{where}.{k}") for k, v in value.items()}
    if not hasattr(models, type_name):  # a Kubernetes core type (V1ObjectMeta): kubernetes-validate checks those
        return value
    klass = getattr(models, type_name)
    fields = {json_name: name for name, json_name in klass.attribute_map.items()}
    unknown = set(value) - set(fields)
    assert not unknown, f"{where}: {type_name} has no field {sorted(unknown)}"
    return klass(**{fields[k]: _build(models, klass.openapi_types[fields[k]], v, f"{where}.{k}")
                    for k, v in value.items()})


def test_inference_service_with_kserves_own_model_classes(written):
    models = _kserve_models()
    isvc = yaml.safe_load((written / k8s.INFERENCE_SERVICE_FILE).read_text())
    built = _build(models, "V1beta1InferenceService", isvc, "InferenceService")
    model = built.spec.predictor.model
    assert (built.api_version, built.kind) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert (model.model_format.name, model.protocol_version) == ("tensorflow", "v1")
    claim = _docs(written)["Deployment"]["spec"]["template"]["spec"]["volumes"][1]["persistentVolumeClaim"]
    assert model.storage_uri == f"pvc://{claim['claimName']}/"  # the same volume as the Deployment's
    import kubernetes_validate

    kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": isvc["metadata"]},
                                 KUBERNETES_VERSION, strict=True)  # its ObjectMeta, by the Kubernetes schema


def test_a_wrong_inference_service_is_refused(written):
    models = _kserve_models()
    isvc = yaml.safe_load((written / k8s.INFERENCE_SERVICE_FILE).read_text())
    isvc["spec"]["predictor"]["model"]["storageURI"] = isvc["spec"]["predictor"]["model"].pop("storageUri")
    with pytest.raises(AssertionError, match="V1beta1ModelSpec has no field \\['storageURI'\\]"):
        _build(models, "V1beta1InferenceService", isvc, "InferenceService")
    isvc = yaml.safe_load((written / k8s.INFERENCE_SERVICE_FILE).read_text())
    del isvc["spec"]["predictor"]["model"]["modelFormat"]  # required by KServe's ModelSpec
    with pytest.raises(ValueError, match="Invalid value for `model_format`, must not be `None`"):
        _build(models, "V1beta1InferenceService", isvc, "InferenceService")
    isvc = yaml.safe_load((written / k8s.INFERENCE_SERVICE_FILE).read_text())
    isvc["spec"]["predictor"]["minReplicas"] = "one"
    with pytest.raises(AssertionError, match="minReplicas: 'one' is not int"):
        _build(models, "V1beta1InferenceService", isvc, "InferenceService")


def test_write_config_command_writes_the_manifests(serve_base, tmp_path, capsys):
    from tfship.cli import main

    assert main(["serve", "--model", str(serve_base.parent), "--write-config", str(tmp_path)]) == 0
    printed = sorted(Path(p).name for p in capsys.readouterr().out.split())
    assert printed == sorted([config.MODEL_CONFIG_FILE, config.BATCHING_FILE, config.MONITORING_FILE,
                              k8s.MANIFESTS_FILE, k8s.INFERENCE_SERVICE_FILE])


def test_committed_manifests_match_the_committed_container_configs(tmp_path):
    """deploy/ is what --write-config writes for the configs in docker/ (the mnist model)."""
    import shutil

    for name in (config.MODEL_CONFIG_FILE, config.BATCHING_FILE, config.MONITORING_FILE):
        shutil.copy(ROOT / "docker" / name, tmp_path / name)
    for path in k8s.write(tmp_path, MODEL):
        assert path.read_text() == (ROOT / "deploy" / path.name).read_text(), path.name
