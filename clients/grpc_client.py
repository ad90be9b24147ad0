"""The gRPC transport: TF Serving's PredictionService / ModelService over one reused channel."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfship.clients.base import MAX_MESSAGE_BYTES, ModelClient
from tfship.clients.errors import ProtocolError, ServerError, ServerUnavailableError
from tfship.clients.results import (Metadata, ModelStatus, Signature, TensorSpec, VersionStatus)
from tfship.clients.tensors import from_tensor_proto, to_tensor_proto
from tfship.errors import UsageError, require

_SIGNATURE_DEF_MAP_URL = "type.googleapis.com/tensorflow.serving.SignatureDefMap"


def parse_target(target: str) -> tuple[str, bool]:
    """``grpc://host:port`` / ``grpcs://host:port`` / ``host:port`` -> (host:port, use TLS)."""
    for scheme, tls in (("grpcs://", True), ("grpc://", False)):
        if target.startswith(scheme):
            target = target[len(scheme):]
            return _check_host_port(target.rstrip("/")), tls
    if "://" in target:
        raise UsageError(f"gRPC target '{target}' must look like grpc://host:port, grpcs://host:port or host:port")
    return _check_host_port(target), False


def _check_host_port(target: str) -> str:
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"gRPC target '{target}' needs a host and a port, e.g. localhost:8500")
    return target


