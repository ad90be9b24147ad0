"""Forward the browser's ``/v1/...`` calls to the model server, and word its failures as JSON.

Only ``/v1/...`` is forwarded, only to the one server the playground was pointed at: never an open
proxy. The answer (status, JSON body) passes through unchanged, so the page shows the server's own
words. When the server cannot be reached or does not answer in time, the playground answers
``{"error": "...", "origin": "playground"}`` with 502 or 504 instead of a traceback.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import httpx

# What the browser may send upstream and what comes back; hop-by-hop and Host headers stay behind.
_FORWARD_REQUEST_HEADERS = ("content-type", "accept")
_FORWARD_RESPONSE_HEADERS = ("content-type",)


@dataclass(frozen=True)
class UpstreamAnswer:
    status: int
    body: bytes
    headers: dict[str, str]
    upstream_ms: float | None  # time spent waiting for the model server, when it answered


class Upstream:
    """One keep-alive HTTP client for the model server at ``base_url``."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        # Connecting to a live server takes milliseconds; a refused or black-holed connect should
        # not hold the page for the whole answer timeout.
        connect_s = min(timeout_s, 5.0)
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(timeout_s, connect=connect_s),
                                         follow_redirects=False, trust_env=False)

    async def close(self) -> None:
        await self._client.aclose()

    async def forward(self, method: str, path: str, query: str, body: bytes,
                      headers: dict[str, str]) -> UpstreamAnswer:
        sent = {k: v for k, v in headers.items() if k.lower() in _FORWARD_REQUEST_HEADERS}
        url = path + (f"?{query}" if query else "")
        start = time.perf_counter()
        try:
            response = await self._client.request(method, url, content=body or None, headers=sent)
        except httpx.TimeoutException as e:
            return self._failure(504, f"the model server at {self.base_url} did not answer within "
                                      f"{self.timeout_s:g} s ({_timeout_phase(e)})")
        except httpx.ConnectError as e:
            return self._failure(502, f"cannot reach the model server at {self.base_url}: {_reason(e)}")
        except httpx.RemoteProtocolError as e:
            return self._failure(502, f"the model server at {self.base_url} closed the connection "
                                      f"without a valid answer ({_reason(e)})")
        except httpx.HTTPError as e:
            return self._failure(502, f"the request to the model server at {self.base_url} failed: {_reason(e)}")
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        kept = {k: v for k, v in response.headers.items() if k.lower() in _FORWARD_RESPONSE_HEADERS}
        return UpstreamAnswer(response.status_code, response.content, kept, elapsed_ms)

    def _failure(self, status: int, message: str) -> UpstreamAnswer:
        return UpstreamAnswer(status, error_body(message), {"content-type": "application/json"}, None)


def error_body(message: str) -> bytes:
    import json

    return json.dumps({"error": message, "origin": "playground"}).encode("utf-8")


def _timeout_phase(error: httpx.TimeoutException) -> str:
    if isinstance(error, httpx.ConnectTimeout):
        return "no connection"
    if isinstance(error, httpx.ReadTimeout):
        return "connected, but no answer"
    return "timed out"


def _reason(error: Exception) -> str:
    """The innermost OS error's own words ("connection refused"), else the error's first line.

    httpx wraps the socket error several levels deep ("All connection attempts failed" on top)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno).lower()
        seen = seen.__cause__ or seen.__context__
    return (str(error).splitlines() or ["no reason given"])[0][:200]
