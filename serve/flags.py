"""``tensorflow_model_server``'s command line, flag by flag (TF Serving 2.20, ``model_servers/main.cc``).

Every flag of the pinned release is in :data:`TF_SERVING_FLAGS` with its name, type and default
(``server.h``, ``Server::Options``). A flag either works as in TF Serving, or has no meaning on this
runtime (GPU, XLA, TPU, TF's profiler...) and is accepted with one log line saying it is ignored and
why (:attr:`Flag.ignored`). Values are written as TF Serving's and absl's parsers take them:
``--flag=value`` or ``--flag value``; booleans bare (``--enable_batching``) or with a value
(``=true``/``=false``, ``=1``/``=0``, ``yes``/``no``, ``t``/``f``, any case, as absl's ``AbslParseFlag``).

Where tfship's default differs from TF Serving's, on purpose, :attr:`Flag.tfship_default` says so:
``--rest_api_port`` is 8501 (TF Serving: 0, REST off) because ``tfship serve`` is used by hand, and
``--port 0`` picks a free port unless ``--grpc_socket_path`` is given (TF Serving refuses port 0
without a socket; with one, port 0 turns TCP off, as here).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

# The TF Serving release whose API and command line tfship serve speaks (the Dockerfile's image).
TF_SERVING_RELEASE = "2.20.0"

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def absl_bool(text: str) -> bool:
    """A boolean flag's value as absl parses it (``absl/flags/marshalling.cc``, ``AbslParseFlag``)."""
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"'{text}' is not a boolean (true/false, 1/0, yes/no)")


def _cpus() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Flag:
    name: str
    type: type  # bool, int, float, str or Path
    default: object  # TF Serving's default (Server::Options); None: auto or unset
    help: str
    ignored: str = ""  # non-empty: accepted, logged as ignored, for this reason
    tfship_default: object = None  # set when tfship's default differs from TF Serving's


_NO_GPU = "this runtime serves on CPU (no GPU, XLA or TPU)"
_TFLITE_POOL = "the tflite backend runs one interpreter per thread of its own; there is no pool to size"

