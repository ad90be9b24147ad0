"""Loading one version as TF Serving does: warm it up, and retry a failed load.

``--max_num_load_retries`` (TF Serving: 5) and ``--load_retry_interval_micros`` (1 minute): a load
that fails (the runtime could not load the model, or its warmup failed) is tried again that many
times, that long apart, before the version is reported END with the last error
(``core/loader_harness.cc``, ``LoadWithRetries``). ``--enable_model_warmup`` (default on): replay
the version's warmup file (:mod:`.warmup`) before it becomes AVAILABLE; a version without one gets
tfship's own warm-up (each numeric signature once on zeros), so the first request is not the slowest.
With warmup off, neither runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tfship.serve import warmup
from tfship.serve.config import LoadOptions

log = logging.getLogger("tfship.serve")
S = TypeVar("S")


def load_version(new: Callable[[], S], path: Path, options: LoadOptions, stop: threading.Event, what: str) -> S:
    """``new()`` warmed up, with retries; raises the last error. ``stop`` set: no more retries."""
    attempts = options.max_num_load_retries + 1
    for attempt in range(1, attempts + 1):
        try:
            return _warmed(new(), path, options)
        except Exception as e:  # noqa: BLE001 - TF Serving retries whatever made the load fail
            if attempt == attempts or stop.is_set():
                raise
            log.warning("%s failed to load (attempt %d of %d); retrying in %.3g s: %s", what, attempt, attempts,
                        options.load_retry_interval_seconds, e)
            if stop.wait(options.load_retry_interval_seconds):
                raise
    raise AssertionError("unreachable")  # the loop returns or raises


def _warmed(servable: S, path: Path, options: LoadOptions) -> S:
    if not options.enable_model_warmup:
        return servable
    try:
        if warmup.replay(servable, path, options.warmup_iterations) == 0:
            servable.warm_up()
    except BaseException:
        servable.close()
        raise
    return servable
