"""The server's configuration: TF Serving's config files, read and written with TF Serving's protos.

- model config (``--model_config_file``): text ``ModelServerConfig`` from
  ``tensorflow_serving.config.model_server_config_pb2``: models, base paths, version policy, labels.
- batching parameters (``--batching_parameters_file``): text ``BatchingParameters``.
- monitoring config (``--monitoring_config_file``): text ``MonitoringConfig`` (Prometheus path).
- SSL config (``--ssl_config_file``): text ``SSLConfig`` (gRPC TLS and mutual TLS).
- gRPC channel arguments (``--grpc_channel_arguments``) and a session ``ConfigProto``'s thread counts.

:func:`write_container_config` writes all three from a model folder, so the container's files
describe the model they ship with.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tfship.errors import UsageError

# TF Serving's defaults when --enable_batching is given without a parameters file
# (servables/tensorflow/session_bundle_config.proto and batching_session.h).
DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_BATCH_TIMEOUT_MICROS = 0
DEFAULT_MAX_ENQUEUED_BATCHES = 10
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
CONTAINER_MODELS_ROOT = "/models"
CONTAINER_CONFIG_DIR = "/etc/tfship"
MODEL_CONFIG_FILE = "models.config"
BATCHING_FILE = "batching_parameters.txt"
MONITORING_FILE = "monitoring.config"
GRPC_PORT, REST_PORT = 8500, 8501
TF_SERVING_IMAGE = "tensorflow/serving:2.20.0"  # the Dockerfile's FROM (a test checks they agree)
# The Dockerfile's ENTRYPOINT flags, also the Kubernetes Deployment's args (a test checks they agree).
CONTAINER_FLAGS = (f"--port={GRPC_PORT}", f"--rest_api_port={REST_PORT}",
                   f"--model_config_file={CONTAINER_CONFIG_DIR}/{MODEL_CONFIG_FILE}", "--enable_batching=true",
                   f"--batching_parameters_file={CONTAINER_CONFIG_DIR}/{BATCHING_FILE}",
                   f"--monitoring_config_file={CONTAINER_CONFIG_DIR}/{MONITORING_FILE}",
                   "--file_system_poll_wait_seconds=1", "--model_config_file_poll_wait_seconds=30")


@dataclass(frozen=True)
class VersionPolicy:
    """Which on-disk versions to serve: ``latest`` (the ``num_versions`` highest), ``all`` or ``specific``."""

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, candidates: list[int]) -> list[int]:
        """The versions to serve among ``candidates`` (complete, loadable versions on disk)."""
        ordered = sorted(candidates)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[-self.num_versions:] if self.num_versions > 0 else []


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: Path
    policy: VersionPolicy = VersionPolicy()
    labels: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    batch_timeout_micros: int = DEFAULT_BATCH_TIMEOUT_MICROS
    max_enqueued_batches: int = DEFAULT_MAX_ENQUEUED_BATCHES
    num_batch_threads: int = max(os.cpu_count() or 1, 1)
    allowed_batch_sizes: tuple[int, ...] = ()


@dataclass(frozen=True)
class MonitoringOptions:
    prometheus_enabled: bool = False
    prometheus_path: str = DEFAULT_PROMETHEUS_PATH


@dataclass(frozen=True)
class SSLOptions:
    """TF Serving's ``SSLConfig``: PEM texts, and whether clients must show a certificate ``custom_ca`` signed."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False


@dataclass(frozen=True)
class LoadOptions:
    """How versions load (TF Serving's ``ServerCore::Options`` and ``SessionBundleConfig``)."""

    saved_model_tags: tuple[str, ...] = ("serve",)
    max_num_load_retries: int = 0  # tfship's library default; the CLI passes TF Serving's 5
    load_retry_interval_seconds: float = 60.0
    enable_model_warmup: bool = True
    warmup_iterations: int = 1
    allow_version_labels_for_unavailable_models: bool = False


def _read_text_proto(path: Path, message, what: str):
    from google.protobuf import text_format

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read {what} '{path}': {e.strerror}") from e
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise UsageError(f"{what} '{path}' is not a valid text {message.DESCRIPTOR.full_name}: {e}") from e


def read_model_config_file(path: Path) -> list[ModelConfig]:
    """Models from a ``ModelServerConfig`` text file. A relative base path is relative to the current
    folder, as in ``tensorflow_model_server`` (not to the config file)."""
    from tensorflow_serving.config import model_server_config_pb2

    proto = _read_text_proto(path, model_server_config_pb2.ModelServerConfig(), "model config file")
    return models_from_proto(proto, f"model config file '{path}'")


