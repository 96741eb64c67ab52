"""While a worker's tools run, the stream hears a heartbeat every HEARTBEAT_S seconds, and none once they are done."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from sevenfold.nodes import worker
from tests.waiting import DEADLINE_S


class S(TypedDict, total=False):
    done: bool


async def test_long_tools_emit_heartbeats_until_they_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "HEARTBEAT_S", 0.01)
    heard_enough = asyncio.Event()  # the tools run until the test has heard three beats: no race with the clock

    async def slow_tools(state: S) -> dict[str, Any]:
        async def tools() -> list[Any]:
            await heard_enough.wait()
            return []

        await worker._with_heartbeat(tools(), "w1")
        return {"done": True}

    graph = StateGraph(S)
    graph.add_node("slow_tools", slow_tools)
    graph.add_edge(START, "slow_tools")
    graph.add_edge("slow_tools", END)
    events: list[dict[str, Any]] = []

    async def listen() -> None:
        async for event in graph.compile().astream({}, stream_mode="custom"):
            events.append(event)
            if sum(e["event"] == "heartbeat" for e in events) == 3:
                heard_enough.set()

    await asyncio.wait_for(listen(), DEADLINE_S)
    beats = [e for e in events if e["event"] == "heartbeat"]
    assert len(beats) >= 3 and all(b["subtask"] == "w1" and "running_s" in b for b in beats)
    # The stream ended, so the beats stopped when the tools finished.


async def test_tools_that_finish_within_the_interval_emit_no_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "HEARTBEAT_S", DEADLINE_S)

    async def quick_tools(state: S) -> dict[str, Any]:
        async def tools() -> list[Any]:
            return []

        assert await worker._with_heartbeat(tools(), "w1") == []
        return {"done": True}

    graph = StateGraph(S)
    graph.add_node("quick_tools", quick_tools)
    graph.add_edge(START, "quick_tools")
    graph.add_edge("quick_tools", END)
    beats = [e async for e in graph.compile().astream({}, stream_mode="custom") if e["event"] == "heartbeat"]
    assert beats == []
