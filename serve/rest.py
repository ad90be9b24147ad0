"""The REST adapter: TF Serving's ``/v1/models/...`` API as a Starlette app over :class:`ServingCore`.

Paths are matched with TF Serving's own patterns (``model_servers/http_rest_api_util.cc``): case
insensitive, ``/versions/N`` or ``/labels/L``, ``:predict|:classify|:regress`` for POST,
``/metadata`` for GET. Errors are ``{"error": "<message>"}`` with TF Serving's HTTP status codes.
The work of a request (JSON parsing, inference) runs on a worker thread, never on the event loop.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import unquote

from tfship.serve import json_api, messages
from tfship.serve.core import ModelRef, ServingCore
from tfship.serve.errors import (InvalidArgumentError, RequestTooLargeError, ServingError, http_status)
from tfship.serve.metrics import Metrics

log = logging.getLogger("tfship.serve")

_PREDICTION = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.I)
_STATUS = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.I)
_JSON = "application/json"
ENTRYPOINT = "REST"


class RestHandler:
    """Turns (method, path, body) into (HTTP status, JSON text); knows the core, not the server."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, str]:
        try:
            return 200, self._dispatch(method, path, body)
        except ServingError as e:
            return http_status(e), _error_json(e.message)
        except Exception as e:  # noqa: BLE001 - a bug must answer 500 and be logged, never kill the server
            log.exception("REST %s %s failed", method, path)
            return 500, _error_json(f"{type(e).__name__}: {e}")

    def _dispatch(self, method: str, path: str, body: bytes) -> str:
        malformed = InvalidArgumentError(f"Malformed request: {method} {path}")
        if method == "POST":
            m = _PREDICTION.fullmatch(path)
            if not m:
                raise malformed
            ref = _ref(m.group(1), m.group(2), m.group(3))
            verb = m.group(4).lower()
            doc = json_api.parse_body(body)
            ref = ModelRef(ref.name, ref.version, ref.label, json_api.signature_name(doc))
            if verb == "predict":
                return self._predict(ref, doc)
            examples = json_api.examples(doc)
            if verb == "classify":
                r = self.core.classify(ref, examples, ENTRYPOINT)
                return json_api.classify_response(r.classes, r.scores)
            return json_api.regress_response(self.core.regress(ref, examples, ENTRYPOINT).values)
        if method == "GET":
            m = _STATUS.fullmatch(path)
            if not m:
                raise malformed
            if not m.group(1):
                raise InvalidArgumentError("Missing model name in request.")
            ref = _ref(m.group(1), m.group(2), m.group(3))
            if m.group(4):
                return messages.metadata_json(messages.metadata_response(self.core.metadata(ref, entrypoint=ENTRYPOINT)))
            return messages.status_json(messages.status_response(self.core.status(ref, ENTRYPOINT)))
        raise malformed

    def _predict(self, ref: ModelRef, doc: dict) -> str:
        form = []

        def decode(signature) -> dict:
            inputs, f = json_api.predict_inputs(doc, signature.inputs)
            form.append(f)
            return inputs

        result = self.core.predict(ref, decode, entrypoint=ENTRYPOINT)
        return json_api.predict_response(result.outputs, form[0])


def _ref(name: str, version: str | None, label: str | None) -> ModelRef:
    return ModelRef(unquote(name), int(version) if version else None, unquote(label) if label else None)


def _error_json(message: str) -> str:
    return json.dumps({"error": message})


def build_app(core: ServingCore, max_body_bytes: int, metrics: Metrics | None = None,
              metrics_path: str | None = None):
    """The Starlette app: ``/v1/...`` to :class:`RestHandler`, and Prometheus text at ``metrics_path``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    handler = RestHandler(core)

    async def v1(request: Request) -> Response:
        path = request.url.path
        if metrics is not None and metrics_path and path == metrics_path:
            body = await run_in_threadpool(metrics.render)
            return Response(body, media_type="text/plain; version=0.0.4")
        try:
            body = await _read_limited(request, max_body_bytes)
        except RequestTooLargeError as e:
            return Response(_error_json(e.message), status_code=http_status(e), media_type=_JSON)
        status, text = await run_in_threadpool(handler.handle, request.method, path, body)
        return Response(text, status_code=status, media_type=_JSON)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", v1, methods=methods)])


async def _read_limited(request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"Request body of {declared} bytes is over this server's limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(f"Request body is over this server's limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