TF_SERVING_FLAGS: tuple[Flag, ...] = (
    Flag("port", int, 8500, "gRPC TCP port (0: a free port; with --grpc_socket_path, 0 turns TCP off)"),
    Flag("grpc_socket_path", str, "", "also serve gRPC on this UNIX socket (relative or absolute path)"),
    Flag("rest_api_port", int, 0, "REST port (0: REST off)", tfship_default=8501),
    Flag("rest_api_num_threads", int, None, "threads for REST and gRPC calls that block (metadata, classify, "
         "unbatched predict); default: 4 per core, at least 64"),
    Flag("rest_api_timeout_in_ms", int, 30000, "a REST call not answered in this time ends with 504 "
         "DEADLINE_EXCEEDED (<= 0: no limit)"),
    Flag("rest_api_enable_cors_support", bool, False, "CORS headers on every REST answer, and OPTIONS preflights"),
    Flag("enable_batching", bool, False, "batch concurrent requests on the server"),
    Flag("allow_version_labels_for_unavailable_models", bool, False, "a model config may give a new label to "
         "a version not loaded yet"),
    Flag("batching_parameters_file", Path, None, "text BatchingParameters (needs --enable_batching, as in "
         "TF Serving; tfship turns batching on for it)"),
    Flag("enable_per_model_batching_parameters", bool, False, "TF Serving reads batching_params.pbtxt from "
         "each SavedModel",
         ignored="per-model batching files are not read; --batching_parameters_file applies to every model"),
    Flag("model_config_file", Path, None, "text ModelServerConfig: several models, version policies, labels"),
    Flag("model_config_file_poll_wait_seconds", float, 0.0, "re-read --model_config_file this often (0: never)"),
    Flag("model_name", str, "default", "model name in URLs and requests", tfship_default="mnist"),
    Flag("model_base_path", Path, None, "folder holding <version>/saved_model.pb"),
    Flag("num_load_threads", int, 0, "threads that load versions (0: loads run in the manager's loop)"),
    Flag("num_unload_threads", int, 0, "threads that unload versions (0: unloads run in the manager's loop)"),
    Flag("max_num_load_retries", int, 5, "retries of a failed version load before giving up (0: one attempt)"),
    Flag("load_retry_interval_micros", int, 60_000_000, "wait between load retries (< 0: no wait)"),
    Flag("file_system_poll_wait_seconds", float, 1.0, "look for new versions this often (0: once at start)"),
    Flag("flush_filesystem_caches", bool, True, "flush TF's file system caches after loads",
         ignored="tfship reads models through the OS file system, which keeps no cache of its own to flush"),
    Flag("tensorflow_session_parallelism", int, 0, "threads of a TensorFlow session: intra- and inter-op "
         "(0: auto)"),
    Flag("tensorflow_session_config_file", Path, None, "text ConfigProto: its thread counts are applied"),
    Flag("tensorflow_intra_op_parallelism", int, 0, "threads one TensorFlow op may use (0: auto; with "
         "--workers N, cores/N)"),
    Flag("tensorflow_inter_op_parallelism", int, 0, "TensorFlow ops run at once (0: auto; with --workers N, "
         "cores/N)"),
    Flag("use_alts_credentials", bool, False, "gRPC with Google ALTS credentials (only on Google Cloud)"),
    Flag("ssl_config_file", Path, None, "text SSLConfig: server_key, server_cert, custom_ca, client_verify "
         "(TLS, or mutual TLS, for gRPC)"),
    Flag("platform_config_file", Path, None, "text PlatformConfigMap for TF Serving's C++ platforms",
         ignored="tfship has no C++ source adapters to configure; --backend chooses the runtime"),
    Flag("per_process_gpu_memory_fraction", float, 0.0, "GPU memory share", ignored=_NO_GPU),
    Flag("saved_model_tags", str, "serve", "comma-separated tags of the MetaGraphDef to load"),
    Flag("grpc_channel_arguments", str, "", "gRPC server arguments, e.g. grpc.max_connection_age_ms=2000,"
         "grpc.keepalive_time_ms=10000 (integers passed as integers)"),
    Flag("grpc_max_threads", int, None, "threads for gRPC calls that block (shares the pool of "
         "--rest_api_num_threads; the larger wins)"),
    Flag("enable_model_warmup", bool, True, "replay <version>/assets.extra/tf_serving_warmup_requests before "
         "a version serves; a failed replay fails the load"),
    Flag("num_request_iterations_for_warmup", int, 0, "times each warmup request is replayed (used if > 0)"),
    Flag("version", bool, False, "print tfship's version and the TF Serving release it speaks, and exit"),
    Flag("monitoring_config_file", Path, None, "text MonitoringConfig; Prometheus metrics at its path"),
    Flag("remove_unused_fields_from_bundle_metagraph", bool, True, "drop unused MetaGraphDef fields",
         ignored="tfship keeps only the SignatureDefs of a MetaGraphDef already"),
    Flag("prefer_tflite_model", bool, False, "serve each version's verified TFLite artifact (the tflite "
         "backend); versions without one are served by TensorFlow"),
    Flag("num_tflite_pools", int, None, "TFLite interpreter pools", ignored=_TFLITE_POOL),
    Flag("num_tflite_interpreters_per_pool", int, 1, "TFLite interpreters per pool", ignored=_TFLITE_POOL),
    Flag("enable_signature_method_name_check", bool, False, "require each SignatureDef's method_name to match "
         "the API called (TF1 models)"),
    Flag("xla_cpu_compilation_enabled", bool, False, "XLA:CPU JIT",
         ignored="signatures run as TensorFlow's eager functions compiled them at export; no JIT is turned on"),
    Flag("xla_gpu_compilation_enabled", bool, False, "XLA:GPU JIT", ignored=_NO_GPU),
    Flag("enable_profiler", bool, True, "TensorFlow's profiler gRPC service",
         ignored="tfship registers no profiler service; use Prometheus metrics (--monitoring_config_file)"),
    Flag("thread_pool_factory_config_file", Path, None, "text ThreadPoolConfig for custom inter/intra-op pools",
         ignored="TF Serving's thread pool factories are C++ plug-ins; use the parallelism flags"),
    Flag("mixed_precision", str, "", "mixed precision mode (bfloat16)", ignored=_NO_GPU),
    Flag("skip_initialize_tpu", bool, False, "skip TPU initialization", ignored=_NO_GPU),
    Flag("enable_grpc_healthcheck_service", bool, False, "the standard grpc.health.v1 service",
         ignored="tfship always serves grpc.health.v1 (SERVING for '', PredictionService and ModelService)"),
    Flag("enable_serialization_as_tensor_content", bool, False, "gRPC Predict answers in tensor_content"),
)
FLAGS = {f.name: f for f in TF_SERVING_FLAGS}


def add_to(parser: argparse.ArgumentParser) -> None:
    """Add every TF Serving flag to ``parser``. Unset flags parse to None (see :func:`value`)."""
    group = parser.add_argument_group(f"tensorflow_model_server {TF_SERVING_RELEASE} flags")
    for f in TF_SERVING_FLAGS:
        default = f.tfship_default if f.tfship_default is not None else f.default
        text = f.help + (f" [accepted, ignored: {f.ignored}]" if f.ignored else "")
        if default not in (None, "") and f.name != "version":
            text += f" (default: {default}" + (f"; TF Serving: {f.default})" if f.tfship_default is not None else ")")
        if f.type is bool:
            group.add_argument(f"--{f.name}", type=absl_bool, nargs="?", const=True, default=None,
                               metavar="true|false", help=text)
        else:
            group.add_argument(f"--{f.name}", type=f.type, default=None, help=text)


def value(args: argparse.Namespace, name: str):
    """A flag's value: what was given, else tfship's default, else TF Serving's."""
    given = getattr(args, name)
    if given is not None:
        return given
    f = FLAGS[name]
    return f.tfship_default if f.tfship_default is not None else f.default


def ignored_lines(args: argparse.Namespace) -> list[str]:
    """One line for each ignored flag that was given: what it was, that it is ignored, and why."""
    return [f"--{f.name}={getattr(args, f.name)} is accepted and ignored: {f.ignored}"
            for f in TF_SERVING_FLAGS if f.ignored and getattr(args, f.name) is not None]


def version_text() -> str:
    from tfship import __version__

    return f"tfship: {__version__}\nTensorFlow ModelServer API: {TF_SERVING_RELEASE}\n"


def default_threads() -> int:
    """REST/gRPC blocking-call threads when neither thread flag is given: TF Serving's 4 per core, but at
    least 64, tfship's pool size before these flags (unbatched predicts wait in it)."""
    return max(4 * _cpus(), 64)
