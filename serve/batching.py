"""Server-side batching of concurrent requests, with TF Serving's batching parameters.

Requests for one signature of one model version queue up; a batch thread takes the oldest request,
waits until ``max_batch_size`` rows are queued or ``batch_timeout_micros`` have passed since that
request arrived, concatenates the queued inputs along the batch axis, runs the signature once and
splits the outputs back by row counts. As in TF Serving, a timeout of 0 still batches: requests
that arrive while a batch runs are taken together by the next one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from tfship.serve.config import BatchingOptions
from tfship.serve.errors import InvalidArgumentError, UnavailableError

Tensors = dict[str, np.ndarray]


@dataclass
class _Task:
    inputs: Tensors
    rows: int
    future: Future
    enqueued: float


class BatcherStopped(UnavailableError):
    """The batcher was stopped (its model version is being unloaded); the caller may run unbatched."""


class Batcher:
    """Runs ``run(inputs) -> outputs`` on batches gathered from concurrent :meth:`submit` calls."""

    def __init__(self, run: Callable[[Tensors], Tensors], options: BatchingOptions, name: str,
                 on_batch: Callable[[int, int], None] | None = None) -> None:
        self._run = run
        self._opts = options
        self._on_batch = on_batch  # (rows run, rows of padding)
        self._queue: deque[_Task] = deque()
        self._queued_rows = 0
        self._busy = 0  # batches running now, on batch threads or on a caller's thread
        self._cond = threading.Condition()
        self._stopping = False
        self._threads = [threading.Thread(target=self._loop, name=f"batch-{name}-{i}", daemon=True)
                         for i in range(options.num_batch_threads)]
        for t in self._threads:
            t.start()

    def submit(self, inputs: Tensors) -> Tensors:
        """Queue one request's inputs (all with the same leading batch size); block for its outputs.

        With no timeout to wait for company and a free slot, the caller runs its own request: an
        idle server answers without a thread hand-off, and under load the queue fills and batches
        form as before. Never more than ``num_batch_threads`` batches run at once."""
        task, run_here = self._enqueue(inputs, may_run_here=self._opts.batch_timeout_micros == 0)
        if run_here:
            self._execute([task])
        return task.future.result()

    def submit_future(self, inputs: Tensors) -> Future:
        """Queue one request's inputs and return at once: a Future of its outputs, completed on a
        batch thread. For callers that must not block (an event loop). Errors about the request
        itself (too many rows, queue full, stopping) are raised here, before anything is queued."""
        task, _ = self._enqueue(inputs, may_run_here=False)
        return task.future

    def _enqueue(self, inputs: Tensors, may_run_here: bool) -> tuple[_Task, bool]:
        """Queue a task; or, if ``may_run_here`` and the batcher is idle, reserve a batch slot for the
        caller instead (second value True: the caller must ``_execute([task])``)."""
        rows = _rows(inputs)
        if rows > self._opts.max_batch_size:
            # TF Serving's message (batching/batching_session.cc); we do not split large tasks.
            raise InvalidArgumentError(f"Task size {rows} is larger than maximum input batch size "
                                       f"{self._opts.max_batch_size}")
        task = _Task(inputs, rows, Future(), time.monotonic())
        with self._cond:
            if self._stopping:
                raise BatcherStopped("This model version is being unloaded")
            if self._queued_rows + rows > self._opts.max_enqueued_batches * self._opts.max_batch_size:
                raise UnavailableError("The batch scheduling queue to which this task was submitted is full")
            if may_run_here and not self._queue and self._busy < len(self._threads):
                self._busy += 1
                return task, True
            self._queue.append(task)
            self._queued_rows += rows
            self._cond.notify()
        return task, False

    def stop(self) -> None:
        """Finish what is queued, then end the batch threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._execute(batch)

    def _next_batch(self) -> list[_Task] | None:
        timeout = self._opts.batch_timeout_micros / 1e6
        with self._cond:
            while not self._queue or self._busy >= len(self._threads):
                if self._stopping and not self._queue:
                    return None
                self._cond.wait()
            if timeout == 0 and self._queued_rows < self._opts.max_batch_size and not self._yield_to_producers():
                return []  # another batch thread took them
            deadline = self._queue[0].enqueued + timeout
            while self._queued_rows < self._opts.max_batch_size and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
                if not self._queue:  # another batch thread took them
                    return []
            batch, rows = [], 0
            while self._queue and rows + self._queue[0].rows <= self._opts.max_batch_size:
                task = self._queue.popleft()
                batch.append(task)
                rows += task.rows
            self._queued_rows -= rows
            self._busy += 1
            if self._queue:
                self._cond.notify()
            return batch

    def _yield_to_producers(self) -> bool:
        """Let the threads that enqueue run once before a batch is cut (called holding ``_cond``).

        Python-specific: an event loop that has just read several requests needs the GIL to enqueue
        them, and a batch thread that cuts its batch the moment the first one lands runs batches of
        1-2 rows under load (null model over gRPC: 1.7 rows; with the yield 2.4, and REST's CNN
        batches 15 -> 22 rows, docs/SERVING.md). An idle producer hands the GIL straight back, so a
        lone request waits for nothing. Returns whether anything is still queued."""
        self._cond.release()
        try:
            time.sleep(0)  # releases the GIL
        finally:
            self._cond.acquire()
        return bool(self._queue)

    def _execute(self, batch: list[_Task]) -> None:
        try:
            self._run_batch(batch)
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def _run_batch(self, batch: list[_Task]) -> None:
        if not batch:
            return
        rows = sum(t.rows for t in batch)
        padded = self._padded_size(rows)
        try:
            inputs = {k: np.concatenate([t.inputs[k] for t in batch] + _padding(batch[0].inputs[k], padded - rows))
                      for k in batch[0].inputs}
            outputs = self._run(inputs)
            if self._on_batch is not None:
                self._on_batch(rows, padded - rows)
            for name, value in outputs.items():
                if value.ndim == 0 or value.shape[0] != padded:
                    raise InvalidArgumentError(
                        f"Batched output tensor '{name}' has shape {list(value.shape)}; its first dimension "
                        f"must be the batch size {padded}")
        except BaseException as e:  # every waiting request gets the failure, none is left hanging
            for t in batch:
                t.future.set_exception(e)
            return
        start = 0
        for t in batch:
            t.future.set_result({k: v[start:start + t.rows] for k, v in outputs.items()})
            start += t.rows

    def _padded_size(self, rows: int) -> int:
        for size in self._opts.allowed_batch_sizes:
            if size >= rows:
                return size
        return rows


def _rows(inputs: Tensors) -> int:
    sizes = {v.shape[0] if v.ndim else None for v in inputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise InvalidArgumentError(
            "Batching session Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


def _padding(first: np.ndarray, n: int) -> list[np.ndarray]:
    # TF Serving pads with copies of the first row so padded rows compute on valid data.
    return [np.repeat(first[:1], n, axis=0)] if n > 0 else []
