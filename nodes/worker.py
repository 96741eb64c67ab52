"""The worker: one subtask, its own worktree, a tool loop with budgets.

The loop is three nodes of a subgraph (`graphs/worker.py` wires them):
`agent` asks the model, `act` runs the tool calls it made (concurrently),
`finish` commits the branch and hands back a `WorkerReport`. Because each turn
is a checkpointed step, a crash costs at most the turn in flight.

A worker never raises: a model that keeps failing, a tool that blows up or a
spent budget all end in a report with status and errors, so one worker's
trouble never cancels its siblings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Literal, Protocol

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from sevenfold.llm.chat import gone_error, went_away
from sevenfold.nodes.events import emit
from sevenfold.nodes.prompts import render
from sevenfold.nodes.repo_map import repo_map
from sevenfold.nodes.team import Team
from sevenfold.nodes.tool_calls import MAX_REJECTED_TURNS, check_call, count_repairs
from sevenfold.state.models import WorkerReport, to_state
from sevenfold.state.team import WorkerState
from sevenfold.tools.toolset import READ_ONLY_TOOLS

HEARTBEAT_S = 10.0
"""Seconds between heartbeat events while tools run (a proxy in front must never see 15 s of silence)."""


class WorkerNode(Protocol):
    """A node of the worker subgraph."""

    def __call__(self, state: WorkerState) -> Awaitable[dict[str, Any]]: ...


def worker_key(subtask_id: str, round_number: int, attempt: int) -> str:
    """The name of a worker's worktree and the last part of its branch."""
    key = subtask_id
    if round_number > 1:
        key += f".r{round_number}"
    if attempt > 1:
        key += f".a{attempt}"
    return key


def _key(state: WorkerState) -> str:
    return worker_key(state["subtask"]["id"], state["round"], state["attempt"])


