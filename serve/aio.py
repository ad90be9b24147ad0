"""Futures from worker threads, awaited on an event loop, with one loop wake-up per burst.

``asyncio.wrap_future`` wakes the loop once per future: a write to its self-pipe from the thread
that completes it. A batch of N requests then costs N writes, and on each one the batch thread
drops the GIL and the loop thread takes it, N round trips per batch. :class:`LoopBridge` queues
completions and wakes the loop once for all the futures completed before it runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from concurrent.futures import Future


class LoopBridge:
    """Await ``concurrent.futures.Future`` objects on the event loop of the first :meth:`wait`.

    One per adapter (each adapter runs on one loop); completion is thread-safe."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: deque[tuple[asyncio.Future, Future]] = deque()
        self._lock = threading.Lock()
        self._wake_pending = False

    async def wait(self, future: Future):
        """The result of ``future`` (or its exception, raised), without blocking the loop."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        waiter = self._loop.create_future()
        future.add_done_callback(lambda f: self._completed(waiter, f))
        return await waiter

    def _completed(self, waiter: asyncio.Future, future: Future) -> None:
        with self._lock:
            self._done.append((waiter, future))
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop is closed: the server stopped, nobody is waiting any more
            pass

    def _deliver(self) -> None:
        with self._lock:
            done, self._done = self._done, deque()
            self._wake_pending = False
        for waiter, future in done:
            if waiter.cancelled():  # the request went away (client cancelled, server stopping)
                continue
            error = future.exception()
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(future.result())
