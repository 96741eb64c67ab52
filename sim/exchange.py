"""One admitted request in flight: its choices in the engine, and waiting on them.

Chat completions and completions share this: each choice (`n` of them) is one
sequence in the engine with its own plan and assembler, as vLLM runs each of
a request's `n` samples as its own engine request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sevenfold.sim.engine import Sequence
from sevenfold.sim.faults import FaultDraw
from sevenfold.sim.output import OutputAssembler
from sevenfold.sim.plan import ChoicePlan


@dataclass
class Choice:
    """One of a request's `n` choices: its plan, its sequence in the engine, and what has been sent of it."""

    index: int
    plan: ChoicePlan
    seq: Sequence
    assembler: OutputAssembler
    logprobs_sent: int = 0
    """Tokens whose logprobs have been sent (streaming)."""

    @property
    def released(self) -> int:
        """Output tokens the engine has generated so far (the end-of-turn token is not output)."""
        return min(self.seq.generated, len(self.plan.output.tokens))

    @property
    def finish_reason(self) -> str:
        """The choice's chat `finish_reason`: "tool_calls" when calls ended an "auto" or "required" turn, not a named one.

        For completions it is the engine's, the plan's `finish`.
        """
        called = bool(self.assembler.calls) and self.assembler.guided in (None, "required")
        return "tool_calls" if self.plan.finish == "stop" and called else self.plan.finish

    def unsent_tokens(self, upto: int) -> tuple[int, list[str]]:
        """The position and text of the released tokens whose logprobs are not sent yet, marked sent."""
        start = self.logprobs_sent
        self.logprobs_sent = max(start, upto)
        return start, self.plan.output.tokens[start:upto]


@dataclass
class Exchange:
    """A request the engine is serving: what the client asked for and its choices."""

    request_id: str
    model: str
    body: dict[str, Any]
    fault: FaultDraw
    max_tokens: int
    top_logprobs: int | None
    """None without logprobs; else how many alternatives each token lists."""
    choices: list[Choice] = field(default_factory=list)
    created: int = field(default_factory=lambda: int(time.time()))
    dropped: bool = False
    """The connection was closed under the response (the `drop` fault)."""

    @property
    def stream(self) -> bool:
        """Whether the client asked for server-sent events."""
        return bool(self.body.get("stream"))

    @property
    def include_usage(self) -> bool:
        """Whether a streamed response ends with a usage chunk (`stream_options.include_usage`, true when omitted)."""
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage", True) is True

    @property
    def drop_at(self) -> int | None:
        """After how many of choice 0's tokens the `drop` fault closes the connection; None without it."""
        if not self.fault.drop:
            return None
        return max(1, int(len(self.choices[0].plan.output.tokens) * self.fault.variant))

    async def wait_all(self) -> None:
        """Until every choice has finished."""
        for choice in self.choices:
            while not choice.seq.done:
                await choice.seq.progress.wait()
                choice.seq.progress.clear()

    async def wait_any(self, pending: list[Choice]) -> None:
        """Until the engine has released a token of one of `pending` (or finished one)."""
        events = [c.seq.progress for c in pending]
        if not any(e.is_set() for e in events):
            if len(events) == 1:
                await events[0].wait()
            else:
                waiters = [asyncio.ensure_future(e.wait()) for e in events]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
        for event in events:
            event.clear()

    def record(self) -> dict[str, Any]:
        """The request log's figures for this request (its first choice's)."""
        first = self.choices[0]
        seq = first.seq
        return {
            "status": 200,
            "prompt_tokens": seq.prompt_tokens,
            "cached_tokens": seq.cached_tokens,
            "completion_tokens": seq.generated,
            "finish_reason": first.finish_reason,
            "tool_calls": [c.name for c in first.assembler.calls],
            "preemptions": seq.preemptions,
            "queue_s": _span(seq.arrival, seq.scheduled_at),
            "ttft_s": _span(seq.arrival, seq.first_token_at),
            "e2e_s": _span(seq.arrival, seq.finished_at),
            "start_offset": seq.scheduled_at,
            "end_offset": seq.finished_at,
        }

    def drop(self, request: web.Request) -> None:
        """Close the connection under the response, as a crashed or restarted server would."""
        self.dropped = True
        if request.transport is not None:
            request.transport.abort()


def usage(exchange: Exchange, prompt_tokens_details: bool, *, stream: bool) -> dict[str, Any]:
    """vLLM's `usage`: the prompt once, every choice's tokens; cached tokens only with `--enable-prompt-tokens-details`.

    A non-streamed body lists `prompt_tokens_details: null` (vLLM dumps every field); a streamed one leaves it out.
    """
    first = exchange.choices[0].seq
    completion = sum(c.seq.generated for c in exchange.choices)
    out: dict[str, Any] = {
        "prompt_tokens": first.prompt_tokens,
        "total_tokens": first.prompt_tokens + completion,
        "completion_tokens": completion,
    }
    details = {"cached_tokens": first.cached_tokens} if prompt_tokens_details and first.cached_tokens else None
    if details or not stream:
        out["prompt_tokens_details"] = details
    return out


def _span(start: float, end: float | None) -> float | None:
    return None if end is None else round(end - start, 6)
