"""The REST adapter: TF Serving's ``/v1/models/...`` API as a Starlette app over :class:`ServingCore`.

Paths are matched with TF Serving's own patterns (``model_servers/http_rest_api_util.cc``): case
insensitive, ``/versions/N`` or ``/labels/L``, ``:predict|:classify|:regress`` for POST,
``/metadata`` for GET. Errors are ``{"error": "<message>"}`` with TF Serving's HTTP status codes.
Inference never runs on the event loop: ``:predict`` awaits the batch; small bodies are decoded on the
loop, large ones and every other call on the core's worker threads (:data:`INLINE_BODY_BYTES`).
"""

from __future__ import annotations

import json
import logging
import re
import time
import zlib
from urllib.parse import unquote

from tfship.serve import json_api, json_examples, json_writer, messages
from tfship.serve.aio import Deadlines, LoopBridge
from tfship.serve.core import ModelRef, ServingCore
from tfship.serve.errors import (TIMEOUT_MESSAGE, DeadlineExceededError, FailedPreconditionError, InvalidArgumentError,
                                 RequestTooLargeError, ServingError, http_status, release)
from tfship.serve.metrics import Metrics

log = logging.getLogger("tfship.serve")

# TF Serving's own patterns (model_servers/http_rest_api_util.cc), matched on the raw request path
# (percent-encoded, with any "?query": net_http's uri_path()); names and labels are decoded after.
_PREDICTION = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.I)
_STATUS = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.I)
_HANDLED = re.compile(r"/v1/.*", re.I | re.S)  # http_server.cc: everything else is net_http's 404
_ORIGIN = re.compile(r"https?://")
_JSON = "application/json"
ENTRYPOINT = "REST"
_INT64 = 1 << 63


# Predict bodies up to this size are decoded and answered on the event loop: for them a thread
# hand-off costs more than the JSON work (a 784-float image is ~6 KB; ~0.1 ms to decode). Larger
# bodies are decoded on a worker thread, so one huge request never stalls the others.
INLINE_BODY_BYTES = 64 * 1024


