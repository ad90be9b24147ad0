"""gRPC over TLS and mutual TLS (TF Serving's --ssl_config_file), gRPC on a UNIX socket, CORS and timeouts.

Certificates are made here with the openssl command line: a CA, a server certificate for 127.0.0.1
and localhost, a client certificate from the same CA, and one from another CA that must be refused.
TF Serving's behaviour (model_servers/server.cc, BuildServerCredentials; http_server.cc for CORS
and OPTIONS; http_rest_api_util.cc AddCORSHeaders) is the reference.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import requests
from serve_helpers import MODEL, predict_request

BIG_BATCH = 1000  # ~0.2 s of decoding and CNN work on 2 cores: far over the 50 ms timeout below


def _openssl(*args: str, cwd: Path) -> None:
    import shutil

    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is not installed (apt-get install openssl; .ci/run installs it)")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
             "-days", "2", "-subj", f"/CN={name}", cwd=d)


def _signed(d: Path, name: str, ca: str, san: str = "") -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={name}", cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", ext.name, cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    _ca(d, "ca")
    _ca(d, "rogue-ca")
    _signed(d, "server", "ca", "IP:127.0.0.1,DNS:localhost")
    _signed(d, "client", "ca")
    _signed(d, "rogue-client", "rogue-ca")
    return d


def _ssl_config(certs: Path, client_verify: bool) -> Path:
    """An SSLConfig text proto as TF Serving reads it (config/ssl_config.proto)."""
    fields = {"server_key": (certs / "server.key").read_text(), "server_cert": (certs / "server.pem").read_text(),
              "custom_ca": (certs / "ca.pem").read_text()}
    text = "".join(f"{k}: {json.dumps(v)}\n" for k, v in fields.items())
    path = certs / f"ssl-{client_verify}.config"
    path.write_text(text + f"client_verify: {str(client_verify).lower()}\n")
    return path


def _server(serve_base, **kw):
    from tfship.serve.config import ModelConfig, read_ssl_file
    from tfship.serve.server import ModelServer, ServerOptions

    ssl_file = kw.pop("ssl_file", None)
    opts = ServerOptions(models=(ModelConfig(MODEL, serve_base),), grpc_port=0, poll_seconds=0, grace_seconds=2,
                         ssl=read_ssl_file(ssl_file) if ssl_file else None, **kw)
    server = ModelServer(opts)
    server.start()
    return server


@pytest.fixture(scope="module")
def tls_server(serve_base, certs, tmp_path_factory):
    """TLS without client certificates; also a UNIX socket, CORS and a 50 ms REST timeout."""
    socket_path = tmp_path_factory.mktemp("sock") / "grpc.sock"
    server = _server(serve_base, ssl_file=_ssl_config(certs, False), rest_port=0, cors=True, rest_timeout_ms=50,
                     grpc_socket_path=str(socket_path))
    yield server, socket_path
    server.stop()


@pytest.fixture(scope="module")
def mtls_server(serve_base, certs):
    server = _server(serve_base, ssl_file=_ssl_config(certs, True), rest_port=None)
    yield server
    server.stop()


def _status_stub(target: str, credentials=None):
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc

    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    return channel, model_service_pb2_grpc.ModelServiceStub(channel)


def _status_request():
    from tensorflow_serving.apis import get_model_status_pb2

    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = MODEL
    return req


def _credentials(certs: Path, client: str | None = None):
    import grpc

    key = (certs / f"{client}.key").read_bytes() if client else None
    chain = (certs / f"{client}.pem").read_bytes() if client else None
    return grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes(), key, chain)


def test_tls_with_the_official_stubs(tls_server, certs):
    server, _ = tls_server
    channel, stub = _status_stub(f"localhost:{server.grpc_port}", _credentials(certs))
    with channel:
        assert stub.GetModelStatus(_status_request(), timeout=10).model_version_status[0].state == 30  # AVAILABLE


def test_tls_refuses_a_plaintext_client(tls_server):
    import grpc

    server, _ = tls_server
    channel, stub = _status_stub(f"127.0.0.1:{server.grpc_port}")
    with channel, pytest.raises(grpc.RpcError) as e:
        stub.GetModelStatus(_status_request(), timeout=3)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_with_the_project_client(tls_server, certs, images):
    from tfship.clients import connect

    server, _ = tls_server
    with connect(f"grpcs://localhost:{server.grpc_port}", MODEL, root_certificates=certs / "ca.pem") as client:
        assert client.status().versions[0].state == "AVAILABLE"
        assert client.predict(images[:2].reshape(2, 28, 28)).scores.shape == (2, 10)


def test_tls_with_the_tfship_command(tls_server, certs):
    import sys

    server, _ = tls_server
    proc = subprocess.run([sys.executable, "-m", "tfship.cli", "status", "--server",
                           f"grpcs://localhost:{server.grpc_port}", "--model", MODEL, "--root-cert",
                           str(certs / "ca.pem")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "AVAILABLE" in proc.stdout


def test_mutual_tls_accepts_the_cas_client_and_refuses_others(mtls_server, certs):
    import grpc

    target = f"localhost:{mtls_server.grpc_port}"
    channel, stub = _status_stub(target, _credentials(certs, "client"))
    with channel:
        assert stub.GetModelStatus(_status_request(), timeout=10).model_version_status[0].state == 30
    for client in ("rogue-client", None):  # a certificate from another CA; no certificate at all
        channel, stub = _status_stub(target, _credentials(certs, client))
        with channel, pytest.raises(grpc.RpcError) as e:
            stub.GetModelStatus(_status_request(), timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, client


def test_mutual_tls_with_the_project_client_and_command(mtls_server, certs, images):
    import sys

    from tfship.clients import NO_RETRY, ServerUnavailableError, connect

    target = f"grpcs://localhost:{mtls_server.grpc_port}"
    with connect(target, MODEL, root_certificates=certs / "ca.pem", client_certificate=certs / "client.pem",
                 client_key=certs / "client.key") as client:
        assert client.predict(images[:2].reshape(2, 28, 28)).scores.shape == (2, 10)
    for name in ("rogue-client", None):  # a certificate from another CA; none at all
        extra = {"client_certificate": certs / f"{name}.pem", "client_key": certs / f"{name}.key"} if name else {}
        with connect(target, MODEL, root_certificates=certs / "ca.pem", retry=NO_RETRY, timeout=5, **extra) as client:
            with pytest.raises(ServerUnavailableError):
                client.status()
    command = [sys.executable, "-m", "tfship.cli", "status", "--server", target, "--model", MODEL,
               "--root-cert", str(certs / "ca.pem"), "--attempts", "1"]
    ok = subprocess.run([*command, "--client-cert", str(certs / "client.pem"), "--client-key",
                         str(certs / "client.key")], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "AVAILABLE" in ok.stdout, ok.stderr
    half = subprocess.run([*command, "--client-cert", str(certs / "client.pem")], capture_output=True, text=True,
                          timeout=60)
    assert half.returncode != 0 and "--client-cert and --client-key go together" in half.stderr


def test_grpc_on_a_unix_socket_beside_tcp(tls_server, certs, images):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    _, socket_path = tls_server
    import grpc

    # The server certificate names localhost; over a UNIX socket the client checks that name.
    channel = grpc.secure_channel(f"unix:{socket_path}", _credentials(certs),
                                  options=[("grpc.ssl_target_name_override", "localhost")])
    with channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        out = stub.Predict(predict_request(images), timeout=10)
    assert out.outputs["scores"].tensor_shape.dim[0].size == len(images)


def test_cors_headers_and_preflight(tls_server):
    server, _ = tls_server
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}"
    r = requests.get(url, timeout=10)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Allow-Methods"] == "POST, GET"
    assert r.headers["Access-Control-Allow-Headers"] == "Content-Type"
    ok = requests.options(url + ":predict", headers={"Origin": "https://app.example"}, timeout=10)
    assert (ok.status_code, ok.content) == (200, b"")
    assert ok.headers["Access-Control-Allow-Origin"] == "*"
    refused = requests.options(url + ":predict", timeout=10)  # no Origin: TF Serving's FAILED_PRECONDITION
    assert refused.status_code == 400


def test_rest_timeout_answers_504_with_tf_servings_message(tls_server):
    server, _ = tls_server
    batch = np.random.default_rng(0).random((BIG_BATCH, 784), dtype=np.float32).round(2)
    body = json.dumps({"signature_name": "predict_images", "instances": batch.tolist()})
    r = requests.post(f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}:predict", data=body, timeout=60)
    assert r.status_code == 504
    assert r.json() == {"error": "Timed out waiting for notification"}
    assert requests.get(f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}", timeout=10).ok  # still serving


def test_cors_off_by_default(server, rest_url):
    r = requests.get(f"{rest_url}/v1/models/{MODEL}", timeout=10)
    assert "Access-Control-Allow-Origin" not in r.headers


def test_grpc_deadline_ends_the_call_and_the_server_keeps_serving(prediction_stub, images):
    import grpc

    batch = np.random.default_rng(0).random((BIG_BATCH, 784), dtype=np.float32)
    with pytest.raises(grpc.RpcError) as e:
        prediction_stub.Predict(predict_request(batch), timeout=0.05)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert prediction_stub.Predict(predict_request(images), timeout=30).outputs["scores"].tensor_shape.dim[0].size == 4
