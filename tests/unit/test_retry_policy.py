"""The one retry policy: sync and async wait the same backoff; a rejected vLLM field is resent at once."""

from __future__ import annotations

import asyncio

import httpx
import openai

from sevenfold.llm.retry import RetryPolicy
from sevenfold.llm.stats import CallStats

REQUEST = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


def test_sync_and_async_sleep_the_same_backoff_and_count_the_same() -> None:
    waits: dict[str, list[float]] = {"sync": [], "async": []}

    async def asleep(seconds: float) -> None:
        waits["async"].append(seconds)

    def attempt(left: list[BaseException]) -> str:
        if left:
            raise left.pop(0)
        return "done"

    async def aattempt(left: list[BaseException]) -> str:
        return attempt(left)

    stats = {mode: CallStats() for mode in waits}
    sync = RetryPolicy(attempts=3, backoff=1.0, stats=stats["sync"], sleep=waits["sync"].append)
    assert sync.retrying()(attempt, [openai.APIConnectionError(request=REQUEST) for _ in range(2)]) == "done"
    async_ = RetryPolicy(attempts=3, backoff=1.0, stats=stats["async"], asleep=asleep)
    errors = [openai.APIConnectionError(request=REQUEST) for _ in range(2)]
    assert asyncio.run(async_.aretrying()(aattempt, errors)) == "done"
    for mode, seen in waits.items():
        assert len(seen) == 2 and 0.5 <= seen[0] <= 1.5 and 1.0 <= seen[1] <= 3.0, (mode, seen)
        assert (stats[mode].retries, stats[mode].failures) == (2, 0)


def test_a_rejected_vllm_field_is_resent_at_once_and_is_not_a_retry() -> None:
    waits: list[float] = []
    rejected = openai.BadRequestError(
        "Unrecognized request argument supplied: top_k", response=httpx.Response(400, request=REQUEST), body=None
    )
    stats = CallStats()
    policy = RetryPolicy(
        attempts=0, backoff=1.0, stats=stats, resend_without_extras=lambda exc: True, sleep=waits.append
    )
    left: list[BaseException] = [rejected]

    def attempt() -> str:
        if left:
            raise left.pop(0)
        return "done"

    assert policy.retrying()(attempt) == "done"
    assert waits == [0.0] and stats.retries == 0 and stats.errors == {"BadRequestError": 1}