def make_worker_nodes(base: Team) -> tuple[WorkerNode, WorkerNode, WorkerNode, WorkerNode]:
    """Build the worker's nodes: setup, agent, act, finish."""

    async def setup(state: WorkerState) -> dict[str, Any]:
        team = await base.current()
        key = _key(state)
        try:
            workspace = await team.workspace(state["repo"], state["run_id"])
            worktree = await workspace.ensure_worktree(key, state["base"])
        except Exception as exc:  # no worktree, no work: report it instead of raising
            return {
                "status": "failed",
                "errors": [f"could not create the worktree: {exc}"],
                "started": time.time(),
                "steps": 0,
            }
        system = render(
            "worker_system",
            task=state["task"],
            plan_summary=state["plan_summary"],
            repo_map=await repo_map(state["repo"], state["base"], team.settings.repo_map_max_files),
            test_command=team.settings.tools.test_command,
            test_env=sorted(team.settings.sandbox.env),
        )
        task = render("worker_task", subtask=state["subtask"], notes=state.get("notes", ""))
        emit("worker_started", subtask=key, goal=state["subtask"]["goal"])
        return {
            "worktree": str(worktree.path),
            "branch": worktree.branch,
            "messages": [SystemMessage(system), HumanMessage(task)],
            "steps": 0,
            "tool_calls": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "errors": [],
            "status": "",
            "started": time.time(),
        }

    async def agent(state: WorkerState) -> dict[str, Any]:
        team = await base.current()
        await _recover(team, state)
        settings = team.settings
        spent = state.get("prompt_tokens", 0) + state.get("completion_tokens", 0)
        if state.get("steps", 0) >= settings.worker_max_steps or spent >= settings.worker_max_tokens:
            reason = (
                f"{state.get('steps', 0)} turns"
                if state.get("steps", 0) >= settings.worker_max_steps
                else f"{spent} tokens"
            )
            return {"status": "budget_exhausted", "errors": [*state.get("errors", []), f"budget spent: {reason}"]}
        model = team.toolset(state["worktree"], await team.sandbox(state["repo"])).model
        try:
            reply = await model.ainvoke(state["messages"], extra_headers={"X-Sevenfold-Subtask": _key(state)})
        except Exception as exc:  # the client already retried; the server is not answering usefully
            if went_away(exc):  # not this worker's failure: stop the run, to be resumed when the server is back
                raise gone_error(exc, "worker") from exc
            return {
                "status": "failed",
                "errors": [*state.get("errors", []), f"model request failed: {type(exc).__name__}: {exc}"[:500]],
            }
        usage = reply.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
        return {
            "messages": [reply],
            "steps": state.get("steps", 0) + 1,
            "prompt_tokens": state.get("prompt_tokens", 0) + usage["input_tokens"],
            "completion_tokens": state.get("completion_tokens", 0) + usage["output_tokens"],
        }

    async def act(state: WorkerState) -> dict[str, Any]:
        team = await base.current()
        await _recover(team, state)
        reply = state["messages"][-1]
        assert isinstance(reply, AIMessage)
        tools = team.toolset(state["worktree"], await team.sandbox(state["repo"])).tools
        key = _key(state)

        async def call(tool_call: dict[str, Any]) -> ToolMessage:
            name, call_id = tool_call["name"], tool_call["id"] or ""
            emit("tool", subtask=key, tool=name)
            try:
                result = await tools[name].ainvoke(tool_call["args"])
            except Exception as exc:  # a tool bug: the model can read it and adjust
                return ToolMessage(
                    f"Error: {type(exc).__name__}: {exc}"[:4000], tool_call_id=call_id, name=name, status="error"
                )
            return ToolMessage(str(result), tool_call_id=call_id, name=name)

        runnable, refused = [], []
        for tool_call in reply.tool_calls:
            problem = check_call(tool_call["name"], tool_call["args"], tools)
            if problem is None:
                runnable.append(dict(tool_call))
            else:
                refused.append(
                    ToolMessage(problem, tool_call_id=tool_call["id"] or "", name=tool_call["name"], status="error")
                )
        for bad in reply.invalid_tool_calls:
            detail = bad.get("error") or f"the arguments are not valid JSON: {str(bad.get('args'))[:500]}"
            refused.append(
                ToolMessage(
                    f"Error: a tool call could not be read ({detail}). Write each call in the tool-call format, with arguments that fit the tool's schema.",
                    tool_call_id=bad.get("id") or "",
                    status="error",
                )
            )
        try:
            results = await _with_heartbeat(asyncio.gather(*(call(c) for c in runnable)), key)
        except asyncio.CancelledError:  # a sibling stopped the run: files may be ahead of the checkpoint now
            (await team.workspace(state["repo"], state["run_id"])).forget_recovery(Path(state["worktree"]))
            raise
        update: dict[str, Any] = count_repairs(state, len(runnable), len(refused), reply)
        if any(c["name"] not in READ_ONLY_TOOLS for c in runnable):
            workspace = await team.workspace(state["repo"], state["run_id"])
            update["tree"] = await workspace.snapshot(Path(state["worktree"]))
        if update["rejected_turns"] >= MAX_REJECTED_TURNS:
            update["status"] = "failed"
            update["errors"] = [
                *state.get("errors", []),
                f"gave up after {MAX_REJECTED_TURNS} turns of tool calls that could not be used",
            ]
        return {
            "messages": [*results, *refused],
            "tool_calls": state.get("tool_calls", 0) + len(runnable) + len(refused),
            **update,
        }

    async def finish(state: WorkerState) -> dict[str, Any]:
        team = await base.current()
        if state.get("worktree"):
            await _recover(team, state)
        key = _key(state)
        status = state.get("status") or "done"
        errors = list(state.get("errors", []))
        summary = ""
        messages = state.get("messages", [])
        if messages and isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls:
            summary = str(messages[-1].content)
        commit: str | None = None
        files: list[str] = []
        left_out: list[str] = []
        if state.get("worktree"):
            try:
                workspace = await team.workspace(state["repo"], state["run_id"])
                commit, files = await workspace.commit_worktree(
                    Path(state["worktree"]),
                    f"sevenfold: {state['subtask']['id']}\n\n{state['subtask']['goal']}\n\n{summary}".strip(),
                    base=state["base"],
                )
                left_out = await workspace.nested_repositories(Path(state["worktree"]))
            except Exception as exc:
                status, errors = "failed", [*errors, f"could not commit: {exc}"]
        if status == "done" and not commit and not files:
            summary = summary or "No changes were needed."
        report = WorkerReport(
            subtask_id=state["subtask"]["id"],
            round=state["round"],
            attempt=state["attempt"],
            status=status,
            summary=summary[:4000],
            branch=state.get("branch", ""),
            commit=commit,
            files_changed=files,
            left_out=left_out,
            steps=state.get("steps", 0),
            tool_calls=state.get("tool_calls", 0),
            tool_calls_recovered=state.get("tool_calls_recovered", 0),
            tool_calls_repaired=state.get("tool_calls_repaired", 0),
            tool_calls_failed=state.get("rejections_pending", 0),
            prompt_tokens=state.get("prompt_tokens", 0),
            completion_tokens=state.get("completion_tokens", 0),
            duration_s=round(time.time() - state.get("started", time.time()), 3),
            errors=errors,
        )
        if state.get("worktree"):
            team.release_toolset(state["worktree"])
        emit(
            "worker_finished",
            subtask=key,
            status=report.status,
            files=files,
            tokens=report.prompt_tokens + report.completion_tokens,
        )
        return {"reports": [to_state(report)]}

    return setup, agent, act, finish


async def _recover(team: Team, state: WorkerState) -> None:
    """The first step of a worker in this process puts its files back to the last checkpointed step's."""
    workspace = await team.workspace(state["repo"], state["run_id"])
    if await workspace.recover(Path(state["worktree"]), state.get("tree") or state["base"]):
        emit("worktree_restored", subtask=_key(state))


def route_worker(state: WorkerState) -> Literal["act", "finish"]:
    """After the model: run its tool calls, or finish (answered, failed, or out of budget)."""
    if state.get("status"):
        return "finish"
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls):
        return "act"
    return "finish"


def route_after_act(state: WorkerState) -> Literal["agent", "finish"]:
    """After the tools: back to the model, unless the worker has given up."""
    return "finish" if state.get("status") else "agent"


def route_setup(state: WorkerState) -> Literal["agent", "finish"]:
    """After setup: work, or report that the worktree could not be made."""
    return "finish" if state.get("status") else "agent"


async def _with_heartbeat(work: Awaitable[list[ToolMessage]], key: str) -> list[ToolMessage]:
    task = asyncio.ensure_future(work)
    started = time.monotonic()
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_S)
        if done:
            return task.result()
        emit("heartbeat", subtask=key, running_s=round(time.monotonic() - started, 1))
