"""The first node: check the repository, fix the commit every worker starts from, and the run's limits."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from sevenfold.context import RunContext
from sevenfold.errors import SevenfoldError
from sevenfold.nodes.events import emit
from sevenfold.nodes.resources import Resources
from sevenfold.state.ids import new_run_id
from sevenfold.state.team import TeamState


async def start(state: TeamState, runtime: Runtime[RunContext], *, resources: Resources) -> dict[str, Any]:
    """Validate the input; record the base commit, the round limit and plan approval (once: a resume keeps them).

    The recorded `max_rounds` and `approve_plan` are the run's only source for them from here on: the graph's
    settings with the run's context applied, as they were when the run began.
    """
    if state.get("base_commit"):
        return {}
    if not state.get("task", "").strip():
        raise SevenfoldError("the task is empty: say what the team should do")
    run_id = state.get("run_id") or new_run_id()  # Studio and embedding callers may leave it out
    run = await resources.for_run(run_id, runtime.context)
    workspace = await run.workspace(state["repo"])
    if workspace.dirty_paths:
        emit(
            "dirty_checkout",
            paths=workspace.dirty_paths[:50],
            note="uncommitted changes are not part of the run; it starts from HEAD",
        )
    return {
        "run_id": run_id,
        "base_commit": workspace.base_commit,
        "max_rounds": run.settings.max_rounds,
        "approve_plan": run.settings.approve_plan,
        "round": 0,
        "reports": [],
        "rounds": [],
        "status": "planning",
    }
