"""The slot limiter: how many model requests are in flight at one endpoint.

vLLM serves a fixed number of sequences at full speed; more requests than
that queue on the server and gain nothing. sevenfold therefore bounds requests
in flight per endpoint, not workers: a worker running a tool holds no slot.
Every call to an endpoint, from any node, goes through that endpoint's limiter.

Slots are granted first come, first served. A waiter that is cancelled leaves
the queue; a slot granted to a waiter cancelled at that moment passes on to
the next, so a slot is never lost. Async callers wait on the event loop; sync
callers (a notebook's `invoke`) block their thread in the same queue.

The limiters live in one registry, `LIMITERS`, one per base URL: the only
process-wide mutable state in sevenfold. An endpoint's limiter is sized once,
by whoever opens it first (the graph's settings), and only `resize` changes it:
two runs in one process (Studio serves many) share their endpoint's slots and
never resize each other's. A run that asks for fewer slots than its endpoint
has gets a `RunCap` in front of the endpoint's limiter.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SlotSnapshot:
    """Counters at one moment; two snapshots give the occupancy between them."""

    time: float
    slots: int
    in_flight: int
    waiting: int
    peak_in_flight: int
    granted: int
    busy_slot_seconds: float
    """Integral of requests in flight over time, since the limiter was made."""
    wait_seconds: float
    """Total time callers spent waiting for a slot."""

    def occupancy_since(self, earlier: SlotSnapshot) -> float:
        """Time-averaged in-flight requests over slots between `earlier` and this snapshot (0..1)."""
        elapsed = self.time - earlier.time
        if elapsed <= 0:
            return 0.0
        return (self.busy_slot_seconds - earlier.busy_slot_seconds) / (elapsed * self.slots)


class _ThreadWaiter:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.granted = False
        self.abandoned = False


_Waiter = asyncio.Future[None] | _ThreadWaiter


class SlotLimiter:
    """A FIFO-fair, cancellation-safe bound on requests in flight, with live counters."""

    def __init__(self, slots: int, name: str = "", clock: Callable[[], float] = time.monotonic) -> None:
        """`clock` (seconds, monotonic) times the occupancy and wait counters; tests pass their own."""
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.name = name
        self._clock = clock
        self._slots = slots
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()
        self._in_flight = 0
        self._peak = 0
        self._granted = 0
        self._busy = 0.0
        self._wait = 0.0
        self._last = self._clock()

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def resize(self, slots: int) -> None:
        """Change the number of slots; waiters are admitted at once if it grew."""
        if slots < 1:
            raise ValueError("slots must be at least 1")
        with self._lock:
            self._slots = slots
            while self._waiters and self._in_flight < self._slots:
                self._account()
                self._in_flight += 1
                self._grant(self._waiters.popleft())

    def snapshot(self) -> SlotSnapshot:
        """The counters now."""
        with self._lock:
            self._account()
            return SlotSnapshot(
                self._clock(),
                self._slots,
                self._in_flight,
                len(self._waiters),
                self._peak,
                self._granted,
                self._busy,
                self._wait,
            )

    def _account(self) -> None:
        now = self._clock()
        self._busy += self._in_flight * (now - self._last)
        self._last = now

    def _take(self) -> None:
        self._account()
        self._in_flight += 1
        self._granted += 1
        self._peak = max(self._peak, self._in_flight)

    def _grant(self, waiter: _Waiter) -> None:
        # The slot stays counted in flight: it passes straight to the waiter.
        self._granted += 1
        self._peak = max(self._peak, self._in_flight)
        if isinstance(waiter, _ThreadWaiter):
            waiter.granted = True
            waiter.event.set()
        else:
            waiter.get_loop().call_soon_threadsafe(self._deliver, waiter)

    def _deliver(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            self.release()  # its owner gave up as the slot arrived: pass it on
        else:
            future.set_result(None)

    def _try_take(self) -> bool:
        if self._in_flight < self._slots and not self._waiters:
            self._take()
            return True
        return False

    async def acquire(self) -> None:
        """Wait for a slot (first come, first served)."""
        with self._lock:
            if self._try_take():
                return
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
        started = self._clock()
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                if future in self._waiters:
                    self._waiters.remove(future)
            # If the slot was already delivered, we hold it and must give it back.
            if future.done() and not future.cancelled():
                self.release()
            raise
        finally:
            with self._lock:
                self._wait += self._clock() - started

    def acquire_blocking(self, timeout: float | None = None) -> bool:
        """Block this thread until a slot is free; False if `timeout` passed first."""
        with self._lock:
            if self._try_take():
                return True
            waiter = _ThreadWaiter()
            self._waiters.append(waiter)
        started = self._clock()
        got = waiter.event.wait(timeout)
        with self._lock:
            self._wait += self._clock() - started
            if not got and not waiter.granted:
                self._waiters.remove(waiter)
                return False
        return True

    def release(self) -> None:
        """Give a slot back; the longest waiter gets it."""
        with self._lock:
            if self._waiters:
                self._grant(self._waiters.popleft())
                return
            if self._in_flight <= 0:
                raise RuntimeError(f"slot limiter {self.name!r} released more often than acquired")
            self._account()
            self._in_flight -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the body of an `async with`."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    @contextmanager
    def slot_blocking(self) -> Iterator[None]:
        """Hold a slot for the body of a `with` (sync callers)."""
        self.acquire_blocking()
        try:
            yield
        finally:
            self.release()


class Slots(Protocol):
    """What a chat client waits on: an endpoint's `SlotLimiter`, or a run's `RunCap` in front of one."""

    async def acquire(self) -> None: ...
    def acquire_blocking(self, timeout: float | None = None) -> bool: ...
    def release(self) -> None: ...
    def snapshot(self) -> SlotSnapshot: ...


class RunCap:
    """One run's share of an endpoint: at most `slots` of its requests in flight, inside the endpoint's limiter.

    It takes the run's own slot first, then the endpoint's, and gives them back in the other order, so a
    run waiting on its cap never holds an endpoint slot. Counters (`snapshot`) are the endpoint's.
    """

    def __init__(self, slots: int, endpoint: SlotLimiter) -> None:
        self.cap = SlotLimiter(slots, name=f"{endpoint.name} (run cap)")
        self.endpoint = endpoint

    @property
    def slots(self) -> int:
        return self.cap.slots

    async def acquire(self) -> None:
        await self.cap.acquire()
        try:
            await self.endpoint.acquire()
        except BaseException:
            self.cap.release()
            raise

    def acquire_blocking(self, timeout: float | None = None) -> bool:
        if not self.cap.acquire_blocking(timeout):
            return False
        if not self.endpoint.acquire_blocking(timeout):
            self.cap.release()
            return False
        return True

    def release(self) -> None:
        self.endpoint.release()
        self.cap.release()

    def snapshot(self) -> SlotSnapshot:
        return self.endpoint.snapshot()


class Limiters:
    """The process's endpoint limiters, one per base URL: the one owner, with a read-only lookup."""

    def __init__(self) -> None:
        self._limiters: dict[str, SlotLimiter] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(base_url: str) -> str:
        return base_url.rstrip("/")

    def get(self, base_url: str) -> SlotLimiter | None:
        """The endpoint's limiter if one was opened; never makes or changes one."""
        with self._lock:
            return self._limiters.get(self._key(base_url))

    def open(self, base_url: str, slots: int) -> SlotLimiter:
        """The endpoint's limiter, made with `slots` if it has none yet; an existing one keeps its size."""
        key = self._key(base_url)
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = self._limiters[key] = SlotLimiter(slots, name=key)
            return limiter

    def resize(self, base_url: str, slots: int) -> SlotLimiter:
        """Set the endpoint's slots (made if missing): what the server can hold changed, for every run."""
        limiter = self.open(base_url, slots)
        limiter.resize(slots)
        return limiter

    def for_run(self, base_url: str, slots: int) -> SlotLimiter | RunCap:
        """What one run's requests go through: the endpoint's limiter, capped when the run wants fewer slots."""
        limiter = self.open(base_url, slots)
        return RunCap(slots, limiter) if slots < limiter.slots else limiter


LIMITERS = Limiters()
"""The process's endpoint limiters."""
