"""Waiting for a condition with a deadline, instead of sleeping and hoping it came true meanwhile.

A test that sleeps 0.2 s and then asserts passes or fails with the machine's load. These helpers return as soon
as the condition holds and fail, naming what was awaited, only when it still does not hold at the deadline; the
deadline is generous because reaching it means the test fails anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE_S = 30.0
"""How long a condition may take to come true before the test fails: far beyond any load, short of pytest's timeout."""

POLL_S = 0.01


class NeverHappened(AssertionError):
    """The awaited condition did not come true before the deadline."""


def wait_until(condition: Callable[[], T], what: str | Callable[[], str], within_s: float = DEADLINE_S) -> T:
    """Poll `condition` until it returns something truthy and return that; `NeverHappened` at the deadline.

    `what` names the awaited condition in the failure (a callable: computed then, e.g. to list what is left).
    """
    deadline = time.monotonic() + within_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise NeverHappened(_failure(what, within_s))
        time.sleep(POLL_S)
    return value


async def await_until(condition: Callable[[], T], what: str | Callable[[], str], within_s: float = DEADLINE_S) -> T:
    """`wait_until` for a coroutine: polls between turns of the event loop, so the loop keeps running."""
    deadline = time.monotonic() + within_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise NeverHappened(_failure(what, within_s))
        await asyncio.sleep(POLL_S)
    return value


def _failure(what: str | Callable[[], str], within_s: float) -> str:
    return f"waited {within_s:g} s for {what() if callable(what) else what}"
