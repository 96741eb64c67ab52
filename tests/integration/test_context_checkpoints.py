"""The worker's transcript on LangGraph's `DeltaChannel` (beta) with the SQLite saver: flat checkpoints, exact resume.

The graph here has the worker's state and its two-node loop shape (a model turn, a tool turn), without a model:
what is tested is the channel and the saver, which the real worker relies on.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Literal

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.graph.state import CompiledStateGraph

from sevenfold.nodes.context_window import with_ids
from sevenfold.state.team import WorkerState

TURNS = 60
COMPACT_AT = 40
OUTPUT = "x" * 2_000


class Crash(Exception):
    pass


def build(crash_at: set[int] | None = None) -> StateGraph:
    """agent <-> act for TURNS turns; at COMPACT_AT the agent replaces the transcript (as a compaction does)."""
    crashes = crash_at if crash_at is not None else set()

    async def agent(state: WorkerState) -> dict[str, Any]:
        step = state.get("steps", 0)
        if step in crashes:
            crashes.discard(step)
            raise Crash(f"killed at turn {step}")
        reply = AIMessage("", tool_calls=[{"name": "view_file", "args": {"path": f"f{step}.py"}, "id": f"c{step}"}])
        update: list[AnyMessage] = with_ids([reply])
        if step == COMPACT_AT:
            messages = state["messages"]
            kept = with_ids(
                [*messages[:2], HumanMessage("## Summary of your earlier turns\nDid things."), *messages[-4:]]
            )
            update = [RemoveMessage(id=REMOVE_ALL_MESSAGES), *kept, *update]
        return {"messages": update, "steps": step + 1}

    async def act(state: WorkerState) -> dict[str, Any]:
        call = state["messages"][-1].tool_calls[0]  # type: ignore[union-attr]
        return {"messages": with_ids([ToolMessage(f"{call['id']}: {OUTPUT}", tool_call_id=call["id"])])}

    def route(state: WorkerState) -> Literal["act", "__end__"]:
        return "act" if state.get("steps", 0) < TURNS else END

    graph = StateGraph(WorkerState)
    graph.add_node("agent", agent)
    graph.add_node("act", act)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["act", END])
    graph.add_edge("act", "agent")
    return graph


START_STATE = {
    "messages": with_ids([SystemMessage("system"), HumanMessage("task")]),
    "steps": 0,
}


async def _run(db: Path, graph: StateGraph, *, resume: bool = False) -> list[AnyMessage]:
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        compiled: CompiledStateGraph = graph.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "w"}, "recursion_limit": 1_000}
        result = await compiled.ainvoke(None if resume else START_STATE, config, durability="sync")  # type: ignore[arg-type]
        return list(result["messages"])


async def _stored(db: Path) -> list[AnyMessage]:
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        compiled = build().compile(checkpointer=saver)
        state = await compiled.aget_state({"configurable": {"thread_id": "w"}})
        return list(state.values["messages"])


def _bytes_per_checkpoint(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT LENGTH(c.checkpoint) + LENGTH(c.metadata) + COALESCE((SELECT SUM(LENGTH(w.value)) FROM writes w "
            "WHERE w.checkpoint_id = c.checkpoint_id), 0) FROM checkpoints c ORDER BY c.checkpoint_id"
        ).fetchall()
    return [int(size) for (size,) in rows]


async def test_checkpoints_hold_each_steps_new_messages_not_the_transcript(tmp_path: Path) -> None:
    live = await _run(tmp_path / "c.sqlite", build())
    sizes = _bytes_per_checkpoint(tmp_path / "c.sqlite")
    early, late = sizes[4:20], sizes[2 * COMPACT_AT - 20 : 2 * COMPACT_AT - 4]  # both before the compaction
    assert max(late) < 1.3 * max(early), (early, late)
    assert max(sizes) < 50 * len(OUTPUT)  # a full transcript (60 x 2 kB) would be larger
    assert [m.content for m in live[:3]] == ["system", "task", "## Summary of your earlier turns\nDid things."]


async def test_a_resumed_reader_rebuilds_the_identical_transcript(tmp_path: Path) -> None:
    live = await _run(tmp_path / "c.sqlite", build())
    stored = await _stored(tmp_path / "c.sqlite")
    assert stored == live
    assert [m.id for m in stored] == [m.id for m in live]


async def test_a_run_killed_mid_loop_and_at_the_compaction_resumes_to_the_same_transcript(tmp_path: Path) -> None:
    reference = await _run(tmp_path / "reference.sqlite", build())
    db = tmp_path / "crashed.sqlite"
    crashes = {17, COMPACT_AT}
    for _ in range(len(crashes)):
        with pytest.raises(Crash):
            await _run(db, build(crashes), resume=db.exists())
    assert not crashes
    resumed = await _run(db, build(crashes), resume=True)
    assert [(type(m), m.content) for m in resumed] == [(type(m), m.content) for m in reference]
    assert await _stored(db) == resumed