def models_from_proto(proto, where: str) -> list[ModelConfig]:
    """Models from a ``ModelServerConfig`` message (a config file, or a ReloadConfigRequest's config);
    ``where`` names it in errors."""
    if proto.WhichOneof("config") != "model_config_list":
        raise UsageError(f"{where} has no model_config_list (only that form is supported)")
    models = []
    for m in proto.model_config_list.config:
        if not m.name or not m.base_path:
            raise UsageError(f"{where}: every model needs a name and a base_path")
        if m.model_platform not in ("", "tensorflow"):
            raise UsageError(f"{where}: model '{m.name}' has platform '{m.model_platform}'; only 'tensorflow' "
                             "is served")
        models.append(ModelConfig(m.name, Path(m.base_path), _policy_from_proto(m.model_version_policy),
                                  dict(m.version_labels)))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise UsageError(f"{where} names a model twice: {names}")
    return models


def _policy_from_proto(policy) -> VersionPolicy:
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return VersionPolicy("all")
    if kind == "specific":
        return VersionPolicy("specific", versions=tuple(policy.specific.versions))
    if kind == "latest" and policy.latest.num_versions:
        return VersionPolicy("latest", num_versions=policy.latest.num_versions)
    return VersionPolicy()  # TF Serving's default: the latest version only


def read_batching_file(path: Path) -> BatchingOptions:
    from tfship.serve.protos import batching_parameters_class

    p = _read_text_proto(path, batching_parameters_class()(), "batching parameters file")
    defaults = BatchingOptions()
    opts = BatchingOptions(
        max_batch_size=p.max_batch_size.value if p.HasField("max_batch_size") else defaults.max_batch_size,
        batch_timeout_micros=(p.batch_timeout_micros.value if p.HasField("batch_timeout_micros")
                              else defaults.batch_timeout_micros),
        max_enqueued_batches=(p.max_enqueued_batches.value if p.HasField("max_enqueued_batches")
                              else defaults.max_enqueued_batches),
        num_batch_threads=(p.num_batch_threads.value if p.HasField("num_batch_threads")
                           else defaults.num_batch_threads),
        allowed_batch_sizes=tuple(p.allowed_batch_sizes))
    check_batching(opts, str(path))
    return opts


def check_batching(opts: BatchingOptions, where: str) -> None:
    """TF Serving's own checks on batching parameters (batching_session.cc)."""
    if opts.max_batch_size < 1 or opts.num_batch_threads < 1 or opts.max_enqueued_batches < 1:
        raise UsageError(f"{where}: max_batch_size, num_batch_threads and max_enqueued_batches must be >= 1")
    if opts.batch_timeout_micros < 0:
        raise UsageError(f"{where}: batch_timeout_micros must be >= 0")
    sizes = opts.allowed_batch_sizes
    if sizes:
        if list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
            raise UsageError(f"{where}: allowed_batch_sizes must be positive and strictly increasing")
        if sizes[-1] != opts.max_batch_size:
            raise UsageError(f"{where}: the last entry in allowed_batch_sizes must equal max_batch_size "
                             f"({sizes[-1]} != {opts.max_batch_size})")


def read_monitoring_file(path: Path) -> MonitoringOptions:
    from tfship.serve.protos import monitoring_config_class

    p = _read_text_proto(path, monitoring_config_class()(), "monitoring config file")
    prometheus = p.prometheus_config
    return MonitoringOptions(prometheus.enable, prometheus.path or DEFAULT_PROMETHEUS_PATH)


def check_version_labels(models: list[ModelConfig], available: Callable[[str], list[int]],
                         previous: Mapping[str, Mapping[str, int]], allow_unavailable: bool) -> None:
    """TF Serving's rule for labels (server_core.cc, UpdateModelVersionLabelMap): a label must name an
    AVAILABLE version, unless --allow_version_labels_for_unavailable_models and the label is new or
    keeps its version (moving an existing label still needs an available target)."""
    from tfship.serve.errors import FailedPreconditionError

    for m in models:
        for label, version in m.labels.items():
            old = previous.get(m.name, {}).get(label)
            if allow_unavailable and old in (None, version):
                continue
            if version not in available(m.name):
                raise FailedPreconditionError(f"Request to assign label to version {version} of model {m.name}, "
                                              "which is not currently available for inference")


def read_ssl_file(path: Path) -> SSLOptions:
    """``--ssl_config_file``: TF Serving requires a key and a certificate; ``client_verify`` needs a CA to
    verify clients against (gRPC refuses mutual TLS without one; here it is a usage error up front)."""
    from tfship.serve.protos import ssl_config_class

    p = _read_text_proto(path, ssl_config_class()(), "SSL config file")
    if not p.server_key or not p.server_cert:
        raise UsageError(f"SSL config file '{path}' needs both server_key and server_cert (PEM text)")
    if p.client_verify and not p.custom_ca:
        raise UsageError(f"SSL config file '{path}' sets client_verify but no custom_ca to verify clients with")
    return SSLOptions(p.server_key, p.server_cert, p.custom_ca, p.client_verify)


