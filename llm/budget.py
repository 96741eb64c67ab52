"""How many prompt tokens one worker request may use: the context budget.

The budget comes from the worker's endpoint, asked once per process:

- the server's context length (`max_model_len` in vLLM's `GET /v1/models` card);
- the KV cache's size in tokens (`vllm:cache_config_info` on `GET /metrics`:
  `num_gpu_blocks` x `block_size`), or, where the server does not say, the
  capacity planner's figure for the configured GPU (`context.gpu`), or the
  `context.kv_cache_tokens` setting; shared fairly by the endpoint's slots, so
  that every request in flight fits in the cache together and vLLM never has to
  preempt (DESIGN section 12);
- minus the completion reserve (the worker's `max_tokens`).

    budget = min(max_model_len, kv_tokens / slots) - max_tokens

A transcript is compacted when it crosses `high_water` x budget, down to
`low_water` x budget. `context.budget` (also set by the run context's
`context_budget`) replaces the derived figure. A server without these endpoints
(any other OpenAI-compatible server) falls back to the settings.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

import aiohttp

from sevenfold.errors import SevenfoldError
from sevenfold.serving.capacity import plan_capacity
from sevenfold.serving.hardware import find_gpu
from sevenfold.settings import EndpointSettings, Settings

log = logging.getLogger(__name__)

_LABEL = re.compile(r'(\w+)="([^"]*)"')
MIN_BUDGET = 1_024
"""The smallest budget worth working with; below it the reserve is squeezed (and the budget says so)."""


@dataclass(frozen=True)
class ServerFacts:
    """What a server said about its context and cache (None: it did not say)."""

    max_model_len: int | None = None
    kv_cache_tokens: int | None = None


@dataclass(frozen=True)
class ContextBudget:
    """The prompt tokens one worker request may use, and the marks that start and end a compaction."""

    tokens: int
    """Prompt tokens a request may use."""
    high_water: int
    """A prompt this long or longer is compacted before it is sent."""
    low_water: int
    """What a compaction brings the prompt down to (at most)."""
    max_model_len: int
    kv_share: int | None
    """The KV cache's tokens divided by the endpoint's slots (None: unknown)."""
    reserve: int
    """Tokens kept for the completion (the worker's max_tokens)."""
    source: str
    """Where the figures came from, for the run report."""

    def describe(self) -> str:
        """One line for the run report."""
        return (
            f"{self.tokens:,} prompt tokens per worker request (compact at {self.high_water:,}, down to "
            f"{self.low_water:,}); {self.source}"
        )


def parse_kv_cache_tokens(metrics_text: str) -> int | None:
    """KV cache tokens from Prometheus text: `vllm:cache_config_info`'s num_gpu_blocks x block_size, if present."""
    for line in metrics_text.splitlines():
        if not line.startswith("vllm:cache_config_info{"):
            continue
        labels = dict(_LABEL.findall(line.partition("}")[0]))
        blocks, size = labels.get("num_gpu_blocks", ""), labels.get("block_size", "")
        if blocks.isdigit() and size.isdigit() and int(blocks) * int(size) > 0:
            return int(blocks) * int(size)
    return None


class ServerFactsCache:
    """What each endpoint said about itself, asked once per (base URL, model) per process.

    Process-wide like the slot limiters: a server's context length and cache size do not change while it runs,
    and seven workers starting at once must not each ask. Read-only for everyone after the first answer.
    """

    def __init__(self) -> None:
        self._facts: dict[tuple[str, str], ServerFacts] = {}
        self._asking: dict[tuple[str, str, int], asyncio.Task[ServerFacts]] = {}

    async def get(self, endpoint: EndpointSettings, model: str) -> ServerFacts:
        """The server's facts, asking it on the first call for this endpoint and model (never raises)."""
        key = (endpoint.base_url, model)
        if key in self._facts:
            return self._facts[key]
        loop_key = (*key, id(asyncio.get_running_loop()))
        task = self._asking.get(loop_key)
        if task is None:
            task = asyncio.ensure_future(ask_server(endpoint, model))
            self._asking[loop_key] = task
        try:
            facts = await asyncio.shield(task)
        finally:
            if task.done():
                self._asking.pop(loop_key, None)
        self._facts[key] = facts
        return facts

    def forget(self) -> None:
        """Drop everything learned (for tests that restart a server on the same address)."""
        self._facts.clear()
        self._asking.clear()


SERVER_FACTS = ServerFactsCache()
"""The process's one cache of server facts."""


async def ask_server(endpoint: EndpointSettings, model: str) -> ServerFacts:
    """`max_model_len` from `GET /v1/models` and the KV cache's tokens from `GET /metrics`; None where absent."""
    timeout = aiohttp.ClientTimeout(total=endpoint.connect_timeout * 2, connect=endpoint.connect_timeout)
    headers = {"Authorization": f"Bearer {endpoint.api_key.get_secret_value()}"}
    max_model_len: int | None = None
    kv_tokens: int | None = None
    try:
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            async with session.get(f"{endpoint.base_url}/models") as response:
                if response.status == 200:
                    body = await response.json(content_type=None)
                    cards = body.get("data") if isinstance(body, dict) else None
                    for card in cards if isinstance(cards, list) else []:
                        if isinstance(card, dict) and card.get("id") == model:
                            value = card.get("max_model_len")
                            max_model_len = value if isinstance(value, int) and value > 0 else None
            async with session.get(f"{endpoint.base_url.removesuffix('/v1')}/metrics") as response:
                if response.status == 200:
                    kv_tokens = parse_kv_cache_tokens(await response.text())
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        log.info("%s did not describe its context (%s); using settings", endpoint.base_url, type(exc).__name__)
    return ServerFacts(max_model_len, kv_tokens)


def plan_budget(settings: Settings, facts: ServerFacts) -> ContextBudget:
    """The worker's budget from the server's facts and the settings (`context.budget` wins when set)."""
    context = settings.context
    endpoint = settings.endpoint_for("worker")
    reserve = settings.worker.max_tokens
    sources = []
    max_model_len = facts.max_model_len or context.max_model_len
    sources.append(f"max_model_len {max_model_len:,} ({'server' if facts.max_model_len else 'setting'})")
    kv_tokens, kv_source = facts.kv_cache_tokens, "server"
    if kv_tokens is None and context.gpu:
        kv_tokens, kv_source = _planned_kv_tokens(settings, max_model_len), f"capacity planner, {context.gpu}"
    if kv_tokens is None and context.kv_cache_tokens:
        kv_tokens, kv_source = context.kv_cache_tokens, "setting"
    share = kv_tokens // endpoint.slots if kv_tokens else None
    if kv_tokens:
        sources.append(f"KV cache {kv_tokens:,} tokens ({kv_source}) / {endpoint.slots} slots = {share:,}")
    sources.append(f"minus {reserve:,} for the completion")
    limit = min(max_model_len, share) if share else max_model_len
    tokens = limit - reserve
    if tokens < MIN_BUDGET:
        tokens = max(MIN_BUDGET, limit // 2)
        sources.append(f"squeezed: the completion reserve leaves less than {MIN_BUDGET:,}")
    if context.budget:
        tokens = min(context.budget, max_model_len - 1)
        sources = [f"set in settings or the run context (the server's max_model_len is {max_model_len:,})"]
    return ContextBudget(
        tokens=tokens,
        high_water=int(tokens * context.high_water),
        low_water=int(tokens * context.low_water),
        max_model_len=max_model_len,
        kv_share=share,
        reserve=reserve,
        source="; ".join(sources),
    )


async def worker_budget(settings: Settings) -> ContextBudget:
    """The context budget of the worker role's requests (the server is asked once per process)."""
    endpoint = settings.endpoint_for("worker")
    facts = await SERVER_FACTS.get(endpoint, settings.model_for("worker"))
    return plan_budget(settings, facts)


def _planned_kv_tokens(settings: Settings, context: int) -> int | None:
    try:
        plan = plan_capacity(
            find_gpu(settings.context.gpu or ""),
            settings.context.gpu_count,
            slots=settings.endpoint_for("worker").slots,
            context=context,
        )
    except SevenfoldError as exc:
        log.warning("capacity planner: %s; the KV cache size is unknown", exc)
        return None
    return plan.kv_tokens or None
