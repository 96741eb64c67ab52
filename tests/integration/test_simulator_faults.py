"""Every simulated failure mode reaches a real client the way vLLM's would."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from sevenfold.errors import SettingsError
from sevenfold.llm.chat import is_retryable
from sevenfold.sim.faults import FaultSpec
from sevenfold.sim.runner import BackgroundSimulator


@tool
def edit(path: str, line: int) -> str:
    """Edit a file at a line."""
    return "ok"


CALL = json.dumps({"tool": "edit", "arguments": {"path": "a.py", "line": 3}})


def _client(sim: BackgroundSimulator, **kwargs: Any) -> ChatOpenAI:
    options: dict[str, Any] = {"max_retries": 0, "timeout": 10} | kwargs
    return ChatOpenAI(base_url=sim.base_url, api_key="EMPTY", model=sim.model, **options)  # type: ignore[arg-type]


def _faults(*specs: str) -> list[FaultSpec]:
    return [FaultSpec.parse(spec) for spec in specs]


async def test_http_5xx_reaches_the_client_as_a_server_error(start_sim: Callable[..., BackgroundSimulator]) -> None:
    sim = start_sim(faults=_faults("http5xx:1"))
    with pytest.raises(openai.InternalServerError) as caught:
        await _client(sim).ainvoke([HumanMessage("x")])
    assert caught.value.status_code == 500 and is_retryable(caught.value)


async def test_a_stall_trips_the_client_timeout(start_sim: Callable[..., BackgroundSimulator]) -> None:
    sim = start_sim(faults=_faults("stall:1:3"))
    with pytest.raises(openai.APITimeoutError) as caught:
        await _client(sim, timeout=0.5).ainvoke([HumanMessage("x")])
    assert is_retryable(caught.value)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_dropped_connection_is_an_error_the_client_can_retry(
    start_sim: Callable[..., BackgroundSimulator], stream: bool
) -> None:
    sim = start_sim(faults=_faults("drop:1"))
    with pytest.raises(Exception) as caught:
        await _client(sim, streaming=stream).ainvoke([HumanMessage("a reply long enough to be cut in the middle " * 5)])
    assert is_retryable(caught.value), repr(caught.value)


@pytest.mark.parametrize("stream", [False, True])
async def test_leaked_tool_calls_arrive_as_content_with_finish_reason_stop(
    start_sim: Callable[..., BackgroundSimulator], stream: bool
) -> None:
    sim = start_sim(faults=_faults("leak:1"))
    reply = await _client(sim, streaming=stream).bind_tools([edit]).ainvoke([HumanMessage(CALL)])
    assert reply.tool_calls == []
    assert "<tool_call>" in str(reply.content) and "<function=edit>" in str(reply.content)
    assert reply.response_metadata["finish_reason"] == "stop"


async def test_malformed_tool_calls_never_arrive_as_the_intended_call(
    start_sim: Callable[..., BackgroundSimulator],
) -> None:
    shapes = set()
    for seed in range(12):
        sim = start_sim(faults=_faults("malformed:1"), seed=seed)
        reply = await _client(sim).bind_tools([edit]).ainvoke([HumanMessage(CALL)])
        intended = [c for c in reply.tool_calls if c["name"] == "edit" and c["args"] == {"path": "a.py", "line": 3}]
        assert intended == [], reply
        shapes.add("content" if not reply.tool_calls else "wrong-call")
    assert shapes == {"content", "wrong-call"}


@pytest.mark.parametrize("stream", [False, True])
async def test_truncation_reports_finish_reason_length(
    start_sim: Callable[..., BackgroundSimulator], stream: bool
) -> None:
    sim = start_sim(faults=_faults("length:1"))
    text = "every word of this sentence should not come back " * 4
    reply = await _client(sim, streaming=stream).ainvoke([HumanMessage(text)])
    assert reply.response_metadata["finish_reason"] == "length"
    assert 0 < len(str(reply.content)) < len(text)


async def test_max_tokens_cuts_the_reply_with_finish_reason_length(sim: BackgroundSimulator) -> None:
    reply = await _client(sim, max_completion_tokens=5).ainvoke(
        [HumanMessage("one two three four five six seven eight nine ten")]
    )
    assert reply.response_metadata["finish_reason"] == "length"
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] == 5
    assert str(reply.content) == "one two three four five"


async def test_fault_draws_repeat_with_the_seed(start_sim: Callable[..., BackgroundSimulator]) -> None:
    def names(sim: BackgroundSimulator) -> list[list[str]]:
        return [r["faults"] for r in sim.simulator.requests]

    runs = []
    for _ in range(2):
        sim = start_sim(faults=_faults("http5xx:0.3", "length:0.3"), seed=7)
        client = _client(sim)
        for i in range(20):
            with contextlib.suppress(openai.InternalServerError):
                await client.ainvoke([HumanMessage(f"request {i % 5}")])
        runs.append(names(sim))
    assert runs[0] == runs[1]
    assert any(runs[0]) and not all(runs[0])


@pytest.mark.parametrize("spec", ["nonsense", "http5xx:2", "stall:0.1", "drop", "leak:x"])
def test_bad_fault_specs_are_refused_with_the_accepted_forms(spec: str) -> None:
    with pytest.raises(SettingsError, match="bad --fault"):
        FaultSpec.parse(spec)