class GrpcClient(ModelClient):
    """TF Serving's gRPC API.

    ``target``: ``host:port``, ``grpc://host:port``, or ``grpcs://host:port`` for TLS.
    ``root_certificates``: PEM bytes or a file path; implies TLS (None with grpcs:// uses the
    system's roots). ``client_certificate`` and ``client_key`` (PEM bytes or file paths, both or
    neither; they imply TLS): this client's certificate chain and private key, for servers that verify
    clients (mutual TLS, TF Serving's ``client_verify``). Tensors go as packed ``tensor_content``.
    """

    def __init__(self, target: str, model: str = "mnist", *,
                 root_certificates: bytes | str | os.PathLike | None = None,
                 client_certificate: bytes | str | os.PathLike | None = None,
                 client_key: bytes | str | os.PathLike | None = None, **kwargs) -> None:
        address, tls = parse_target(target)
        if (client_certificate is None) != (client_key is None):
            raise UsageError("a client certificate needs its private key and a key its certificate: "
                             "give both or neither")
        tls = tls or root_certificates is not None or client_certificate is not None
        super().__init__(f"grpc{'s' if tls else ''}://{address}", model, **kwargs)
        grpc = require("grpc", "grpcio", "client", "the gRPC client")
        from tfship.clients import _proto

        self._grpc = grpc
        self._proto = _proto
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # Our own RetryPolicy decides about retries; gRPC's transparent retries would double them.
            ("grpc.enable_retries", 0),
            # gRPC waits up to 1 s (growing to 120 s) before redialling a refused address; keep its
            # redial as quick as our backoff so a server that starts late is found on the next try.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
            ("grpc.keepalive_time_ms", 60_000),
        ]
        if tls:
            credentials = grpc.ssl_channel_credentials(_read_pem(root_certificates, "root certificate"),
                                                       _read_pem(client_key, "client key"),
                                                       _read_pem(client_certificate, "client certificate"))
            self._channel = grpc.secure_channel(address, credentials, options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self._rpc_predict = self._method(_proto.PREDICT, _proto.PredictResponse)
        self._rpc_classify = self._method(_proto.CLASSIFY, _proto.ClassificationResponse)
        self._rpc_metadata = self._method(_proto.GET_MODEL_METADATA, _proto.GetModelMetadataResponse)
        self._rpc_status = self._method(_proto.GET_MODEL_STATUS, _proto.GetModelStatusResponse)

    def close(self) -> None:
        self._channel.close()

    def _method(self, path: str, response_class):
        return self._channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=response_class.FromString)

    def _call(self, rpc, request):
        try:
            return rpc(request, timeout=self.timeout)
        except self._grpc.RpcError as e:
            code = e.code().name if e.code() is not None else "UNKNOWN"
            details = e.details() or ""
            if code == "UNAVAILABLE":
                raise ServerUnavailableError(details, server=self.server) from e
            raise ServerError(code, details, server=self.server) from e

    def _spec(self, spec, signature: str = "") -> None:
        spec.name = self.model.name
        if self.model.version is not None:
            spec.version.value = self.model.version
        elif self.model.version_label is not None:
            spec.version_label = self.model.version_label
        if signature:
            spec.signature_name = signature

    @staticmethod
    def _answered_version(spec) -> int | None:
        return int(spec.version.value) if spec.HasField("version") else None

    def build_predict_request(self, batch: np.ndarray, signature: str, input_name: str,
                              output_names: tuple[str, ...] = (), packed: bool = True):
        request = self._proto.PredictRequest()
        self._spec(request.model_spec, signature)
        request.inputs[input_name].CopyFrom(to_tensor_proto(batch, packed=packed))
        request.output_filter.extend(output_names)
        return request

    def _predict(self, batch, plan):
        request = self.build_predict_request(batch, plan.signature, plan.input_name, plan.outputs())
        response = self._call(self._rpc_predict, request)
        outputs = {name: from_tensor_proto(response.outputs[name]) for name in plan.outputs()
                   if name in response.outputs}
        return outputs, self._answered_version(response.model_spec)

    def build_classify_request(self, batch: np.ndarray, signature: str, feature: str):
        request = self._proto.ClassificationRequest()
        self._spec(request.model_spec, signature)
        examples = request.input.example_list.examples
        for row in batch:
            examples.add().features.feature[feature].float_list.value.extend(row.tolist())
        return request

    def _classify(self, batch, signature, feature):
        response = self._call(self._rpc_classify, self.build_classify_request(batch, signature, feature))
        rows = [[(c.label, float(c.score)) for c in item.classes] for item in response.result.classifications]
        return rows, self._answered_version(response.model_spec)

    def _metadata(self) -> Metadata:
        request = self._proto.GetModelMetadataRequest()
        self._spec(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._call(self._rpc_metadata, request)
        packed = response.metadata.get("signature_def")
        if packed is None or packed.type_url != _SIGNATURE_DEF_MAP_URL:
            raise ProtocolError(f"{self.server}: metadata has no SignatureDefMap "
                                f"(got {packed.type_url if packed is not None else 'nothing'})")
        signature_map = self._proto.SignatureDefMap.FromString(packed.value)
        signatures = {name: Signature(sig.method_name, _tensor_specs(sig.inputs, self._proto),
                                      _tensor_specs(sig.outputs, self._proto))
                      for name, sig in sorted(signature_map.signature_def.items())}
        return Metadata(response.model_spec.name or self.model.name,
                        self._answered_version(response.model_spec), signatures)

    def _status(self) -> ModelStatus:
        request = self._proto.GetModelStatusRequest()
        self._spec(request.model_spec)
        response = self._call(self._rpc_status, request)
        states = self._proto.POOL.FindEnumTypeByName("tensorflow.serving.ModelVersionStatus.State")
        codes = self._proto.POOL.FindEnumTypeByName("tensorflow.error.Code")
        versions = tuple(
            VersionStatus(int(v.version), _enum_name(states, v.state), _enum_name(codes, v.status.error_code),
                          v.status.error_message)
            for v in response.model_version_status)
        return ModelStatus(self.model.name, versions)


def _enum_name(enum, number: int) -> str:
    value = enum.values_by_number.get(number)
    return value.name if value is not None else str(number)


def _tensor_specs(infos, proto) -> dict[str, TensorSpec]:
    dtypes = proto.POOL.FindEnumTypeByName("tensorflow.DataType")
    return {name: TensorSpec(_enum_name(dtypes, info.dtype),
                             None if info.tensor_shape.unknown_rank
                             else tuple(int(d.size) for d in info.tensor_shape.dim))
            for name, info in sorted(infos.items())}


def _read_pem(value: bytes | str | os.PathLike | None, what: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    path = Path(value)
    try:
        return path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {what} file '{path}': {e.strerror}") from e