def parse_channel_arguments(text: str) -> tuple[tuple[str, int | str], ...]:
    """``--grpc_channel_arguments`` as TF Serving reads it (``server.cc``, parseGrpcChannelArgs):
    ``key=value`` pairs joined by commas; a value that is a 32-bit integer is passed as one."""
    pairs: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--grpc_channel_arguments: '{item}' is not key=value")
        try:
            number = int(raw)
        except ValueError:
            pairs.append((key, raw))
        else:
            pairs.append((key, number) if -2**31 <= number < 2**31 else (key, raw))
    return tuple(pairs)


def read_session_config_threads(path: Path) -> tuple[int, int, list[str]]:
    """``--tensorflow_session_config_file``: (intra_op, inter_op) thread counts (0: unset) from a text
    ``ConfigProto``, and the names of the other fields it sets, which this runtime does not apply."""
    from tensorflow.core.protobuf import config_pb2

    p = _read_text_proto(path, config_pb2.ConfigProto(), "TensorFlow session config file")
    others = [f.name for f, _ in p.ListFields()
              if f.name not in ("intra_op_parallelism_threads", "inter_op_parallelism_threads")]
    return p.intra_op_parallelism_threads, p.inter_op_parallelism_threads, others


def model_config_text(models: list[ModelConfig]) -> str:
    """``models`` as a text ``ModelServerConfig`` (what ``--model_config_file`` reads)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    for m in models:
        c = proto.model_config_list.config.add(name=m.name, base_path=str(m.base_path), model_platform="tensorflow")
        if m.policy.kind == "all":
            c.model_version_policy.all.SetInParent()
        elif m.policy.kind == "specific":
            c.model_version_policy.specific.versions.extend(m.policy.versions)
        else:
            c.model_version_policy.latest.num_versions = m.policy.num_versions
        for label, version in sorted(m.labels.items()):
            c.version_labels[label] = version
    return text_format.MessageToString(proto)


def batching_text(opts: BatchingOptions) -> str:
    from google.protobuf import text_format

    from tfship.serve.protos import batching_parameters_class

    p = batching_parameters_class()()
    p.max_batch_size.value = opts.max_batch_size
    p.batch_timeout_micros.value = opts.batch_timeout_micros
    p.max_enqueued_batches.value = opts.max_enqueued_batches
    p.num_batch_threads.value = opts.num_batch_threads
    p.allowed_batch_sizes.extend(opts.allowed_batch_sizes)
    return text_format.MessageToString(p)


def monitoring_text(opts: MonitoringOptions) -> str:
    from google.protobuf import text_format

    from tfship.serve.protos import monitoring_config_class

    p = monitoring_config_class()()
    p.prometheus_config.enable = opts.prometheus_enabled
    p.prometheus_config.path = opts.prometheus_path
    return text_format.MessageToString(p)


# What the container serves with: batches of up to 32 single images gathered for at most 2 ms
# (a batch-1 CNN call costs ~3 ms here, so waiting 2 ms for company pays off under load), two
# batch threads for a small CPU container.
CONTAINER_BATCHING = BatchingOptions(max_batch_size=32, batch_timeout_micros=2000, max_enqueued_batches=100,
                                     num_batch_threads=2)


@dataclass(frozen=True)
class WrittenConfig:
    model_config: Path
    batching: Path
    monitoring: Path


def container_model_config(name: str, versions: list[int]) -> ModelConfig:
    """The container's view of a model whose complete versions on disk are ``versions``.

    It serves exactly the newest version (label ``stable``) and the one before it (label
    ``previous``, for an instant rollback). Labels may only name versions that are served, so the
    policy is ``specific``: a new version goes live when these files are rewritten (TF Serving
    re-reads its model config every ``--model_config_file_poll_wait_seconds``).
    """
    if not versions:
        raise UsageError(f"model '{name}' has no complete version to write a container config for")
    newest = sorted(versions)[-2:]
    labels = {"stable": newest[-1]}
    if len(newest) == 2:
        labels["previous"] = newest[0]
    return ModelConfig(name, Path(CONTAINER_MODELS_ROOT) / name, VersionPolicy("specific", versions=tuple(newest)),
                       labels)


def write_container_config(model_path: Path, out_dir: Path, name: str) -> WrittenConfig:
    """Write the container's model config, batching parameters and monitoring config for a model."""
    from tfship.savedmodel import list_versions, resolve_model

    base = resolve_model(model_path).base
    out_dir.mkdir(parents=True, exist_ok=True)
    written = WrittenConfig(out_dir / MODEL_CONFIG_FILE, out_dir / BATCHING_FILE, out_dir / MONITORING_FILE)
    written.model_config.write_text(model_config_text([container_model_config(name, list_versions(base))]))
    written.batching.write_text(batching_text(CONTAINER_BATCHING))
    written.monitoring.write_text(monitoring_text(MonitoringOptions(True, DEFAULT_PROMETHEUS_PATH)))
    return written
