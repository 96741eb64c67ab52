"""The verifier: run the project's tests on the merged result and decide whether the team goes again."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

from langgraph.runtime import Runtime

from sevenfold.context import RunContext
from sevenfold.llm.limiter import LIMITERS
from sevenfold.nodes.dispatch import round_reports
from sevenfold.nodes.events import emit
from sevenfold.nodes.merge import integration_worktree
from sevenfold.nodes.resources import Resources
from sevenfold.state.models import FAILING_TESTS_KEPT, Review, RoundSummary, from_state, to_state
from sevenfold.state.team import TeamState
from sevenfold.tools.testing import run_tests


async def verifier(state: TeamState, runtime: Runtime[RunContext], *, resources: Resources) -> dict[str, Any]:
    """Run the project's tests on the round's merged result (in the sandbox) and sum the round up."""
    run = await resources.for_run(state["run_id"], runtime.context)
    review = from_state(Review, state["review"] or {})
    integration = await integration_worktree(await run.workspace(state["repo"]), state)
    emit("tests_started", round=state["round"])
    # The tests the workers wrote are repository code: they run in the sandbox like any command.
    jail = (await run.sandbox(state["repo"])).jail(Path(integration.path))
    result = await run_tests(jail, run.settings.tools)
    emit("tests_finished", round=state["round"], ok=result.ok, summary=result.summary())
    reports = round_reports(state)
    plan = state.get("plan") or {}  # as approved (and maybe edited); read as data, not validated again
    summary = RoundSummary(
        round=state["round"],
        subtasks=sorted({r.subtask_id for r in reports}),
        failed_subtasks=sorted({r.subtask_id for r in reports if r.status != "done"} - set(review.merged)),
        tests_passed=result.ok,
        tests_summary=result.summary(),
        slot_occupancy=_occupancy(run.settings.endpoint_for("worker").base_url, state),
        duration_s=round(time.time() - state.get("round_started", time.time()), 3),
        plan_summary=str(plan.get("summary", "")),
        goals={str(s.get("id")): str(s.get("goal", "")) for s in plan.get("subtasks", [])},
        failing_tests=[f.name for f in result.failures[:FAILING_TESTS_KEPT]],
        review_notes=review.notes,
    )
    return {"tests": result.model_dump_state(), "rounds": [to_state(summary)]}


def _occupancy(base_url: str, state: TeamState) -> float | None:
    start = state.get("fanout_started") or {}
    limiter = LIMITERS.get(base_url)
    if start.get("pid") != os.getpid() or limiter is None:
        return None  # the fan-out began in a process that has since died: no honest figure
    now = limiter.snapshot()
    elapsed = now.time - start["time"]
    end = state.get("fanout_ended") or {}
    if end.get("pid") == os.getpid():
        elapsed = end["time"] - start["time"]
        busy = end["busy"] - start["busy"]
    else:
        busy = now.busy_slot_seconds - start["busy"]
    return round(busy / (elapsed * now.slots), 4) if elapsed > 0 else None


def route_verdict(state: TeamState) -> Literal["planner", "report"]:
    """Passing tests, or no rounds left (the run's limit, recorded by the start node): report. Else plan again."""
    tests = state.get("tests") or {}
    if tests.get("ok") or state.get("round", 0) >= state["max_rounds"]:
        return "report"
    return "planner"
