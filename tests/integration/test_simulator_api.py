"""The simulator speaks vLLM's OpenAI-compatible API to real clients over real HTTP."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from sevenfold.sim.runner import BackgroundSimulator


@tool
def edit(path: str, line: int, force: bool, options: dict[str, Any], ratio: float) -> str:
    """Edit a file."""
    return "ok"


@tool
def view(path: str) -> str:
    """View a file."""
    return "ok"


def _client(sim: BackgroundSimulator, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=sim.base_url, api_key="EMPTY", model=sim.model, max_retries=0, timeout=30, **kwargs)  # type: ignore[arg-type]


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


async def _metrics(sim: BackgroundSimulator) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(sim.base_url.removesuffix("/v1") + "/metrics") as response,
    ):
        return await response.text()


async def test_plain_and_streamed_completions_through_chat_openai(sim: BackgroundSimulator) -> None:
    reply = await _client(sim).ainvoke([HumanMessage("hello there")])
    assert reply.content == "hello there"
    assert reply.response_metadata["finish_reason"] == "stop"
    assert (
        reply.usage_metadata and reply.usage_metadata["input_tokens"] > 0 and reply.usage_metadata["output_tokens"] > 0
    )
    chunks = [
        chunk async for chunk in _client(sim, stream_usage=True).astream([HumanMessage("streamed words come back")])
    ]
    assert len(chunks) > 3
    assert "".join(str(c.content) for c in chunks) == "streamed words come back"
    assert any(c.usage_metadata for c in chunks)


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_arrive_parsed_and_typed_by_the_schema(sim: BackgroundSimulator, stream: bool) -> None:
    args = {"path": "src/a.py", "line": 12, "force": True, "options": {"depth": [1, 2]}, "ratio": 0.25}
    request = [{"tool": "edit", "arguments": args}, {"tool": "view", "arguments": {"path": "x <y> \n z"}}]
    model = _client(sim, streaming=stream).bind_tools([edit, view])
    reply = await model.ainvoke([HumanMessage(json.dumps(request))])
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("edit", args), ("view", {"path": "x <y> \n z"})]
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    assert not reply.invalid_tool_calls


async def test_at_most_max_num_seqs_run_and_the_rest_wait(start_sim: Callable[..., BackgroundSimulator]) -> None:
    sim = start_sim(profile="h100-fp8", max_num_seqs=7, time_scale=2.0)
    body = {"model": sim.model, "messages": [{"role": "user", "content": "word " * 60}]}
    samples: list[tuple[float, float]] = []

    async def one(session: aiohttp.ClientSession) -> None:
        async with session.post(sim.base_url + "/chat/completions", json=body) as response:
            assert response.status == 200
            await response.read()

    async def watch(session: aiohttp.ClientSession, done: asyncio.Event) -> None:
        while not done.is_set():
            async with session.get(sim.base_url.removesuffix("/v1") + "/metrics") as response:
                text = await response.text()
            samples.append((_metric(text, "vllm:num_requests_running"), _metric(text, "vllm:num_requests_waiting")))
            await asyncio.sleep(0.02)

    async with aiohttp.ClientSession() as session:
        done = asyncio.Event()
        watcher = asyncio.create_task(watch(session, done))
        await asyncio.gather(*(one(session) for _ in range(20)))
        done.set()
        await watcher
    assert max(running for running, _ in samples) == 7
    assert max(waiting for _, waiting in samples) >= 10
    assert sim.simulator.engine.peak_running == 7
    # From the request log: no instant had more than 7 requests being served.
    spans = sorted((r["start_offset"], r["end_offset"]) for r in sim.simulator.requests)
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    depth = peak = 0
    for _, step in events:
        depth += step
        peak = max(peak, depth)
    assert peak == 7


async def test_a_shared_long_prefix_hits_the_prefix_cache(start_sim: Callable[..., BackgroundSimulator]) -> None:
    sim = start_sim(enable_prompt_tokens_details=True)  # vLLM reports cached tokens only with this flag
    system = "You are a worker on the sevenfold team. Repository map follows.\n" + "src/module.py: def f(): ...\n" * 200
    client = _client(sim)
    before = _metric(await _metrics(sim), "vllm:prefix_cache_hits_total")
    first = await client.ainvoke([("system", system), ("user", "subtask one")])
    second = await client.ainvoke([("system", system), ("user", "subtask two, different")])
    after = _metric(await _metrics(sim), "vllm:prefix_cache_hits_total")
    assert first.usage_metadata and second.usage_metadata
    prompt = second.usage_metadata["input_tokens"]
    assert after - before >= 0.9 * prompt - 32
    assert second.usage_metadata["input_token_details"]["cache_read"] == after - before
    queried = _metric(await _metrics(sim), "vllm:prefix_cache_queries_total")
    assert queried == first.usage_metadata["input_tokens"] + prompt


@pytest.mark.parametrize(
    ("body", "status", "kind", "says"),
    [
        (
            b'{"model": "no/such-model", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "NotFoundError",
            "does not exist",
        ),
        (b'{"model": "Qwen/Qwen3-Coder-30B-A3B-Instruct", "messages": "hi"}', 400, "Bad Request", "'messages'"),
        (b"{not json", 400, "Bad Request", "JSON decode error"),
        (
            b'{"model": "Qwen/Qwen3-Coder-30B-A3B-Instruct", "messages": [{"role": "user", "content": "x"}], "max_tokens": 999999999}',
            400,
            "BadRequestError",
            "maximum context length",
        ),
    ],
)
async def test_bad_requests_get_vllm_style_errors(
    sim: BackgroundSimulator, body: bytes, status: int, kind: str, says: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            sim.base_url + "/chat/completions", data=body, headers={"Content-Type": "application/json"}
        ) as response,
    ):
        payload = await response.json()
    assert response.status == status
    assert payload["error"]["type"] == kind and payload["error"]["code"] == status
    assert says in payload["error"]["message"]


async def test_models_health_and_metrics_endpoints(sim: BackgroundSimulator) -> None:
    root = sim.base_url.removesuffix("/v1")
    async with aiohttp.ClientSession() as session:
        async with session.get(sim.base_url + "/models") as response:
            models = await response.json()
        async with session.get(root + "/health") as response:
            assert response.status == 200
    assert [m["id"] for m in models["data"]] == [sim.model]
    text = await _metrics(sim)
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_queries_total",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
    ):
        _metric(text, name)
    assert "vllm:time_to_first_token_seconds_bucket" in text and "vllm:inter_token_latency_seconds_bucket" in text


async def test_request_log_records_role_hints_and_thinking(
    start_sim: Callable[..., BackgroundSimulator], tmp_path: Path
) -> None:
    log = tmp_path / "requests.jsonl"
    sim = start_sim(request_log=log)
    client = _client(
        sim,
        default_headers={"X-Sevenfold-Role": "planner"},
        extra_body={"chat_template_kwargs": {"enable_thinking": True}},
    )
    await client.ainvoke([HumanMessage("plan this")])
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 1
    assert records[0]["hints"] == {"role": "planner"} and records[0]["enable_thinking"] is True
    assert records[0]["prompt_tokens"] > 0 and records[0]["completion_tokens"] > 0 and records[0]["status"] == 200


@pytest.mark.parametrize(
    ("extras", "tokens", "finish"),
    [({"ignore_eos": True}, 64, "length"), ({"min_tokens": 40}, 40, "stop"), ({}, None, "stop")],
)
async def test_ignore_eos_and_min_tokens_force_the_output_length(
    sim: BackgroundSimulator, extras: dict[str, Any], tokens: int | None, finish: str
) -> None:
    body = {"model": sim.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64, **extras}
    async with (
        aiohttp.ClientSession() as session,
        session.post(sim.base_url + "/chat/completions", json=body) as response,
    ):
        payload = await response.json()
    assert response.status == 200, payload
    produced = payload["usage"]["completion_tokens"]
    assert payload["choices"][0]["finish_reason"] == finish
    assert produced == tokens if tokens is not None else produced < 40
