"""`SevenfoldChatOpenAI`: LangChain's `ChatOpenAI` with the three things sevenfold adds.

1. Every request waits for a slot of its endpoint's `SlotLimiter`, and holds it
   only while the request is in flight.
2. Failed requests (connection errors, timeouts, 5xx, 429) are retried here,
   by one policy (`sevenfold.llm.retry`) for all four paths, with exponential
   backoff and jitter, *outside* the slot: a request sleeping before its retry
   does not keep the GPU's slot from another agent; a stream is retried only
   before its first chunk reached the caller. The OpenAI client's own retries
   are therefore off (`max_retries=0`).
3. Thinking text (`<think>` blocks in content, or vLLM's `reasoning_content`)
   is moved out of `content` into `additional_kwargs["reasoning_content"]`,
   so later nodes see only the answer.
4. The transcript and tool schemas travel in `extra_body` (`_get_request_payload`):
   the OpenAI SDK walks every request's typed fields on the event loop
   (`maybe_transform`, O(messages): ~27 ms at 500 messages) but merges
   `extra_body` after that walk, into the same keys, so the bytes on the wire do
   not change (DESIGN section 12). A `priority=N` keyword goes out as vLLM's
   request `priority`. A context-length 400 is raised as `ContextTooLongError`.

It is still a `ChatOpenAI`: `bind_tools`, `with_structured_output` and LCEL
work unchanged, against vLLM or any OpenAI-compatible server.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr

from sevenfold.errors import ServerWentAwayError
from sevenfold.llm.limiter import Slots
from sevenfold.llm.recovery import recover_in_message
from sevenfold.llm.retry import RetryPolicy, context_too_long, is_retryable
from sevenfold.llm.stats import CallStats
from sevenfold.llm.stream import StreamCleaner
from sevenfold.llm.thinking import move_thinking, thinking_capability

__all__ = ["SevenfoldChatOpenAI", "gone_error", "is_retryable", "stop_if_gone", "went_away"]

log = logging.getLogger(__name__)

_VLLM_EXTRA_KEYS = ("top_k", "repetition_penalty", "chat_template_kwargs")


def went_away(exc: BaseException) -> bool:
    """Whether a request failed because nothing accepts connections any more (not a slow or failing answer)."""
    if isinstance(exc, openai.APITimeoutError):
        return False
    if isinstance(exc, openai.APIConnectionError):
        return True
    return any(cls.__name__ in ("ConnectError", "ClientConnectorError") for cls in type(exc).__mro__)


def gone_error(exc: BaseException, role: str) -> ServerWentAwayError:
    """The one-line error a node raises when the server went away under it (the run stops and can be resumed)."""
    cause = exc.__cause__ or exc
    return ServerWentAwayError(
        f"the model server stopped accepting connections during the {role}'s request "
        f"({type(cause).__name__}), after retries"
    )


def stop_if_gone(exc: BaseException, role: str) -> None:
    """Raise `ServerWentAwayError` if `exc` means the server went away (the run stops, resumable); else return.

    A node calls it first in its handler for a failed model request, then deals with the failure as its own.
    """
    if went_away(exc):
        raise gone_error(exc, role) from exc


_CONVERTED_KEPT = 16_384
"""Messages whose request form one client keeps (all its workers' transcripts; each entry is a few small dicts)."""
_PASSED_THROUGH = ("messages", "tools")
"""Request fields sent through `extra_body`, so the SDK's per-call transform does not walk them."""


@contextmanager
def _typed_errors() -> Iterator[None]:
    """A context-length 400 leaves as `ContextTooLongError`; every other error as it was."""
    try:
        yield
    except openai.BadRequestError as exc:
        too_long = context_too_long(exc)
        if too_long is None:
            raise
        raise too_long from exc


def _rejects_vllm_extras(exc: BaseException) -> bool:
    return isinstance(exc, openai.BadRequestError) and any(key in str(exc) for key in _VLLM_EXTRA_KEYS)


class SevenfoldChatOpenAI(ChatOpenAI):
    """A `ChatOpenAI` whose requests go through a slot limiter, retry outside it, and keep thinking out of content."""

    role: str = "model"
    """The orchestrator role using this client (sent as the `X-Sevenfold-Role` header)."""
    retry_attempts: int = 3
    """Retries after the first attempt, for retryable errors only."""
    retry_backoff: float = 0.5
    """Seconds before the first retry; doubles each time (jittered), capped at 30 s."""

    _limiter: Slots | None = PrivateAttr(default=None)
    _stats: CallStats = PrivateAttr(default_factory=CallStats)
    _converted: OrderedDict[str, tuple[BaseMessage, dict[str, Any]]] = PrivateAttr(default_factory=OrderedDict)

    def with_limiter(self, limiter: Slots | None) -> SevenfoldChatOpenAI:
        """Route this client's requests through `limiter`; returns self."""
        self._limiter = limiter
        return self

    @property
    def limiter(self) -> Slots | None:
        return self._limiter

    @property
    def stats(self) -> CallStats:
        return self._stats

    def _retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.retry_attempts,
            backoff=self.retry_backoff,
            stats=self._stats,
            resend_without_extras=self._drop_rejected_extras,
        )

    def _drop_rejected_extras(self, exc: BaseException) -> bool:
        """If the server rejected vLLM-only request fields, go on without them (True: send again at once)."""
        if not (_rejects_vllm_extras(exc) and self.extra_body):
            return False
        log.warning(
            "%s: the server rejected vLLM-only request fields (%s); continuing without them",
            self.role,
            ", ".join(sorted(self.extra_body)),
        )
        self.extra_body = None
        return True

    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """The request, with `messages` and `tools` moved into `extra_body` (same keys, same place, same bytes).

        The SDK requires `messages`; an empty list stands in for it (and for `tools`) so the keys keep their
        place in the body, and `extra_body` replaces their values after the SDK's walk. Structured-output
        requests (`response_format`) are left alone: the SDK parses their replies with the typed fields.
        """
        priority = kwargs.pop("priority", None)
        messages = self._convert_input(input_).to_messages()
        payload: dict[str, Any] = super()._get_request_payload([], stop=stop, **kwargs)
        if "input" in payload or not self._plain_chat:  # the Responses API, or o-series roles: LangChain's own way
            payload = super()._get_request_payload(messages, stop=stop, **kwargs)
        else:
            payload["messages"] = [self._message_dict(m) for m in messages]
        extra = dict(payload.get("extra_body") or {})
        if priority is not None:
            extra["priority"] = int(priority)
        if "response_format" not in payload and "input" not in payload:
            for key in _PASSED_THROUGH:
                if key in payload:
                    extra[key] = payload[key]
                    payload[key] = []
        if extra:
            payload["extra_body"] = extra
        return payload

    @property
    def _plain_chat(self) -> bool:
        return not (self.model_name and re.match(r"^o\d", self.model_name))

    def _message_dict(self, message: BaseMessage) -> dict[str, Any]:
        """A message as the request carries it, converted once: a transcript is append-only, so every turn
        would otherwise convert all its earlier messages again (~17 us per AI message, on the event loop)."""
        kept = self._converted  # a private attribute: read once (pydantic's lookup costs a microsecond a time)
        cached = kept.get(message.id) if message.id else None
        if cached is not None and cached[0] is message:
            kept.move_to_end(message.id or "")
            return cached[1]
        converted = super()._get_request_payload([message])["messages"][0]
        if message.id:
            kept[message.id] = (message, converted)
            if len(kept) > _CONVERTED_KEPT:
                kept.popitem(last=False)
        return converted

    def _count_usage(self, message: BaseMessage) -> None:
        usage = getattr(message, "usage_metadata", None)
        if usage:
            self._stats.prompt_tokens += usage.get("input_tokens", 0)
            self._stats.completion_tokens += usage.get("output_tokens", 0)

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """One attempt: counted, and holding a slot only while it is in flight."""
        self._stats.requests += 1
        if self._limiter is not None:
            started = time.monotonic()
            self._limiter.acquire_blocking()
            self._stats.slot_wait_s += time.monotonic() - started
        try:
            yield
        finally:
            if self._limiter is not None:
                self._limiter.release()

    @asynccontextmanager
    async def _aslot(self) -> AsyncIterator[None]:
        self._stats.requests += 1
        if self._limiter is not None:
            started = time.monotonic()
            await self._limiter.acquire()
            self._stats.slot_wait_s += time.monotonic() - started
        try:
            yield
        finally:
            if self._limiter is not None:
                self._limiter.release()

    def _cleaned(self, result: ChatResult, tools: list[dict[str, Any]] | None) -> ChatResult:
        for generation in result.generations:
            self._count_usage(generation.message)
            if generation.generation_info is None:
                generation.generation_info = {}
            recover_in_message(generation.message, tools, self._stats, generation.generation_info)
        return result

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with _typed_errors():
            for attempt in self._retry_policy().retrying():
                with attempt, self._slot():
                    result = super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        return self._cleaned(result, kwargs.get("tools"))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with _typed_errors():
            async for attempt in self._retry_policy().aretrying():
                with attempt:
                    async with self._aslot():
                        result = await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
        return self._cleaned(result, kwargs.get("tools"))

    def _may_think(self, kwargs: dict[str, Any]) -> bool:
        """Whether this request asked a model that can think to think (its template may open `<think>` itself)."""
        body = {**(self.extra_body or {}), **(kwargs.get("extra_body") or {})}
        template = body.get("chat_template_kwargs") or {}
        return bool(template.get("enable_thinking")) and thinking_capability(self.model_name) != "none"

    def _create_chat_result(self, response: dict | openai.BaseModel, generation_info: dict | None = None) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        raw = response if isinstance(response, dict) else response.model_dump()
        for generation, choice in zip(result.generations, raw.get("choices") or [], strict=False):
            message = choice.get("message") or {}
            move_thinking(generation.message, message.get("reasoning_content") or message.get("reasoning"))
        return result

    def _convert_chunk_to_generation_chunk(
        self, chunk: dict, default_chunk_class: type, base_generation_info: dict | None
    ) -> ChatGenerationChunk | None:
        generation = super()._convert_chunk_to_generation_chunk(chunk, default_chunk_class, base_generation_info)
        choices = chunk.get("choices") or []
        if generation is not None and choices and isinstance(choices[0].get("delta"), dict):
            delta = choices[0]["delta"]
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                generation.message.additional_kwargs["reasoning_content"] = reasoning
        return generation

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        delivered: list[bool] = []  # once a chunk reached the caller, the request cannot be replayed invisibly
        with _typed_errors():
            for attempt in self._retry_policy().retrying(replayable=lambda: not delivered):
                with attempt, self._slot():
                    cleaner = StreamCleaner(kwargs.get("tools"), self._stats, self._may_think(kwargs))
                    for generation in super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs):
                        self._count_usage(generation.message)
                        delivered.append(True)
                        yield cleaner.clean(generation)
                    tail = cleaner.tail()
                    if tail is not None:
                        yield tail

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        delivered: list[bool] = []
        with _typed_errors():
            async for attempt in self._retry_policy().aretrying(replayable=lambda: not delivered):
                with attempt:
                    async with self._aslot():
                        cleaner = StreamCleaner(kwargs.get("tools"), self._stats, self._may_think(kwargs))
                        async for generation in super()._astream(
                            messages, stop=stop, run_manager=run_manager, **kwargs
                        ):
                            self._count_usage(generation.message)
                            delivered.append(True)
                            yield cleaner.clean(generation)
                        tail = cleaner.tail()
                        if tail is not None:
                            yield tail
