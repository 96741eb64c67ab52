"""Which workers to start next: dependency-ordered waves and conflict re-dispatch."""

from __future__ import annotations

from langgraph.types import Send

from sevenfold.state.models import Plan, Review, WorkerReport, from_state
from sevenfold.state.team import TeamState, WorkerInput


def round_reports(state: TeamState) -> list[WorkerReport]:
    """The reports of the current round."""
    return [from_state(WorkerReport, r) for r in state.get("reports", []) if r["round"] == state.get("round")]


def _notes(state: TeamState) -> str:
    if state.get("round", 1) <= 1:
        return ""
    tests = state.get("tests") or {}
    names = [f.get("name", "") for f in tests.get("failures", [])][:20]
    review = (state.get("review") or {}).get("notes", "")
    parts = []
    if names:
        parts.append("Tests failing after the previous round: " + ", ".join(names))
    if review:
        parts.append("Reviewer's notes: " + review[:2000])
    return "\n".join(parts)


def _send(state: TeamState, subtask: dict, attempt: int, base: str) -> Send:
    plan = state["plan"] or {}
    ids = [str(s.get("id")) for s in plan.get("subtasks", [])]
    payload = WorkerInput(
        subtask=subtask,
        plan_summary=plan.get("summary", ""),
        task=state["task"],
        repo=state["repo"],
        run_id=state["run_id"],
        round=state["round"],
        attempt=attempt,
        base=base,
        notes=_notes(state),
        # Its place in the plan: a stable priority, so when the KV cache fills the same worker yields each time.
        position=ids.index(subtask["id"]) if subtask["id"] in ids else len(ids),
    )
    return Send("worker", payload)


def next_workers(state: TeamState) -> list[Send]:
    """Send a worker for each subtask that is ready now (its dependencies done), and for each to re-dispatch.

    Workers of the first wave start from the base commit; later waves and
    re-dispatched subtasks start from the integration branch, so they see what
    they depend on.
    """
    plan = from_state(Plan, state["plan"] or {})
    reports = round_reports(state)
    started = {r.subtask_id for r in reports}
    finished = {r.subtask_id for r in reports if r.status == "done"}
    review_data = state.get("review") or {}
    review = from_state(Review, review_data) if review_data.get("round") == state["round"] else None
    base = review.integration_commit if review else state.get("round_base") or state["base_commit"]
    sends = [_send(state, s.model_dump(mode="json"), 1, base) for s in plan.ready(finished, started)]
    attempted = {(r.subtask_id, r.attempt) for r in reports}
    for subtask_id in state.get("redispatched", []):
        if (subtask_id, 2) not in attempted:
            subtask = next(s for s in plan.subtasks if s.id == subtask_id)
            sends.append(_send(state, subtask.model_dump(mode="json"), 2, base))
    return sends