class RestHandler:
    """Turns (method, raw path, body) into (HTTP status, JSON text); knows the core, not the server.

    :meth:`handle` is a coroutine for an event loop: ``:predict`` resolves the model and signature,
    decodes the JSON against it, hands the tensors to the core and awaits the batch; every other call
    runs on the core's worker threads."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core
        self._bridge = LoopBridge()

    async def handle(self, method: str, path: str, body: bytes, origin: str = "") -> tuple[int, str]:
        try:
            if not _HANDLED.fullmatch(path):
                return 404, _error_json(f"Not found: {method} {path} (this server answers /v1/models/...)")
            if method == "OPTIONS":
                # http_server.cc: a CORS preflight needs an http(s) Origin.
                if not _ORIGIN.search(origin):
                    raise FailedPreconditionError("Origin header is missing in CORS preflight")
                return 200, ""
            m = _PREDICTION.fullmatch(path) if method == "POST" else None
            if m is not None and m.group(4) == "predict":
                return 200, await self._predict(_ref(m), body)
            return 200, await self._blocking(self._dispatch, method, path, body)
        except ServingError as e:
            status, text = http_status(e), _error_json(e.message)
            release(e)
            return status, text
        except Exception as e:  # noqa: BLE001 - a bug must answer 500 and be logged, never kill the server
            log.exception("REST %s %s failed", method, path)
            release(e)
            return 500, _error_json(f"{method} {path} failed inside the server; its log has the details")

    async def _blocking(self, fn, *args):
        return await self._bridge.wait(self.core.run_blocking(fn, *args))

    def _dispatch(self, method: str, path: str, body: bytes) -> str:
        malformed = InvalidArgumentError(f"Malformed request: {method} {path}")
        if method == "POST":
            m = _PREDICTION.fullmatch(path)
            ref = _ref(m) if m else None  # a bad version number is refused even in a malformed request
            if m is None or m.group(4) not in ("classify", "regress"):
                raise malformed
            doc = json_api.parse_body(body)
            ref = _with_signature(ref, doc)
            examples = json_examples.examples(doc)
            if m.group(4) == "classify":
                r = self.core.classify(ref, examples, ENTRYPOINT)
                return json_writer.classify_response(r.classes, r.scores)
            return json_writer.regress_response(self.core.regress(ref, examples, ENTRYPOINT).values)
        if method == "GET":
            m = _STATUS.fullmatch(path)
            ref = _ref(m) if m else None
            if m is None:
                raise malformed
            if not ref.name:
                raise InvalidArgumentError("Missing model name in request.")
            if m.group(4) == "metadata":  # the handler compares the subresource exactly
                meta = self.core.metadata(ref, entrypoint=ENTRYPOINT)
                return messages.metadata_json(messages.metadata_response(meta))
            return messages.status_json(messages.status_response(self.core.status(ref, ENTRYPOINT)))
        raise malformed

    async def _predict(self, ref: ModelRef, body: bytes) -> str:
        inline = len(body) <= INLINE_BODY_BYTES
        start = time.perf_counter()
        try:
            args = (ref, body)
            resolved, inputs, form = self._decode(*args) if inline else await self._blocking(self._decode, *args)
        except BaseException as e:
            self.core.record(ref.name, "Predict", ENTRYPOINT, e, start)
            raise
        result = await self._bridge.wait(self.core.predict_future(resolved, inputs, entrypoint=ENTRYPOINT))
        if inline:
            return json_writer.predict_response(result.outputs, form)
        return await self._blocking(json_writer.predict_response, result.outputs, form)

    def _decode(self, ref: ModelRef, body: bytes):
        """Parse, resolve the model and signature once, decode the inputs against it."""
        doc = json_api.parse_body(body)
        resolved = self.core.resolve(_with_signature(ref, doc), rest=True)
        inputs, form = json_api.predict_inputs(doc, resolved.signature.inputs, self.core.limits)
        return resolved, inputs, form


def _with_signature(ref: ModelRef, doc: dict) -> ModelRef:
    return ModelRef(ref.name, ref.version, ref.label, json_api.signature_name(doc))


def _ref(m: re.Match) -> ModelRef:
    """The model a matched path names; as ParseModelInfo, a version must fit int64."""
    name, version, label = m.group(1), m.group(2), m.group(3)
    if version is not None and int(version) >= _INT64:
        raise InvalidArgumentError(f"Failed to convert version: {version} to numeric.")
    return ModelRef(unquote(name or ""), int(version) if version is not None else None,
                    unquote(label) if label else None)


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
    (model_servers/http_server.cc): 200 when its Origin is http(s)://..., else 400 (with an
    ``{"error": ...}`` body, where TF Serving sends none: every error here is JSON)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    handler = RestHandler(core)
    extra = CORS_HEADERS if cors else {}
    deadlines = Deadlines(timeout_ms / 1000) if timeout_ms > 0 else None

    async def v1(request: Request) -> Response:
        if metrics is not None and metrics_path and request.url.path == metrics_path:
            body = await run_in_threadpool(metrics.render)
            return Response(body, media_type="text/plain; version=0.0.4")
        try:
            body = await _read_limited(request, max_body_bytes)
            if "gzip" in request.headers.get("content-encoding", ""):
                body = _gunzip(body, max_body_bytes)
        except RequestTooLargeError as e:
            return Response(_error_json(e.message), status_code=http_status(e), media_type=_JSON, headers=extra)
        call = handler.handle(request.method, _raw_path(request.scope), body, request.headers.get("origin", ""))
        try:
            status, text = await (deadlines.run(call) if deadlines is not None else call)
        except TimeoutError:
            error = DeadlineExceededError(TIMEOUT_MESSAGE)
            status, text = http_status(error), _error_json(error.message)
        return Response(text, status_code=status, media_type=_JSON, headers=extra)

    # Every method reaches the handler, which answers TF Serving's "Malformed request" for the ones it
    # does not serve: never Starlette's plain-text 405.
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT"]
    return Starlette(routes=[Route("/{path:path}", v1, methods=methods)])


def _raw_path(scope) -> str:
    """The path as sent (percent-encoded) with its query string, as net_http's uri_path() gives it."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body, inflated up to ``limit`` bytes (net_http: an invalid one reads as empty)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        return b""
    if len(out) > limit:
        raise RequestTooLargeError(f"Request body inflates to over this server's limit of {limit} bytes")
    return out


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
