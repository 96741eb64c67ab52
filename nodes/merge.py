"""The merge step: the workers' branches into the round's integration worktree, conflicts recorded.

Deterministic (no model): it merges each finished subtask's latest attempt in
plan order, skips what is merged already (so a resumed run does not merge
twice), and marks a conflicting first attempt for re-dispatch from the merged
result. The review of the combined change is the next node's job.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from sevenfold.context import RunContext
from sevenfold.nodes.dispatch import next_workers, round_reports
from sevenfold.nodes.events import emit
from sevenfold.nodes.resources import Resources
from sevenfold.state.models import Conflict, Review, WorkerReport, from_state, to_state
from sevenfold.state.team import TeamState
from sevenfold.tools.workspace import Workspace, Worktree

INTEGRATION = "integration"
"""The integration worktree's name; round N integrates on `integration.rN`."""


async def integration_worktree(workspace: Workspace, state: TeamState) -> Worktree:
    """The round's integration worktree (made from the round's base if missing), put back to its HEAD once.

    Each round integrates on its own branch, starting from the previous round's result. A merge or a test run
    that a crash cut short is undone on the first visit in a process.
    """
    round_number = state["round"]
    integration = await workspace.ensure_worktree(
        f"{INTEGRATION}.r{round_number}", state.get("round_base") or state["base_commit"]
    )
    await workspace.restore_once(integration.path, "HEAD")
    return integration


def _latest_done(state: TeamState) -> list[WorkerReport]:
    """The latest finished attempt of each subtask that made a commit, in plan (report) order."""
    latest: dict[str, WorkerReport] = {}
    for report in round_reports(state):
        if (
            report.status == "done"
            and report.commit
            and (report.subtask_id not in latest or report.attempt > latest[report.subtask_id].attempt)
        ):
            latest[report.subtask_id] = report
    return list(latest.values())


async def merge(state: TeamState, runtime: Runtime[RunContext], *, resources: Resources) -> dict[str, Any]:
    """Merge what the round's workers finished; record conflicts and what to re-dispatch."""
    run = await resources.for_run(state["run_id"], runtime.context)
    round_number = state["round"]
    emit("merging", round=round_number)
    workspace = await run.workspace(state["repo"])
    integration = await integration_worktree(workspace, state)
    review_data = state.get("review") or {}
    previous = from_state(Review, review_data) if review_data.get("round") == round_number else None
    merged = list(previous.merged) if previous else []
    conflicts = list(previous.conflicts) if previous else []
    redispatched = list(state.get("redispatched", []))
    for report in [r for r in _latest_done(state) if r.subtask_id not in merged]:
        result = await workspace.merge_branches([report.branch], integration)
        if result.merged:
            merged.append(report.subtask_id)
            conflicts = [c for c in conflicts if c.subtask_id != report.subtask_id]
            continue
        conflict = result.conflict
        files = list(conflict.files) if conflict else []
        conflicts.append(
            Conflict(subtask_id=report.subtask_id, files=files, hunks=(conflict.hunks if conflict else "")[:4000])
        )
        if report.attempt == 1 and report.subtask_id not in redispatched:
            redispatched.append(report.subtask_id)
        emit("merge_conflict", subtask=report.subtask_id, files=files)
    head = await workspace.head(integration)
    emit("merged", round=round_number, merged=merged, conflicts=[c.subtask_id for c in conflicts], commit=head)
    review = Review(
        round=round_number,
        integration_branch=integration.branch,
        integration_commit=head,
        merged=merged,
        conflicts=conflicts,
    )
    update: dict[str, Any] = {"review": to_state(review), "redispatched": redispatched}
    if not next_workers({**state, **update}):  # type: ignore[typeddict-item]
        update["fanout_ended"] = run.slot_mark()  # the round's last worker is done
    return update


def route_merged(state: TeamState) -> list | str:
    """After a merge: the next wave (or a re-dispatch) of workers, else the review."""
    return next_workers(state) or "reviewer"
