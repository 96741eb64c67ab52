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
import zlib
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.runtime import Runtime

from sevenfold.context import RunContext
from sevenfold.llm.chat import stop_if_gone
from sevenfold.llm.factory import session_headers
from sevenfold.nodes.context_window import ask, record_outputs, with_ids
from sevenfold.nodes.events import emit
from sevenfold.nodes.prompts import render
from sevenfold.nodes.repo_map import repo_map
from sevenfold.nodes.resources import Resources, RunResources
from sevenfold.nodes.tool_calls import MAX_REJECTED_TURNS, count_repairs, run_call, split_calls
from sevenfold.settings import Settings
from sevenfold.state.models import WorkerReport, to_state
from sevenfold.state.team import WorkerState
from sevenfold.tools.outputs import outputs_dir
from sevenfold.tools.toolset import READ_ONLY_TOOLS

HEARTBEAT_S = 10.0
"""Seconds between heartbeat events while tools run (a proxy in front must never see 15 s of silence)."""


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


async def _run(state: WorkerState, runtime: Runtime[RunContext], resources: Resources) -> RunResources:
    return await resources.for_run(state["run_id"], runtime.context)


async def setup(state: WorkerState, runtime: Runtime[RunContext], *, resources: Resources) -> dict[str, Any]:
    """Make the worker's worktree and its first two messages (system prompt, subtask)."""
    run = await _run(state, runtime, resources)
    key = _key(state)
    try:
        workspace = await run.workspace(state["repo"])
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
        repo_map=await repo_map(state["repo"], state["base"], run.settings.repo_map_max_files),
        test_command=run.settings.tools.test_command,
        test_env=sorted(run.settings.sandbox.env),
    )
    task = render("worker_task", subtask=state["subtask"], notes=state.get("notes", ""))
    budget = await run.context_budget()
    emit("worker_started", subtask=key, goal=state["subtask"]["goal"])
    return {
        "worktree": str(worktree.path),
        "branch": worktree.branch,
        "messages": with_ids([SystemMessage(system), HumanMessage(task)]),
        "steps": 0,
        "tool_calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "context_budget": budget.tokens,
        "context_tokens": 0,
        "compactions": 0,
        "errors": [],
        "status": "",
        "started": time.time(),
    }


def _budget_spent(state: WorkerState, settings: Settings) -> str | None:
    """Why the worker's budget is spent (turns or tokens), or None while it is not."""
    steps = state.get("steps", 0)
    spent = state.get("prompt_tokens", 0) + state.get("completion_tokens", 0)
    if steps >= settings.worker_max_steps:
        return f"{steps} turns"
    if spent >= settings.worker_max_tokens:
        return f"{spent} tokens"
    return None


async def agent(state: WorkerState, runtime: Runtime[RunContext], *, resources: Resources) -> dict[str, Any]:
    """Ask the model for the next turn, unless the budget is spent."""
    run = await _run(state, runtime, resources)
    await _restore(run, state)
    spent = _budget_spent(state, run.settings)
    if spent:
        return {"status": "budget_exhausted", "errors": [*state.get("errors", []), f"budget spent: {spent}"]}
    toolset = run.toolset(state["worktree"], await run.sandbox(state["repo"]))
    try:  # compacts the transcript first if it is too long for the budget (or the server says so)
        turn = await ask(
            toolset.model,
            state["messages"],
            await run.context_budget() if run.settings.context.manage else None,
            context_tokens=state.get("context_tokens", 0),
            compactions=state.get("compactions", 0),
            tools=list(toolset.tools.values()),
            archive=run.run_dir / "transcripts" / f"{_key(state)}.jsonl",
            request=_request(run.settings, state),
        )
    except Exception as exc:  # the client already retried; the server is not answering usefully
        stop_if_gone(exc, "worker")  # not this worker's failure: the run stops, to be resumed later
        return {
            "status": "failed",
            "errors": [*state.get("errors", []), f"model request failed: {type(exc).__name__}: {exc}"[:500]],
        }
    usage = turn.reply.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
    return {
        "messages": turn.messages,
        "steps": state.get("steps", 0) + 1,
        "prompt_tokens": state.get("prompt_tokens", 0) + usage["input_tokens"],
        "completion_tokens": state.get("completion_tokens", 0) + usage["output_tokens"],
        "context_tokens": turn.context_tokens,
        "peak_context_tokens": max(state.get("peak_context_tokens", 0), usage["input_tokens"]),
        "compactions": turn.compactions,
    }


