"""The one retry policy of `SevenfoldChatOpenAI`, shared by its four request paths (sync/async x invoke/stream).

Built on tenacity (mini-swe-agent retries the same way). The rules, each tested in
tests/integration/test_model_clients.py:

- Retryable failures (connection errors, timeouts, 429, 5xx) are sent again up to `attempts` more times, after an
  exponential, jittered backoff (`backoff` seconds, doubling, capped at 30 s); sync and async sleep the same.
- A server that rejects vLLM-only request fields is asked again at once without them (no backoff, not a retry).
- A stream is retried only before its first chunk reached the caller: after that, the failure is the caller's.
- A context-length 400 is never sent again (`context_too_long`): the caller compacts and asks anew.
- Every failure is counted in `CallStats.errors`; each retry in `retries`; a request given up on in `failures`.

The caller holds a slot only inside one attempt, so a request waiting to retry never holds a slot.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import openai
from tenacity import AsyncRetrying, RetryCallState, Retrying

from sevenfold.errors import ContextTooLongError
from sevenfold.llm.stats import CallStats

_TRANSPORT_ERRORS = {
    "TransportError",
    "RemoteProtocolError",
    "ReadError",
    "ConnectError",
    "TimeoutException",
}


_CONTEXT_LIMIT = re.compile(r"maximum context length is (\d+) tokens")
_INPUT_TOKENS = re.compile(r"(\d+) input tokens|\((\d+) in the messages")


def context_too_long(exc: BaseException) -> ContextTooLongError | None:
    """The typed error for a context-length 400 (either of vLLM's wordings, DESIGN section 12); None for others.

    langchain-openai raises a plain `BadRequestError` for these, so the text is matched. Never retried as is:
    the same request would fail the same way; the caller must shorten it.
    """
    if isinstance(exc, ContextTooLongError):
        return exc
    if not isinstance(exc, openai.BadRequestError):
        return None
    text = str(exc)
    limit = _CONTEXT_LIMIT.search(text)
    if limit is None:
        return None
    found = _INPUT_TOKENS.search(text)
    tokens = int(found.group(1) or found.group(2)) if found else None
    return ContextTooLongError(
        f"the prompt is too long for the server's context ({tokens or '?'} input tokens, "
        f"limit {limit.group(1)} tokens including the completion)",
        limit=int(limit.group(1)),
        input_tokens=tokens,
    )


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed request is worth sending again (the server or the network hiccupped)."""
    if isinstance(
        exc,
        openai.APIConnectionError | openai.InternalServerError | openai.RateLimitError | asyncio.TimeoutError,
    ):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (502, 503, 504)
    return any(cls.__name__ in _TRANSPORT_ERRORS for cls in type(exc).__mro__)


def _always() -> bool:
    return True


@dataclass
class RetryPolicy:
    """When to send a failed request again, and how long to wait first."""

    attempts: int
    """Retries after the first attempt, for retryable errors only."""
    backoff: float
    """Seconds before the first retry; doubles each time (jittered), capped at 30 s."""
    stats: CallStats
    resend_without_extras: Callable[[BaseException], bool] = field(default=lambda exc: False)
    """Called with each failure: True if the client dropped request fields the server rejected (resend at once)."""
    sleep: Callable[[float], None] = time.sleep
    asleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def wait_before(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        return float(min(30.0, self.backoff * 2**retry) * random.uniform(0.5, 1.5))

    def decide(self, exc: BaseException, attempt: int, replayable: bool = True) -> bool:
        """Whether to send again after `exc` failed attempt number `attempt` (0-based); counts it in the stats."""
        if not isinstance(exc, Exception):  # cancelled, or the caller closed a stream: never retried, not a failure
            return False
        self.stats.record_error(exc)
        if context_too_long(exc) is not None:  # the caller must shorten the prompt; resending cannot help
            self.stats.failures += 1
            return False
        if replayable and self.resend_without_extras(exc):
            return True
        if not replayable or attempt >= self.attempts or not is_retryable(exc):
            self.stats.failures += 1
            return False
        self.stats.retries += 1
        return True

    def retrying(self, replayable: Callable[[], bool] = _always) -> Retrying:
        """A tenacity `Retrying` with this policy, for the sync paths."""
        return Retrying(sleep=self.sleep, **self._rules(replayable))  # type: ignore[arg-type]

    def aretrying(self, replayable: Callable[[], bool] = _always) -> AsyncRetrying:
        """A tenacity `AsyncRetrying` with this policy, for the async paths."""
        return AsyncRetrying(sleep=self.asleep, **self._rules(replayable))  # type: ignore[arg-type]

    def _rules(self, replayable: Callable[[], bool]) -> dict[str, object]:
        def retry(state: RetryCallState) -> bool:
            outcome = state.outcome
            if outcome is None or not outcome.failed:
                return False
            exc = outcome.exception()
            return exc is not None and self.decide(exc, state.attempt_number - 1, replayable())

        def wait(state: RetryCallState) -> float:
            outcome = state.outcome
            exc = outcome.exception() if outcome is not None else None
            if isinstance(exc, openai.BadRequestError):  # resent without the rejected fields: nothing to wait for
                return 0.0
            return self.wait_before(state.attempt_number - 1)

        return {"retry": retry, "wait": wait, "reraise": True}
