"""The verifier: run the project's tests on the merged result and decide whether the team goes again."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Literal

from sevenfold.llm.limiter import limiter_for
from sevenfold.nodes.dispatch import round_reports
from sevenfold.nodes.events import emit
from sevenfold.nodes.team import Team, TeamNode
from sevenfold.state.models import FAILING_TESTS_KEPT, Review, RoundSummary, from_state, to_state
from sevenfold.state.team import TeamState
from sevenfold.tools.testing import run_tests


def make_verifier(base: Team) -> TeamNode:
    """Build the verifier node for a team."""

    async def verifier(state: TeamState) -> dict[str, Any]:
        team = await base.current()
        review = from_state(Review, state["review"] or {})
        workspace = await team.workspace(state["repo"], state["run_id"])
        integration = await workspace.ensure_worktree(
            f"integration.r{state['round']}", state.get("round_base") or state["base_commit"]
        )
        await workspace.recover(integration.path, "HEAD")  # a merge or test run a crash cut short
        emit("tests_started", round=state["round"])
        # The tests the workers wrote are repository code: they run in the sandbox like any command.
        jail = (await team.sandbox(state["repo"])).jail(Path(integration.path))
        result = await run_tests(jail, team.settings.tools)
        emit("tests_finished", round=state["round"], ok=result.ok, summary=result.summary())
        reports = round_reports(state)
        plan = state.get("plan") or {}  # as approved (and maybe edited); read as data, not validated again
        summary = RoundSummary(
            round=state["round"],
            subtasks=sorted({r.subtask_id for r in reports}),
            failed_subtasks=sorted({r.subtask_id for r in reports if r.status != "done"} - set(review.merged)),
            tests_passed=result.ok,
            tests_summary=result.summary(),
            slot_occupancy=_occupancy(team, state),
            duration_s=round(time.time() - state.get("round_started", time.time()), 3),
            plan_summary=str(plan.get("summary", "")),
            goals={str(s.get("id")): str(s.get("goal", "")) for s in plan.get("subtasks", [])},
            failing_tests=[f.name for f in result.failures[:FAILING_TESTS_KEPT]],
            review_notes=review.notes,
        )
        return {"tests": result.model_dump_state(), "rounds": [to_state(summary)]}

    return verifier


def _occupancy(team: Team, state: TeamState) -> float | None:
    start = state.get("fanout_started") or {}
    if start.get("pid") != os.getpid():
        return None  # the fan-out began in a process that has since died: no honest figure
    endpoint = team.settings.endpoint_for("worker")
    now = limiter_for(endpoint.base_url, endpoint.slots).snapshot()
    elapsed = now.time - start["time"]
    end = state.get("fanout_ended") or {}
    if end.get("pid") == os.getpid():
        elapsed = end["time"] - start["time"]
        busy = end["busy"] - start["busy"]
    else:
        busy = now.busy_slot_seconds - start["busy"]
    return round(busy / (elapsed * now.slots), 4) if elapsed > 0 else None


def route_verdict(state: TeamState, max_rounds: int) -> Literal["planner", "report"]:
    """Passing tests, or no rounds left: report. Otherwise plan another round.

    The run's own limit (recorded by the start node, so a run context can change it) wins over `max_rounds`.
    """
    tests = state.get("tests") or {}
    if tests.get("ok") or state.get("round", 0) >= state.get("max_rounds", max_rounds):
        return "report"
    return "planner"
