"""The worker's context budget, asked of a real HTTP server: the simulator (vLLM's endpoints) and a bare one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from sevenfold.llm.budget import SERVER_FACTS, worker_budget
from sevenfold.settings import Settings
from sevenfold.sim.runner import BackgroundSimulator, free_port


async def test_the_budget_comes_from_the_servers_context_length_and_kv_cache(
    start_sim: Callable[..., BackgroundSimulator], settings_for: Callable[..., Settings]
) -> None:
    sim = start_sim(profile="h100-fp8", kv_cache_tokens=152_000, max_model_len=32_768)
    settings = settings_for(sim, slots=7, worker={"max_tokens": 2048})
    budget = await worker_budget(settings)
    assert budget.max_model_len == 32_768
    assert budget.kv_share is not None and 150_000 // 7 <= budget.kv_share <= 152_000 // 7
    assert budget.tokens == budget.kv_share - 2048
    assert "(server)" in budget.source


@pytest.fixture
async def bare_server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """An OpenAI-compatible server that lists its model without a context length and has no /metrics."""
    asked: dict[str, int] = {}
    port = free_port()

    async def models(request: web.Request) -> web.Response:
        asked["models"] = asked.get("models", 0) + 1
        await asyncio.sleep(0)  # let the other callers arrive while this one is in flight
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    app = web.Application()
    app.add_routes([web.get("/v1/models", models)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/v1", asked
    await runner.cleanup()


async def test_a_server_without_vllms_endpoints_falls_back_to_settings_and_is_asked_once(
    bare_server: tuple[str, dict[str, int]], settings_for: Callable[..., Settings]
) -> None:
    base_url, asked = bare_server
    settings = settings_for(base_url, model="m", context={"max_model_len": 16_384, "kv_cache_tokens": 70_000})
    budgets: list[Any] = await asyncio.gather(*(worker_budget(settings) for _ in range(7)))
    assert {b.tokens for b in budgets} == {10_000 - 4096}
    assert "max_model_len 16,384 (setting)" in budgets[0].source and "(setting)" in budgets[0].source
    await worker_budget(settings)
    assert asked == {"models": 1}


async def test_an_unreachable_server_leaves_the_settings_budget(settings_for: Callable[..., Settings]) -> None:
    settings = settings_for(f"http://127.0.0.1:{free_port()}/v1", context={"budget": 9_000})
    budget = await worker_budget(settings)
    assert budget.tokens == 9_000
    SERVER_FACTS.forget()
