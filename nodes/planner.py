"""The planner: task + repository map (+ failures) -> a validated `Plan`."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.runtime import Runtime

from sevenfold.context import RunContext
from sevenfold.errors import ServerError
from sevenfold.llm.chat import stop_if_gone
from sevenfold.llm.thinking import thinking_capability
from sevenfold.nodes.events import emit
from sevenfold.nodes.prompts import render
from sevenfold.nodes.repo_map import repo_map
from sevenfold.nodes.resources import Resources
from sevenfold.state.models import Plan, RoundSummary, Subtask, from_state, to_state
from sevenfold.state.team import TeamState

SUBMIT_PLAN: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "submit_plan",
        "description": "Submit the plan: the approach and the subtasks for the workers.",
        "parameters": Plan.model_json_schema(),
    },
}


def _failures(state: TeamState) -> str:
    tests = state.get("tests") or {}
    lines = []
    for failure in tests.get("failures", [])[:20]:
        lines.append(f"- {failure.get('name')}\n{failure.get('message', '')[:1500]}")
    if not lines and tests and not tests.get("ok", False):
        lines.append(tests.get("output_tail", "")[-3000:])
    return "\n".join(lines)


def _previous(state: TeamState) -> str:
    rounds = [from_state(RoundSummary, r) for r in state.get("rounds", [])]
    return "\n".join(f"- round {r.round}: subtasks {', '.join(r.subtasks)}; tests: {r.tests_summary}" for r in rounds)


def _plan_from(message: AIMessage) -> tuple[Plan | None, str, str | None]:
    """The plan in a reply, or why there is none; plus the tool call id to answer."""
    calls = [c for c in message.tool_calls if c["name"] == "submit_plan"]
    if not calls:
        return None, "the reply did not call submit_plan", None
    call = calls[0]
    try:
        plan = Plan.model_validate(call["args"])
    except ValueError as exc:
        return None, f"the arguments do not fit the schema: {str(exc)[:1500]}", call["id"]
    problems = plan.problems()
    if problems:
        return None, "; ".join(problems), call["id"]
    return plan, "", call["id"]


async def planner(state: TeamState, runtime: Runtime[RunContext], *, resources: Resources) -> dict[str, Any]:
    """Ask the model for a plan, a few times, each told why the last was refused; if none comes, one worker
    takes the whole task."""
    run = await resources.for_run(state["run_id"], runtime.context)
    settings = run.settings
    round_number = state.get("round", 0) + 1
    emit("planning", round=round_number)
    model_name = settings.model_for("planner")
    reason_first = settings.planner.thinking and thinking_capability(model_name) == "none"
    system = render(
        "planner_system", max_parallel=settings.endpoint_for("worker").total_slots, reason_first=reason_first
    )
    review = state.get("review") or {}
    user = render(
        "planner_user",
        task=state["task"],
        round=round_number,
        max_rounds=state.get("max_rounds", settings.max_rounds),
        repo_map=await repo_map(state["repo"], state["base_commit"], settings.repo_map_max_files),
        previous=_previous(state),
        failures=_failures(state) if round_number > 1 else "",
        review_notes=review.get("notes", "") if round_number > 1 else "",
    )
    round_base = review.get("integration_commit") or state["base_commit"]
    messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(user)]
    model = run.model("planner").bind_tools([SUBMIT_PLAN])
    plan: Plan | None = None
    reason = ""
    for _ in range(settings.plan_attempts):
        try:
            reply = await model.ainvoke(messages)
        except Exception as exc:  # without a plan the round cannot start: stop here, resumable
            stop_if_gone(exc, "planner")
            raise ServerError(
                f"the planner's model request failed after retries: {type(exc).__name__}: {exc}"[:300]
            ) from exc
        assert isinstance(reply, AIMessage)
        plan, reason, call_id = _plan_from(reply)
        if plan is not None:
            break
        rejected = render("plan_rejected", reason=reason)
        messages += [reply, ToolMessage(rejected, tool_call_id=call_id) if call_id else HumanMessage(rejected)]
    if plan is None:
        # Keep the team moving: one worker takes the whole task, and the report says why.
        plan = Plan(
            summary=f"The planner gave no usable plan ({reason}); one worker takes the whole task.",
            subtasks=[Subtask(id="whole-task", goal=state["task"])],
        )
    emit("plan_ready", round=round_number, summary=plan.summary, subtasks=[s.id for s in plan.subtasks])
    return {
        "round": round_number,
        "round_base": round_base,
        "plan": to_state(plan),
        "dispatched": [],
        "redispatched": [],
        "round_started": time.time(),
        "fanout_started": run.slot_mark(),
        "fanout_ended": None,
        "status": "working",
    }
