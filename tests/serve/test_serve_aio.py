"""LoopBridge: futures completed on another thread, awaited on an event loop, one wake-up per burst.
Deadlines: one timeout for every call on a loop, without a timer per call."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import pytest

from tfship.serve.aio import Deadlines, LoopBridge
from tfship.serve.errors import InvalidArgumentError


def test_results_and_errors_from_another_thread_arrive_with_one_wakeup_per_burst():
    bridge = LoopBridge()
    futures = [Future() for _ in range(20)]
    wakeups = []

    async def main():
        loop = asyncio.get_running_loop()
        real = loop.call_soon_threadsafe

        def counting(callback, *args):
            wakeups.append(callback)
            return real(callback, *args)

        loop.call_soon_threadsafe = counting
        waiters = [asyncio.ensure_future(bridge.wait(f)) for f in futures]
        await asyncio.sleep(0)  # every waiter is registered

        def complete_all():  # a batch thread finishing one batch
            for i, f in enumerate(futures):
                if i == 7:
                    f.set_exception(InvalidArgumentError("row 7 was bad"))
                else:
                    f.set_result(i * 10)

        t = threading.Thread(target=complete_all)
        t.start()
        t.join()
        return await asyncio.gather(*waiters, return_exceptions=True)

    results = asyncio.run(main())
    assert [r for i, r in enumerate(results) if i != 7] == [i * 10 for i in range(20) if i != 7]
    assert isinstance(results[7], InvalidArgumentError) and results[7].message == "row 7 was bad"
    assert len(wakeups) == 1, wakeups  # 20 completions, one loop wake-up


def test_a_cancelled_waiter_is_skipped_and_others_still_complete():
    bridge = LoopBridge()
    gone, kept = Future(), Future()

    async def main():
        w_gone = asyncio.ensure_future(bridge.wait(gone))
        w_kept = asyncio.ensure_future(bridge.wait(kept))
        await asyncio.sleep(0)
        w_gone.cancel()  # the client went away while its batch ran
        gone.set_result("late")
        kept.set_result("ok")
        with pytest.raises(asyncio.CancelledError):
            await w_gone
        return await asyncio.wait_for(w_kept, 5)

    assert asyncio.run(main()) == "ok"


def test_deadlines_time_out_only_the_late_calls_with_one_timer_at_a_time():
    deadlines = Deadlines(0.05, resolution=0.005)
    timers = []

    async def main():
        loop = asyncio.get_running_loop()
        real = loop.call_later

        def counting(delay, callback, *args):
            if callback == deadlines._sweep:
                timers.append(loop.time())
            return real(delay, callback, *args)

        loop.call_later = counting

        async def call(seconds, value):
            await asyncio.sleep(seconds)
            return value

        results = await asyncio.gather(*[deadlines.run(call(0.2 if i % 3 == 0 else 0.001, i)) for i in range(30)],
                                       return_exceptions=True)
        armed_while_busy = len(timers)
        await asyncio.sleep(0.05)  # nothing in flight: no sweep is armed again
        return results, armed_while_busy

    results, armed = asyncio.run(main())
    assert [type(r) for r in results[::3]] == [TimeoutError] * 10
    assert [r for i, r in enumerate(results) if i % 3] == [i for i in range(30) if i % 3]
    # one sweep timer at a time, re-armed every 5 ms for the ~50 ms of the timeout, none per call
    assert 5 <= armed <= 20 and len(timers) == armed, (armed, len(timers))
    assert not deadlines._pending and not deadlines._armed


def test_a_call_cancelled_by_someone_else_stays_cancelled():
    deadlines = Deadlines(10)

    async def main():
        task = asyncio.ensure_future(deadlines.run(asyncio.sleep(5)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
