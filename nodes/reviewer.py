"""The reviewer: merges the workers' branches, handles conflicts, reviews the combined change."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from sevenfold.llm.chat import gone_error, went_away
from sevenfold.nodes.dispatch import next_workers, round_reports
from sevenfold.nodes.events import emit
from sevenfold.nodes.prompts import render
from sevenfold.nodes.team import Team, TeamNode, slot_mark
from sevenfold.state.models import Conflict, Review, from_state, to_state
from sevenfold.state.team import TeamState

INTEGRATION = "integration"
MAX_DIFF_CHARS = 12_000


def fair_diff(diff: str, limit: int) -> str:
    """The diff within `limit` characters, shared fairly between files, naming each file whose diff was cut.

    Cutting the whole diff at `limit` would let one large file (a padded changelog sorted first) push every
    other change out of the reviewer's sight; here small files are shown whole and large ones share the rest.
    """
    if len(diff) <= limit:
        return diff
    chunks = [part if i == 0 else "diff --git " + part for i, part in enumerate(diff.split("\ndiff --git "))]
    chunks[0] = chunks[0].removeprefix("\n")
    share: dict[int, int] = {}
    remaining = limit
    for done, index in enumerate(sorted(range(len(chunks)), key=lambda i: len(chunks[i]))):
        share[index] = min(len(chunks[index]), remaining // (len(chunks) - done))
        remaining -= share[index]
    shown = []
    for index, chunk in enumerate(chunks):
        if share[index] >= len(chunk):
            shown.append(chunk)
            continue
        name = chunk.split("\n", 1)[0].removeprefix("diff --git ")
        cut = len(chunk) - share[index]
        shown.append(
            f"{chunk[: share[index]]}\n[... {name}: {cut:,} more characters of this file's diff not shown ...]"
        )
    return "\n".join(shown)


def make_reviewer(base: Team) -> TeamNode:
    """Build the reviewer node for a team."""

    async def reviewer(state: TeamState) -> dict[str, Any]:
        team = await base.current()
        round_number = state["round"]
        emit("merging", round=round_number)
        workspace = await team.workspace(state["repo"], state["run_id"])
        # Each round integrates on its own branch, starting from the previous round's result.
        integration = await workspace.ensure_worktree(
            f"{INTEGRATION}.r{round_number}", state.get("round_base") or state["base_commit"]
        )
        await workspace.recover(integration.path, "HEAD")  # a merge or test run a crash cut short
        review_data = state.get("review") or {}
        previous = from_state(Review, review_data) if review_data.get("round") == round_number else None
        merged = list(previous.merged) if previous else []
        conflicts = list(previous.conflicts) if previous else []
        redispatched = list(state.get("redispatched", []))
        # Merge in plan order, latest attempt of each subtask, skipping what is merged already.
        latest: dict[str, Any] = {}
        for report in round_reports(state):
            if (
                report.status == "done"
                and report.commit
                and (report.subtask_id not in latest or report.attempt > latest[report.subtask_id].attempt)
            ):
                latest[report.subtask_id] = report
        pending = [r for r in latest.values() if r.subtask_id not in merged]
        for report in pending:
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
        if next_workers({**state, **update}):  # type: ignore[typeddict-item]
            return update  # more waves (or a re-dispatch) before the review proper
        update["fanout_ended"] = slot_mark(team)
        diff_stat, diff = await workspace.diff(integration, state["base_commit"])
        review.diff_stat = diff_stat
        messages = [
            SystemMessage(render("reviewer_system")),
            HumanMessage(
                render(
                    "reviewer_user",
                    task=state["task"],
                    round=round_number,
                    reports=[r.model_dump() for r in round_reports(state)],
                    merged=merged,
                    conflicts=[c.model_dump() for c in conflicts],
                    diff_stat=diff_stat,
                    diff=fair_diff(diff, MAX_DIFF_CHARS),
                )
            ),
        ]
        try:
            reply = await team.model("reviewer").ainvoke(messages)
            review.notes = str(reply.content).strip()
        except Exception as exc:  # a review is advice; the tests decide
            if went_away(exc):
                raise gone_error(exc, "reviewer") from exc
            review.notes = f"(no review: the reviewer's model request failed: {type(exc).__name__})"
        emit("review_ready", round=round_number, notes=review.notes[:500])
        return {**update, "review": to_state(review)}

    return reviewer
