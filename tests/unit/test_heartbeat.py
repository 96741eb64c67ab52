"""While a worker's tools run, the stream hears a heartbeat at least every HEARTBEAT_S seconds."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from sevenfold.nodes import worker


class S(TypedDict, total=False):
    done: bool


async def test_long_tools_emit_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "HEARTBEAT_S", 0.05)

    async def slow_tools(state: S) -> dict[str, Any]:
        async def tools() -> list[Any]:
            await asyncio.sleep(0.3)
            return []

        await worker._with_heartbeat(tools(), "w1")
        return {"done": True}

    graph = StateGraph(S)
    graph.add_node("slow_tools", slow_tools)
    graph.add_edge(START, "slow_tools")
    graph.add_edge("slow_tools", END)
    events = [e async for e in graph.compile().astream({}, stream_mode="custom")]
    beats = [e for e in events if e["event"] == "heartbeat"]
    assert len(beats) >= 4 and all(b["subtask"] == "w1" for b in beats)
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(beats)]
    assert max(gaps) < 0.2
