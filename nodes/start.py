"""The first node: check the repository and fix the commit every worker starts from."""

from __future__ import annotations

from typing import Any

from sevenfold.errors import SevenfoldError
from sevenfold.nodes.events import emit
from sevenfold.nodes.team import Team, TeamNode
from sevenfold.state.ids import new_run_id
from sevenfold.state.team import TeamState


def make_start(base: Team) -> TeamNode:
    """Build the start node: validates input and records the base commit (once; a resumed run keeps it)."""

    async def start(state: TeamState) -> dict[str, Any]:
        team = await base.current()
        if state.get("base_commit"):
            return {}
        if not state.get("task", "").strip():
            raise SevenfoldError("the task is empty: say what the team should do")
        run_id = state.get("run_id") or new_run_id()  # Studio and embedding callers may leave it out
        workspace = await team.workspace(state["repo"], run_id)
        if workspace.dirty_paths:
            emit(
                "dirty_checkout",
                paths=workspace.dirty_paths[:50],
                note="uncommitted changes are not part of the run; it starts from HEAD",
            )
        return {
            "run_id": run_id,
            "base_commit": workspace.base_commit,
            "max_rounds": team.settings.max_rounds,
            "approve_plan": team.settings.approve_plan,
            "round": 0,
            "reports": [],
            "rounds": [],
            "status": "planning",
        }

    return start
