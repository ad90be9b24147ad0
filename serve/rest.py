"""The REST adapter: TF Serving's ``/v1/models/...`` API as a Starlette app over :class:`ServingCore`.

Paths are matched with TF Serving's own patterns (``model_servers/http_rest_api_util.cc``): case
insensitive, ``/versions/N`` or ``/labels/L``, ``:predict|:classify|:regress`` for POST,
``/metadata`` for GET. Errors are ``{"error": "<message>"}`` with TF Serving's HTTP status codes.
Inference never runs on the event loop: ``:predict`` awaits the batch; small bodies are decoded on the
loop, large ones and every other call on the core's worker threads (:data:`INLINE_BODY_BYTES`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from urllib.parse import unquote

from tfship.serve import json_api, messages
from tfship.serve.aio import LoopBridge
from tfship.serve.core import ModelRef, ServingCore
from tfship.serve.errors import (TIMEOUT_MESSAGE, DeadlineExceededError, InvalidArgumentError, RequestTooLargeError,
                                 ServingError, http_status)
from tfship.serve.metrics import Metrics

log = logging.getLogger("tfship.serve")

_PREDICTION = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.I)
_STATUS = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.I)
_JSON = "application/json"
ENTRYPOINT = "REST"


# Predict bodies up to this size are decoded and answered on the event loop: for them a thread
# hand-off costs more than the JSON work (a 784-float image is ~6 KB; ~0.1 ms to decode). Larger
# bodies are decoded on a worker thread, so one huge request never stalls the others.
INLINE_BODY_BYTES = 64 * 1024


class RestHandler:
    """Turns (method, path, body) into (HTTP status, JSON text); knows the core, not the server.

    :meth:`handle` is a coroutine for an event loop: ``:predict`` hands its inputs to the core and
    awaits the batch; every other call runs on the core's worker threads."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core
        self._bridge = LoopBridge()

    async def handle(self, method: str, path: str, body: bytes) -> tuple[int, str]:
        try:
            m = _PREDICTION.fullmatch(path) if method == "POST" else None
            if m is not None and m.group(4).lower() == "predict":
                return 200, await self._predict(m, body)
            return 200, await self._blocking(self._dispatch, method, path, body)
        except ServingError as e:
            return http_status(e), _error_json(e.message)
        except Exception as e:  # noqa: BLE001 - a bug must answer 500 and be logged, never kill the server
            log.exception("REST %s %s failed", method, path)
            return 500, _error_json(f"{type(e).__name__}: {e}")

    async def _blocking(self, fn, *args):
        return await self._bridge.wait(self.core.run_blocking(fn, *args))

    def _dispatch(self, method: str, path: str, body: bytes) -> str:
        malformed = InvalidArgumentError(f"Malformed request: {method} {path}")
        if method == "POST":
            m = _PREDICTION.fullmatch(path)
            if not m:
                raise malformed
            ref, doc = _parsed(m, body)
            verb = m.group(4).lower()
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

    async def _predict(self, m: re.Match, body: bytes) -> str:
        form = []

        def start():
            ref, doc = _parsed(m, body)

            def decode(signature) -> dict:
                inputs, f = json_api.predict_inputs(doc, signature.inputs)
                form.append(f)
                return inputs

            return self.core.predict_future(ref, decode, entrypoint=ENTRYPOINT)

        inline = len(body) <= INLINE_BODY_BYTES
        pending = start() if inline else await self._blocking(start)
        result = await self._bridge.wait(pending)
        if inline:
            return json_api.predict_response(result.outputs, form[0])
        return await self._blocking(json_api.predict_response, result.outputs, form[0])


def _parsed(m: re.Match, body: bytes) -> tuple[ModelRef, dict]:
    """The model a ``:predict|:classify|:regress`` path names, with the body's signature_name."""
    ref = _ref(m.group(1), m.group(2), m.group(3))
    doc = json_api.parse_body(body)
    return ModelRef(ref.name, ref.version, ref.label, json_api.signature_name(doc)), doc


def _ref(name: str, version: str | None, label: str | None) -> ModelRef:
    return ModelRef(unquote(name), int(version) if version else None, unquote(label) if label else None)


def _error_json(message: str) -> str:
    return json.dumps({"error": message})


# TF Serving's CORS headers (model_servers/http_rest_api_util.cc, AddCORSHeaders).
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, GET",
                "Access-Control-Allow-Headers": "Content-Type"}


def build_app(core: ServingCore, max_body_bytes: int, metrics: Metrics | None = None,
              metrics_path: str | None = None, timeout_ms: int = 0, cors: bool = False):
    """The Starlette app: ``/v1/...`` to :class:`RestHandler`, and Prometheus text at ``metrics_path``.

    ``timeout_ms`` > 0 (``--rest_api_timeout_in_ms``): a call not answered in time gets 504 with TF
    Serving's DEADLINE_EXCEEDED message. ``cors`` (``--rest_api_enable_cors_support``): TF Serving's
    CORS headers on every answer. An OPTIONS preflight is answered as TF Serving's HTTP server does
    (model_servers/http_server.cc): 200 when its Origin is http(s)://..., else 400, both with no body."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    handler = RestHandler(core)
    extra = CORS_HEADERS if cors else {}
    timeout = timeout_ms / 1000 if timeout_ms > 0 else None

    async def v1(request: Request) -> Response:
        path = request.url.path
        if request.method == "OPTIONS":
            ok = re.search(r"https?://", request.headers.get("origin", "")) is not None
            return Response(b"", status_code=200 if ok else 400, headers=extra)
        if metrics is not None and metrics_path and path == metrics_path:
            body = await run_in_threadpool(metrics.render)
            return Response(body, media_type="text/plain; version=0.0.4")
        try:
            body = await _read_limited(request, max_body_bytes)
        except RequestTooLargeError as e:
            return Response(_error_json(e.message), status_code=http_status(e), media_type=_JSON, headers=extra)
        try:
            async with asyncio.timeout(timeout):  # a timer on this task, no task of its own
                status, text = await handler.handle(request.method, path, body)
        except TimeoutError:
            error = DeadlineExceededError(TIMEOUT_MESSAGE)
            status, text = http_status(error), _error_json(error.message)
        return Response(text, status_code=status, media_type=_JSON, headers=extra)

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
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
