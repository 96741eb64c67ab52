"""The slot limiter: FIFO, never over its slots, safe under cancellation, honest counters."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest

from sevenfold.llm.limiter import Limiters, SlotLimiter


async def test_slots_are_granted_first_come_first_served() -> None:
    limiter = SlotLimiter(1)
    await limiter.acquire()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await limiter.acquire()
        order.append(i)
        limiter.release()

    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(waiter(i)))
        await asyncio.sleep(0)  # queue them in this order
    assert limiter.waiting == 5
    limiter.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert limiter.in_flight == 0


async def test_a_cancelled_waiter_leaves_the_queue_and_loses_no_slot() -> None:
    limiter = SlotLimiter(1)
    await limiter.acquire()
    doomed = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    doomed.cancel()
    await asyncio.sleep(0)
    assert limiter.waiting == 0
    limiter.release()
    assert limiter.in_flight == 0
    await asyncio.wait_for(limiter.acquire(), 1)


async def test_a_slot_granted_at_the_moment_of_cancellation_passes_on() -> None:
    limiter = SlotLimiter(1)
    await limiter.acquire()
    doomed = asyncio.create_task(limiter.acquire())
    survivor = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release()  # hands the slot to `doomed`, delivered on the next loop turn
    doomed.cancel()  # ... which is cancelled before it runs
    await asyncio.wait_for(survivor, 1)
    assert limiter.in_flight == 1 and limiter.waiting == 0
    limiter.release()
    assert limiter.in_flight == 0


async def test_random_load_with_cancellations_never_exceeds_the_slots() -> None:
    limiter = SlotLimiter(3)
    rng = random.Random(5)
    peak = 0

    async def job() -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(rng.random() / 200)

    tasks = [asyncio.create_task(job()) for _ in range(200)]
    await asyncio.sleep(0.01)
    for task in rng.sample(tasks, 40):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert peak == 3 and limiter.in_flight == 0 and limiter.waiting == 0


async def test_occupancy_is_time_weighted_in_flight_over_slots() -> None:
    now = [100.0]
    limiter = SlotLimiter(4, clock=lambda: now[0])
    start = limiter.snapshot()
    await limiter.acquire()
    await limiter.acquire()
    now[0] += 2.0
    limiter.release()
    limiter.release()
    now[0] += 2.0
    assert limiter.snapshot().occupancy_since(start) == pytest.approx(0.25)  # two of four slots for half the time


async def test_time_spent_waiting_for_a_slot_is_counted() -> None:
    now = [0.0]
    limiter = SlotLimiter(1, clock=lambda: now[0])
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)  # it queues
    now[0] += 3.0
    limiter.release()
    await waiter
    assert limiter.snapshot().wait_seconds == pytest.approx(3.0)


def test_threads_and_coroutines_share_one_queue() -> None:
    limiter = SlotLimiter(2)
    peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal peak
        with limiter.slot_blocking():
            with lock:
                peak = max(peak, limiter.in_flight)
            time.sleep(0.01)

    async def coroutines() -> None:
        async def one() -> None:
            async with limiter.slot():
                await asyncio.sleep(0.01)

        await asyncio.gather(*(one() for _ in range(10)))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    asyncio.run(coroutines())
    for thread in threads:
        thread.join()
    assert peak <= 2 and limiter.in_flight == 0


def test_one_limiter_per_endpoint_sized_once_and_only_resize_changes_it() -> None:
    limiters = Limiters()
    assert limiters.get("http://127.0.0.1:1/v1") is None  # a lookup never makes one
    first = limiters.open("http://127.0.0.1:1/v1/", 7)
    assert limiters.open("http://127.0.0.1:1/v1", 4) is first and first.slots == 7  # a second opener does not resize
    assert limiters.get("http://127.0.0.1:1/v1/") is first
    assert limiters.open("http://127.0.0.1:2/v1", 3) is not first
    limiters.resize("http://127.0.0.1:1/v1", 5)
    assert first.slots == 5


async def test_a_run_asking_for_fewer_slots_is_capped_inside_the_endpoints_limiter() -> None:
    limiters = Limiters()
    endpoint = limiters.open("http://127.0.0.1:1/v1", 3)
    capped = limiters.for_run("http://127.0.0.1:1/v1", 1)
    assert limiters.for_run("http://127.0.0.1:1/v1", 3) is endpoint  # no cap when the run wants it all
    await capped.acquire()
    assert endpoint.in_flight == 1
    second = asyncio.ensure_future(capped.acquire())
    await endpoint.acquire()  # another run still gets the endpoint's free slots
    await endpoint.acquire()
    assert not second.done() and endpoint.in_flight == 3
    endpoint.release()
    capped.release()  # the run's own slot frees: its waiter now takes the endpoint slot left
    await second
    assert endpoint.in_flight == 2 and capped.snapshot().slots == 3  # counters are the endpoint's
    endpoint.release()  # the other run's last slot
    capped.release()  # the run's second request
    assert endpoint.in_flight == 0 and capped.cap.in_flight == 0
    # a cancelled waiter on the cap takes nothing from the endpoint
    await capped.acquire()
    waiter = asyncio.ensure_future(capped.acquire())
    await asyncio.sleep(0)  # one turn of the loop: the waiter runs until it queues (no timing involved)
    assert capped.cap.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    capped.release()
    assert endpoint.in_flight == 0


def test_releasing_more_than_acquired_is_a_bug_caught_at_once() -> None:
    with pytest.raises(RuntimeError, match="released more often"):
        SlotLimiter(1).release()
