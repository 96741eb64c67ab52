"""The reviewer: the model reviews the round's merged change (`nodes/merge.py` merged it)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from sevenfold.context import RunContext
from sevenfold.llm.chat import stop_if_gone
from sevenfold.nodes.dispatch import round_reports
from sevenfold.nodes.events import emit
from sevenfold.nodes.merge import integration_worktree
from sevenfold.nodes.prompts import render
from sevenfold.nodes.resources import Resources
from sevenfold.state.models import Review, from_state, to_state
from sevenfold.state.team import TeamState

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


async def reviewer(state: TeamState, runtime: Runtime[RunContext], *, resources: Resources) -> dict[str, Any]:
    """Ask the model to review the round's merged change; its notes go to the next round and the report."""
    run = await resources.for_run(state["run_id"], runtime.context)
    review = from_state(Review, state["review"] or {})
    workspace = await run.workspace(state["repo"])
    integration = await integration_worktree(workspace, state)
    review.diff_stat, diff = await workspace.diff(integration, state["base_commit"])
    messages = [
        SystemMessage(render("reviewer_system")),
        HumanMessage(
            render(
                "reviewer_user",
                task=state["task"],
                round=review.round,
                reports=[r.model_dump() for r in round_reports(state)],
                merged=review.merged,
                conflicts=[c.model_dump() for c in review.conflicts],
                diff_stat=review.diff_stat,
                diff=fair_diff(diff, MAX_DIFF_CHARS),
            )
        ),
    ]
    try:
        reply = await run.model("reviewer").ainvoke(messages)
        review.notes = str(reply.content).strip()
    except Exception as exc:  # a review is advice; the tests decide
        stop_if_gone(exc, "reviewer")
        review.notes = f"(no review: the reviewer's model request failed: {type(exc).__name__})"
    emit("review_ready", round=review.round, notes=review.notes[:500])
    return {"review": to_state(review)}