def _request(settings: Settings, state: WorkerState) -> dict[str, Any]:
    """Keyword arguments of the worker's model requests: its name, its session key, and its priority when the
    server uses them.

    With `session_scope = "worker"` the session key is the worker's own (run id and worker key), so a router
    spreads one run's workers over its replicas; otherwise the client's run-wide key stands.
    The priority is the subtask's place in the plan (lower is served first), so when the KV cache fills, vLLM
    preempts the same worker each time instead of thrashing all of them; without a place, a hash of its name.
    """
    endpoint = settings.endpoint_for("worker")
    headers = {"X-Sevenfold-Subtask": _key(state)}
    if endpoint.session_scope == "worker":
        headers |= session_headers(endpoint, state["run_id"], _key(state))
    request: dict[str, Any] = {"extra_headers": headers}
    if endpoint.priority_scheduling:
        request["priority"] = state.get("position", zlib.crc32(_key(state).encode()) % 100)
    return request


async def act(state: WorkerState, runtime: Runtime[RunContext], *, resources: Resources) -> dict[str, Any]:
    """Run the tool calls of the model's last turn (concurrently); refuse those that cannot run."""
    run = await _run(state, runtime, resources)
    await _restore(run, state)
    reply = state["messages"][-1]
    assert isinstance(reply, AIMessage)
    tools = run.toolset(state["worktree"], await run.sandbox(state["repo"])).tools
    key = _key(state)
    runnable, refused = split_calls(reply, tools)
    try:
        results = await _with_heartbeat(asyncio.gather(*(run_call(tools, c, key) for c in runnable)), key)
    except asyncio.CancelledError:  # a sibling stopped the run: files may be ahead of the checkpoint now
        (await run.workspace(state["repo"])).restore_again(Path(state["worktree"]))
        raise
    messages, offloaded, tokens = await record_outputs(
        [*results, *refused], outputs_dir(Path(state["worktree"])), run.settings.context
    )
    update: dict[str, Any] = count_repairs(state, len(runnable), len(refused), reply)
    if any(c["name"] not in READ_ONLY_TOOLS for c in runnable):
        update["tree"] = await (await run.workspace(state["repo"])).snapshot(Path(state["worktree"]))
    if update["rejected_turns"] >= MAX_REJECTED_TURNS:
        update["status"] = "failed"
        update["errors"] = [
            *state.get("errors", []),
            f"gave up after {MAX_REJECTED_TURNS} turns of tool calls that could not be used",
        ]
    return {
        "messages": messages,
        "tool_calls": state.get("tool_calls", 0) + len(runnable) + len(refused),
        "context_tokens": state.get("context_tokens", 0) + tokens,
        "outputs_offloaded": state.get("outputs_offloaded", 0) + offloaded,
        **update,
    }


def _summary(state: WorkerState) -> str:
    """The worker's last answer (a reply without tool calls), if it ended with one."""
    messages = state.get("messages", [])
    if messages and isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls:
        return str(messages[-1].content)
    return ""


async def finish(state: WorkerState, runtime: Runtime[RunContext], *, resources: Resources) -> dict[str, Any]:
    """Commit the worktree to the worker's branch and hand back the report."""
    run = await _run(state, runtime, resources)
    if state.get("worktree"):
        await _restore(run, state)
    key = _key(state)
    status = state.get("status") or "done"
    errors = list(state.get("errors", []))
    summary = _summary(state)
    commit: str | None = None
    files: list[str] = []
    left_out: list[str] = []
    if state.get("worktree"):
        try:
            workspace = await run.workspace(state["repo"])
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
        tool_calls_unrepaired=state.get("tool_calls_unrepaired", 0),
        prompt_tokens=state.get("prompt_tokens", 0),
        completion_tokens=state.get("completion_tokens", 0),
        context_budget=state.get("context_budget"),
        peak_context_tokens=state.get("peak_context_tokens", 0),
        compactions=state.get("compactions", 0),
        outputs_offloaded=state.get("outputs_offloaded", 0),
        duration_s=round(time.time() - state.get("started", time.time()), 3),
        errors=errors,
    )
    if state.get("worktree"):
        run.release_toolset(state["worktree"])
    emit(
        "worker_finished",
        subtask=key,
        status=report.status,
        files=files,
        tokens=report.prompt_tokens + report.completion_tokens,
    )
    return {"reports": [to_state(report)]}


async def _restore(run: RunResources, state: WorkerState) -> None:
    """The first step of a worker in this process puts its files back to the last checkpointed step's."""
    workspace = await run.workspace(state["repo"])
    if await workspace.restore_once(Path(state["worktree"]), state.get("tree") or state["base"]):
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
