"""tensorflow_model_server's command line: every flag of TF Serving 2.20, its value syntax, and servers
started with KServe's and the container's command lines.

The flag list is checked against TF Serving 2.20's model_servers/main.cc (the names below are its
``tensorflow::Flag`` entries, in order); defaults against server.h's ``Server::Options``.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from serve_helpers import MODEL
from test_serve_cli import _free_port, _serve, _wait_available

from tfship.errors import UsageError
from tfship.serve import cli, flags

ROOT = Path(__file__).resolve().parents[2]
# TF Serving 2.20, tensorflow_serving/model_servers/main.cc, the flag_list of main().
MAIN_CC_FLAGS = (
    "port grpc_socket_path rest_api_port rest_api_num_threads rest_api_timeout_in_ms rest_api_enable_cors_support "
    "enable_batching allow_version_labels_for_unavailable_models batching_parameters_file "
    "enable_per_model_batching_parameters model_config_file model_config_file_poll_wait_seconds model_name "
    "model_base_path num_load_threads num_unload_threads max_num_load_retries load_retry_interval_micros "
    "file_system_poll_wait_seconds flush_filesystem_caches tensorflow_session_parallelism "
    "tensorflow_session_config_file tensorflow_intra_op_parallelism tensorflow_inter_op_parallelism "
    "use_alts_credentials ssl_config_file platform_config_file per_process_gpu_memory_fraction saved_model_tags "
    "grpc_channel_arguments grpc_max_threads enable_model_warmup num_request_iterations_for_warmup version "
    "monitoring_config_file remove_unused_fields_from_bundle_metagraph prefer_tflite_model num_tflite_pools "
    "num_tflite_interpreters_per_pool enable_signature_method_name_check xla_cpu_compilation_enabled "
    "xla_gpu_compilation_enabled enable_profiler thread_pool_factory_config_file mixed_precision "
    "skip_initialize_tpu enable_grpc_healthcheck_service enable_serialization_as_tensor_content").split()
# A value for each flag that is not a boolean, as a user would write it.
SAMPLE = {int: "3", float: "0.5", str: "serve", Path: "{file}"}


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    return parser.parse_args(list(argv))


def test_every_flag_of_main_cc_is_known_with_its_type():
    assert [f.name for f in flags.TF_SERVING_FLAGS] == MAIN_CC_FLAGS


def test_defaults_are_tf_servings(tmp_path):
    """server.h, Server::Options (2.20): the defaults a flag takes when not given."""
    args = _parse("--model", str(tmp_path))
    v = lambda name: flags.value(args, name)  # noqa: E731
    assert (v("port"), v("rest_api_timeout_in_ms"), v("max_num_load_retries")) == (8500, 30000, 5)
    assert (v("load_retry_interval_micros"), v("enable_model_warmup"), v("saved_model_tags")) == (60_000_000, True, "serve")
    assert (v("enable_batching"), v("rest_api_enable_cors_support"), v("flush_filesystem_caches")) == (False, False, True)
    assert v("rest_api_port") == 8501 and flags.FLAGS["rest_api_port"].default == 0  # tfship's, documented


@pytest.mark.parametrize("f", [f for f in flags.TF_SERVING_FLAGS if f.name != "version"], ids=lambda f: f.name)
def test_every_flag_is_accepted_in_both_spellings(f, tmp_path):
    file = tmp_path / "empty.txt"
    file.write_text("")
    value = "true" if f.type is bool else SAMPLE[f.type].format(file=file)
    for argv in ([f"--{f.name}={value}"], [f"--{f.name}", value]):
        args = _parse("--model", str(tmp_path), *argv)
        expected = True if f.type is bool else f.type(value)
        assert getattr(args, f.name) == expected


@pytest.mark.parametrize("spelling, expected", [
    ([], None), (["--enable_batching"], True), (["--enable_batching=true"], True), (["--enable_batching=false"], False),
    (["--enable_batching=1"], True), (["--enable_batching=0"], False), (["--enable_batching=False"], False),
    (["--enable_batching", "no"], False), (["--enable_batching=yes"], True)])
def test_booleans_parse_as_absl_does(spelling, expected, tmp_path):
    assert _parse("--model", str(tmp_path), *spelling).enable_batching is expected


def test_a_bad_boolean_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _parse("--model", str(tmp_path), "--enable_batching=maybe")
    assert "'maybe' is not a boolean" in capsys.readouterr().err


def test_ignored_flags_each_say_so_once(tmp_path):
    a = cli.parse(_parse("--model", str(tmp_path), "--per_process_gpu_memory_fraction=0.5", "--xla_cpu_compilation_enabled",
                         "--enable_profiler=false", "--num_load_threads=4"))
    assert len(a.ignored) == 4
    assert any(re.match(r"--per_process_gpu_memory_fraction=0.5 is accepted and ignored: .*GPU", line)
               for line in a.ignored)
    assert cli.parse(_parse("--model", str(tmp_path))).ignored == ()


def test_flag_meanings(tmp_path):
    a = cli.parse(_parse("--model", str(tmp_path), "--port=0", "--grpc_socket_path=/tmp/s.sock", "--saved_model_tags",
                         "serve,gpu", "--max_num_load_retries=2", "--load_retry_interval_micros=-1",
                         "--num_request_iterations_for_warmup=3", "--grpc_channel_arguments",
                         "grpc.max_connection_age_ms=2000,grpc.primary_user_agent=x", "--tensorflow_session_parallelism=2",
                         "--rest_api_num_threads=8", "--grpc_max_threads=100"))
    assert a.grpc_port is None and a.grpc_socket_path == "/tmp/s.sock"  # port 0 + socket: TCP off, as TF Serving
    assert a.load.saved_model_tags == ("serve", "gpu") and a.load.max_num_load_retries == 2
    assert a.load.load_retry_interval_seconds == 0 and a.load.warmup_iterations == 3
    assert a.channel_arguments == (("grpc.max_connection_age_ms", 2000), ("grpc.primary_user_agent", "x"))
    assert (a.intra_op_threads, a.inter_op_threads, a.worker_threads) == (2, 2, 100)


@pytest.mark.parametrize("argv, message", [
    (["--rest_api_port=8500"], "cannot be the same as --port"),
    (["--tensorflow_session_parallelism=1", "--tensorflow_intra_op_parallelism=1",
      "--tensorflow_inter_op_parallelism=1"], "not all three"),
    (["--use_alts_credentials", "--ssl_config_file=/etc/hosts"], "not both"),
    (["--ssl_config_file=/nonexistent"], "is not a file"),
    (["--grpc_channel_arguments=novalue"], "is not key=value"),
    (["--saved_model_tags=,"], "at least one tag"),
])
def test_flag_errors(argv, message, tmp_path):
    with pytest.raises(UsageError, match=message):
        cli.parse(_parse("--model", str(tmp_path), *argv))


def test_version_prints_both_versions():
    proc = subprocess.run([sys.executable, "-m", "tfship.cli", "serve", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert re.fullmatch(r"tfship: \S+\nTensorFlow ModelServer API: 2\.20\.0\n", proc.stdout)


def _serve_until_available(argv: list[str], rest_port: int) -> None:
    """Start ``tfship serve argv``, wait for the model to be AVAILABLE over REST, predict, then stop."""
    import json
    import signal

    proc = _serve(*argv)
    try:
        _wait_available(proc, rest_port)
        body = json.dumps({"signature_name": "predict_images", "instances": [[0.0] * 784]})
        r = requests.post(f"http://127.0.0.1:{rest_port}/v1/models/{MODEL}:predict", data=body, timeout=30)
        assert r.status_code == 200 and len(r.json()["predictions"][0]) == 10
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_kserve_runtime_command_line(serve_base):
    """KServe's TensorFlow ServingRuntime (config/runtimes/kserve-tensorflow-serving.yaml) starts
    TF Serving with these arguments; only the ports are free ones here."""
    grpc_port, rest_port = _free_port(), _free_port()
    _serve_until_available([f"--port={grpc_port}", f"--rest_api_port={rest_port}", f"--model_name={MODEL}",
                            f"--model_base_path={serve_base}", "--rest_api_timeout_in_ms=60000"], rest_port)


def test_container_entrypoint_command_line(serve_base, tmp_path):
    """The Dockerfile's ENTRYPOINT arguments, with the image's paths mapped to local folders and free ports."""
    from tfship.serve.config import write_container_config

    text = (ROOT / "Dockerfile").read_text()
    entry = re.search(r"^ENTRYPOINT (\[.*?\])", text, re.S | re.M).group(1)
    argv = [a for a in __import__("json").loads(entry.replace("\\\n", ""))][1:]
    write_container_config(serve_base, tmp_path / "etc", MODEL)
    config = tmp_path / "etc" / "models.config"
    config.write_text(config.read_text().replace("/models/mnist", str(serve_base)))
    grpc_port, rest_port = _free_port(), _free_port()
    mapped = [a.replace("/etc/tfship", str(tmp_path / "etc")).replace("--port=8500", f"--port={grpc_port}")
              .replace("--rest_api_port=8501", f"--rest_api_port={rest_port}") for a in argv]
    assert len([a for a in mapped if a.startswith(("--port=", "--rest_api_port="))]) == 2, shlex.join(argv)
    _serve_until_available(mapped, rest_port)


def test_ignored_flags_are_logged_once_when_serving(tmp_path):
    """Never silently: each ignored flag given is one log line on stderr, before the model is even read."""
    proc = subprocess.run([sys.executable, "-m", "tfship.cli", "serve", "--model", str(tmp_path / "none"),
                           "--per_process_gpu_memory_fraction=0.4", "--enable_profiler=false"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "does not exist" in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "is accepted and ignored" in line]
    assert len(lines) == 2
    assert "WARNING tfship.serve: --per_process_gpu_memory_fraction=0.4 is accepted and ignored" in lines[0]


def test_session_config_file_sets_the_thread_counts(tmp_path, caplog):
    import logging

    path = tmp_path / "session.config"
    path.write_text("intra_op_parallelism_threads: 3\ninter_op_parallelism_threads: 2\nallow_soft_placement: true\n")
    base = tmp_path / "base"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="tfship.serve"):
        opts = cli.options(cli.parse(_parse("--model_base_path", str(base), f"--tensorflow_session_config_file={path}")))
    assert (opts.intra_op_threads, opts.inter_op_threads) == (3, 2)
    assert "only the thread counts are applied; ignored: allow_soft_placement" in caplog.text
    opts = cli.options(cli.parse(_parse("--model_base_path", str(base), f"--tensorflow_session_config_file={path}",
                                        "--tensorflow_intra_op_parallelism=1")))
    assert (opts.intra_op_threads, opts.inter_op_threads) == (1, 2)  # a flag overrides the file, as in TF Serving
