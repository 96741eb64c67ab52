"""Waking the engine at its step deadlines to a few microseconds, where asyncio alone manages a millisecond.

asyncio's timers wait in epoll, and CPython rounds an epoll timeout up to a
whole millisecond: a step of 0.6 ms of wall time (5.85 ms modelled at time
scale 10) lasts 1 ms, the next one finds its deadline passed and runs at once,
and tokens leave in pairs 1 ms apart. The mean is right, but a client's
inter-token latency (ITL) measures the rounding. `StepClock` sleeps through
asyncio until `COARSE_MARGIN_S` before the deadline, then sleeps the rest in a
thread with `time.sleep` (microsecond resolution on Linux) and wakes the loop
through the executor's future, so the loop is never blocked.

Measured on the 2-core development machine (`bench/sim_pacing.py --clock`),
steps paced to absolute deadlines on an otherwise idle loop, median interval:
asyncio alone 1.114 ms for a 1 ms step, 1.104 ms for 1.5 ms, 0.005 ms for
0.5 ms (bursts); with this clock 0.998, 1.499 and 0.500 ms.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

PACING_FLOOR_S = 0.001
"""The shortest wall-clock interval between a sequence's tokens the simulator streams honestly: 1 ms, so h100-fp8
(5.85 ms a token) up to time scale 5.85; `sevenfold bench` refuses beyond it. Measured with `bench/sim_pacing.py`
on the 2-core development machine (bench/README.md, serving section): `sevenfold bench`'s modelled output
throughput and median ITL stay within 10% of time scale 1's down to 0.3-0.4 ms in a quiet moment with the
simulator in its own process, but at 0.585 ms they went beyond it in 2 of ~10 runs in its own process and 3 of 5
on a thread of the client's (one interpreter lock for both) while other work shared the cores; at 1.17 ms,
within 3.5%. Below the floor tokens leave in bursts and ITL measures the machine, not the model."""

COARSE_MARGIN_S = 0.002
"""Sleep through asyncio until this long before a deadline (epoll may wake up to 1 ms late), then in the thread."""


class StepClock:
    """Sleeps until a `time.monotonic()` deadline; owns one thread from `start` to `close`."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Start the thread that sleeps the last stretch before each deadline."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim-clock")

    def close(self) -> None:
        """Stop the thread (a sleep in progress ends within `COARSE_MARGIN_S`)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def sleep_until(self, deadline: float) -> None:
        """Return at `deadline` (or at once, yielding to the loop, if it has passed)."""
        delay = deadline - time.monotonic()
        if delay > COARSE_MARGIN_S:
            await asyncio.sleep(delay - COARSE_MARGIN_S)
            delay = deadline - time.monotonic()
        if delay <= 0 or self._executor is None:
            await asyncio.sleep(max(delay, 0))
            return
        await asyncio.get_running_loop().run_in_executor(self._executor, time.sleep, delay)
