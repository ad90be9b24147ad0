"""The REST transport: TF Serving's ``/v1/models/...`` JSON API over one keep-alive session."""

from __future__ import annotations

import base64
import json
import os
from typing import Literal

import numpy as np

from tfship.clients.base import ModelClient
from tfship.clients.errors import ProtocolError, ServerError, ServerUnavailableError, code_for_http_status
from tfship.clients.results import Metadata, ModelStatus, Signature, TensorSpec, VersionStatus
from tfship.errors import UsageError, require

JsonFormat = Literal["columnar", "row"]
# Columnar ({"inputs": ...}) was faster end to end than row ({"instances": ...}) against tfship's
# server; see docs/CLIENTS.md, "Benchmarks". Both stay selectable.
DEFAULT_JSON_FORMAT: JsonFormat = "columnar"


def encode_predict(batch: np.ndarray, signature: str, input_name: str, json_format: JsonFormat) -> bytes:
    """The JSON body of a predict call. ``tolist`` turns float32 into the double of the same value,
    whose shortest repr parses back to the same float32: the server sees the exact input."""
    values = _json_values(batch)
    if json_format == "row":
        body = {"signature_name": signature, "instances": values}
    else:
        body = {"signature_name": signature, "inputs": {input_name: values}}
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def _json_values(batch: np.ndarray) -> list:
    """Numbers as JSON numbers; strings (bytes) as TF Serving's {"b64": ...} binary values."""
    if batch.dtype.kind not in "OSU":
        return batch.tolist()
    flat = [{"b64": base64.b64encode(v if isinstance(v, bytes) else str(v).encode("utf-8")).decode("ascii")}
            for v in batch.reshape(-1)]
    return np.array(flat, dtype=object).reshape(batch.shape).tolist()


def decode_predict(body: dict, output_names: tuple[str, ...], server: str) -> dict[str, np.ndarray]:
    """The named outputs of a predict answer in either format. TF Serving names the outputs only when
    there are several; a lone output comes unnamed and is taken as the first of ``output_names``."""
    if "outputs" in body:
        outputs = body["outputs"]
        named = outputs if isinstance(outputs, dict) else {output_names[0]: outputs}
    elif "predictions" in body:
        predictions = body["predictions"]
        if isinstance(predictions, list) and predictions and all(isinstance(p, dict) for p in predictions):
            named = {name: [p.get(name) for p in predictions] for name in predictions[0]}
        else:
            named = {output_names[0]: predictions}
    else:
        raise ProtocolError(f"{server}: predict answer has neither 'outputs' nor 'predictions': "
                            f"{sorted(body)}")
    return {name: _json_array(named[name], name, server) for name in output_names if name in named}


def _json_array(values, name: str, server: str) -> np.ndarray:
    """JSON values -> an array: numbers as they are; strings (and TF Serving's {"b64": ...}) as str."""
    try:
        array = np.asarray(values)
    except ValueError as e:
        raise ProtocolError(f"{server}: output '{name}' is not a rectangular array: {e}") from e
    if array.dtype.kind in "fiub":
        return array
    if array.dtype.kind == "U":
        return array.astype(object)
    if array.dtype == object:  # {"b64": ...} objects for binary strings, maybe mixed with str
        return np.vectorize(_json_string, otypes=[object])(array) if array.size else array
    raise ProtocolError(f"{server}: output '{name}' holds {array.dtype} values, not numbers or strings")


def _json_string(value) -> str:
    if isinstance(value, dict) and isinstance(value.get("b64"), str):
        return base64.b64decode(value["b64"]).decode("utf-8", "replace")
    return str(value)


def encode_classify(batch: np.ndarray, signature: str, feature: str) -> bytes:
    body = {"signature_name": signature, "examples": [{feature: row} for row in batch.tolist()]}
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def decode_classify(body: dict, server: str) -> list[list[tuple[str, float]]]:
    # TF Serving's handler writes "results"; its REST doc says "result". Accept both.
    results = body.get("results", body.get("result"))
    if not isinstance(results, list):
        raise ProtocolError(f"{server}: classify answer has no 'results': {sorted(body)}")
    return [[(str(label), float(score)) for label, score in row] for row in results]


