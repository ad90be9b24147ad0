"""The playground's web app: the static page, ``/v1/...`` forwarded to the model server, and the run view.

Routes:
- ``/`` and ``/static/...``: the page (``static/``, shipped in the package);
- ``/v1/...`` (any method): forwarded to the model server (:mod:`tfship.playground.proxy`);
- ``/playground/config``: what the page starts from (server URL, model names, whether a run is known);
- ``/playground/run`` and ``/playground/run/parity.png``: the run folder's manifest and parity report.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from tfship.playground.proxy import Upstream, error_body
from tfship.playground.run_folder import RunFolder

STATIC_DIR = Path(__file__).resolve().parent / "static"
_JSON = "application/json"


@dataclass(frozen=True)
class PlaygroundConfig:
    server: str                       # the model server's REST base URL, http(s)://host:port
    host: str = "127.0.0.1"
    port: int = 8080
    model_names: tuple[str, ...] = ()  # offered in the page's model field (TF Serving's REST cannot list models)
    run: Path | None = None           # a run folder: enables the exports / parity view
    timeout_s: float = 30.0           # longest wait for the model server's answer


def build_app(config: PlaygroundConfig):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    run = RunFolder.open(config.run) if config.run is not None else None
    upstream: dict[str, Upstream] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        upstream["client"] = Upstream(config.server, config.timeout_s)
        try:
            yield
        finally:
            await upstream["client"].close()

    async def forward(request: Request) -> Response:
        answer = await upstream["client"].forward(request.method, request.url.path, request.url.query,
                                                  await request.body(), dict(request.headers))
        headers = dict(answer.headers)
        if answer.upstream_ms is not None:
            headers["server-timing"] = f"upstream;dur={answer.upstream_ms:.2f}"
        return Response(answer.body, status_code=answer.status, headers=headers)

    async def page(_request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    async def settings(_request: Request) -> Response:
        return JSONResponse({"server": config.server, "models": list(config.model_names), "run": run is not None})

    async def run_view(_request: Request) -> Response:
        if run is None:
            return _not_found("the playground was started without --model RUN_DIR, so no run folder is known")
        return Response(json.dumps(run.describe(), allow_nan=False), media_type=_JSON)

    async def parity_png(_request: Request) -> Response:
        if run is None or not run.parity_png.is_file():
            where = "no run folder is known" if run is None else f"no parity.png in '{run.exports}'"
            return _not_found(where)
        return FileResponse(run.parity_png, media_type="image/png", headers={"cache-control": "no-store"})

    async def elsewhere(request: Request) -> Response:
        return _not_found(f"the playground serves its page at / and forwards /v1/... only, not {request.url.path}")

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    routes = [
        Route("/", page),
        Route("/v1/{path:path}", forward, methods=methods),
        Route("/playground/config", settings),
        Route("/playground/run", run_view),
        Route("/playground/run/parity.png", parity_png),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/{path:path}", elsewhere, methods=methods),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _not_found(message: str):
    from starlette.responses import Response

    return Response(error_body(message), status_code=404, media_type=_JSON)
