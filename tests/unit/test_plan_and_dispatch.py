"""Plans are validated, and workers are sent in dependency order."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sevenfold.nodes.dispatch import next_workers
from sevenfold.state.models import Plan, Subtask


def _plan(*specs: tuple[str, list[str]]) -> Plan:
    return Plan(summary="s", subtasks=[Subtask(id=i, goal=f"do {i}", depends_on=deps) for i, deps in specs])


@pytest.mark.parametrize(
    ("plan", "problem"),
    [
        (Plan(summary="s", subtasks=[]), "the plan has no subtasks"),
        (_plan(("a", []), ("a", [])), "subtask ids must be unique; repeated: a"),
        (_plan(("a", ["zzz"])), "subtask a depends on unknown subtasks: zzz"),
        (_plan(("a", ["c"]), ("b", ["a"]), ("c", ["b"])), "dependencies form a cycle: a -> c -> b -> a"),
    ],
)
def test_bad_plans_say_why(plan: Plan, problem: str) -> None:
    assert plan.problems() == [problem]


def test_subtask_ids_must_be_slugs() -> None:
    with pytest.raises(ValidationError, match="lowercase slug"):
        Subtask(id="Fix The Bug!", goal="x")


@pytest.mark.parametrize("bad", ["a..b", "x.lock", "integration.r1", "fix.r2"])
def test_subtask_ids_cannot_collide_with_sevenfolds_worktree_and_branch_names(bad: str) -> None:
    with pytest.raises(ValidationError, match="lowercase slug"):
        Subtask(id=bad, goal="x")


@pytest.mark.parametrize("reserved", ["integration", "result"])
def test_sevenfolds_own_branch_names_are_reserved(reserved: str) -> None:
    with pytest.raises(ValidationError, match="reserved"):
        Subtask(id=reserved, goal="x")


def _state(plan: Plan, reports: list[dict[str, Any]], review: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "task": "t",
        "repo": "/r",
        "run_id": "run",
        "round": 1,
        "base_commit": "base",
        "round_base": "base",
        "plan": plan.model_dump(mode="json"),
        "reports": reports,
        "review": review,
        "redispatched": [],
    }


def _report(subtask: str, status: str = "done", attempt: int = 1) -> dict[str, Any]:
    return {"subtask_id": subtask, "round": 1, "attempt": attempt, "status": status}


def test_waves_follow_dependencies_and_later_waves_start_from_the_merged_result() -> None:
    plan = _plan(("models", []), ("api", ["models"]), ("docs", []), ("cli", ["api", "docs"]))
    first = next_workers(_state(plan, []))  # type: ignore[arg-type]
    assert [s.arg["subtask"]["id"] for s in first] == ["models", "docs"]
    assert {s.arg["base"] for s in first} == {"base"}
    review = {"round": 1, "integration_branch": "i", "integration_commit": "merged-1", "merged": ["models", "docs"]}
    second = next_workers(_state(plan, [_report("models"), _report("docs")], review))  # type: ignore[arg-type]
    assert [(s.arg["subtask"]["id"], s.arg["base"]) for s in second] == [("api", "merged-1")]
    blocked = next_workers(_state(plan, [_report("models"), _report("docs"), _report("api", "failed")], review))  # type: ignore[arg-type]
    assert blocked == []  # cli waits on a failed subtask: not started


def test_a_conflicting_subtask_is_sent_again_once_on_the_merged_state() -> None:
    plan = _plan(("a", []), ("b", []))
    review = {"round": 1, "integration_branch": "i", "integration_commit": "merged-a", "merged": ["a"]}
    state = _state(plan, [_report("a"), _report("b")], review) | {"redispatched": ["b"]}
    again = next_workers(state)  # type: ignore[arg-type]
    assert [(s.arg["subtask"]["id"], s.arg["attempt"], s.arg["base"]) for s in again] == [("b", 2, "merged-a")]
    state["reports"].append(_report("b", attempt=2))
    assert next_workers(state) == []  # type: ignore[arg-type]