class RestClient(ModelClient):
    """TF Serving's REST API at ``url`` (``http://host:8501`` or ``https://...``).

    ``verify``: for HTTPS, True (system roots), False, or a CA bundle file path.
    ``json_format``: "columnar" (default, measured faster) or "row".
    """

    def __init__(self, url: str, model: str = "mnist", *, verify: bool | str | os.PathLike = True,
                 json_format: JsonFormat = DEFAULT_JSON_FORMAT,
                 client_certificate: str | os.PathLike | None = None, client_key: str | os.PathLike | None = None,
                 **kwargs) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"REST url '{url}' must start with http:// or https://")
        if json_format not in ("columnar", "row"):
            raise UsageError(f"json_format must be 'columnar' or 'row', got '{json_format}'")
        super().__init__(url.rstrip("/"), model, **kwargs)
        requests = require("requests", "requests", "client", "the REST client")
        self._requests = requests
        self.json_format = json_format
        self._session = requests.Session()
        # One pooled keep-alive connection per host; retries are our RetryPolicy's, not urllib3's.
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.verify = str(verify) if isinstance(verify, os.PathLike) else verify
        if (client_certificate is None) != (client_key is None):
            raise UsageError("a client certificate needs its private key and a key its certificate: "
                             "give both or neither")
        if client_certificate is not None:  # mutual TLS: files, as requests takes them
            self._session.cert = (str(client_certificate), str(client_key))
        self._session.headers["Content-Type"] = "application/json"

    def close(self) -> None:
        self._session.close()

    @property
    def model_url(self) -> str:
        url = f"{self.server}/v1/models/{self.model.name}"
        if self.model.version is not None:
            return f"{url}/versions/{self.model.version}"
        if self.model.version_label is not None:
            return f"{url}/labels/{self.model.version_label}"
        return url

    def _send(self, method: str, url: str, body: bytes | None = None) -> dict:
        requests = self._requests
        try:
            response = self._session.request(method, url, data=body, timeout=self.timeout)
        except requests.exceptions.ConnectTimeout as e:
            raise ServerError("DEADLINE_EXCEEDED", f"no connection within {self.timeout:g} s",
                              server=self.server) from e
        except requests.exceptions.ConnectionError as e:
            raise ServerUnavailableError(_reason(e), server=self.server) from e
        except requests.exceptions.Timeout as e:
            raise ServerError("DEADLINE_EXCEEDED", f"no answer within {self.timeout:g} s",
                              server=self.server) from e
        try:
            payload = response.json()
        except ValueError as e:
            if response.ok:
                raise ProtocolError(f"{url} answered HTTP {response.status_code} with non-JSON "
                                    f"'{response.text[:200]}'") from e
            payload = {"error": response.text.strip() or response.reason}
        if not response.ok:
            message = payload.get("error", str(payload)) if isinstance(payload, dict) else str(payload)
            raise ServerError(code_for_http_status(response.status_code), str(message),
                              server=self.server, http_status=response.status_code)
        if not isinstance(payload, dict):
            raise ProtocolError(f"{url} answered {type(payload).__name__}, expected a JSON object")
        return payload

    def _predict(self, batch, plan):
        body = encode_predict(batch, plan.signature, plan.input_name, self.json_format)
        answer = self._send("POST", f"{self.model_url}:predict", body)
        return decode_predict(answer, plan.outputs(), self.server), None

    def _classify(self, batch, signature, feature):
        answer = self._send("POST", f"{self.model_url}:classify", encode_classify(batch, signature, feature))
        return decode_classify(answer, self.server), None

    def _metadata(self) -> Metadata:
        answer = self._send("GET", f"{self.model_url}/metadata")
        spec = answer.get("model_spec", {})
        try:
            signature_map = answer["metadata"]["signature_def"]["signature_def"]
            signatures = {name: Signature(sig.get("method_name", ""), _tensor_specs(sig.get("inputs", {})),
                                          _tensor_specs(sig.get("outputs", {})))
                          for name, sig in sorted(signature_map.items())}
        except (KeyError, TypeError, AttributeError) as e:
            raise ProtocolError(f"{self.server}: metadata answer lacks metadata.signature_def: {e}") from e
        version = spec.get("version")
        return Metadata(spec.get("name") or self.model.name, int(version) if version else None, signatures)

    def _status(self) -> ModelStatus:
        answer = self._send("GET", self.model_url)
        try:
            versions = tuple(
                VersionStatus(int(v["version"]), str(v.get("state", "UNKNOWN")),
                              str(v.get("status", {}).get("error_code", "OK")),
                              str(v.get("status", {}).get("error_message", "")))
                for v in answer["model_version_status"])
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(f"{self.server}: status answer lacks model_version_status: {e}") from e
        return ModelStatus(self.model.name, versions)


def _tensor_specs(infos: dict) -> dict[str, TensorSpec]:
    specs = {}
    for name, info in sorted(infos.items()):
        shape_info = info.get("tensor_shape", {})
        shape = None if shape_info.get("unknown_rank") else tuple(
            int(d.get("size", 0)) for d in shape_info.get("dim", []))
        specs[name] = TensorSpec(str(info.get("dtype", "DT_INVALID")), shape)
    return specs


def _reason(error: Exception) -> str:
    # urllib3 nests the OS error several levels deep; the innermost message is the useful one.
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "No route to host",
                   "Connection reset", "Temporary failure in name resolution"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200]
