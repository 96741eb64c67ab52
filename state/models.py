"""Structured data the team exchanges: plans, worker reports, reviews, the run report.

These pydantic models validate what the model produces and what nodes return.
The graph state stores them as plain JSON dicts (`to_state`), not as objects:
checkpoints then stay readable by any checkpointer, Send payloads stay plain
data, and LangGraph Studio shows them as they are.
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, field_validator

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
# No '.': sevenfold names worktrees and branches `<id>.r<round>.a<attempt>` and `integration.r<round>`, and git
# refuses names with '..' or ending in '.lock'. `integration` and `result` are sevenfold's own branch names.
_RESERVED_IDS = frozenset({"integration", "result"})

M = TypeVar("M", bound=BaseModel)


def to_state(model: BaseModel) -> dict[str, Any]:
    """A model as the plain JSON dict the graph state holds."""
    return model.model_dump(mode="json")


def from_state(cls: type[M], data: dict[str, Any] | M) -> M:
    """Read a model back from the graph state."""
    return data if isinstance(data, cls) else cls.model_validate(data)


class Subtask(BaseModel):
    """One piece of the task that one worker can do on its own branch."""

    id: str = Field(description="Short lowercase slug, unique in the plan, e.g. 'impl-parser'.")
    goal: str = Field(description="What to change and why, in a few sentences.")
    files: list[str] = Field(default_factory=list, description="Files the worker will most likely touch.")
    acceptance: list[str] = Field(
        default_factory=list, description="Checks that show the subtask is done, e.g. a test command."
    )
    depends_on: list[str] = Field(default_factory=list, description="Ids of subtasks that must be finished first.")

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("id must be a lowercase slug of letters, digits, '_' or '-' (at most 48 characters)")
        if value in _RESERVED_IDS:
            raise ValueError(f"id {value!r} is reserved; choose another")
        return value


class Plan(BaseModel):
    """The planner's split of the task into subtasks."""

    summary: str = Field(description="The approach in two or three sentences.")
    subtasks: list[Subtask] = Field(description="Subtasks; independent ones run in parallel.")

    def problems(self) -> list[str]:
        """Why this plan cannot be run (empty when it can): no subtasks, duplicate ids, unknown or cyclic dependencies."""
        problems: list[str] = []
        if not self.subtasks:
            return ["the plan has no subtasks"]
        ids = [s.id for s in self.subtasks]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            problems.append(f"subtask ids must be unique; repeated: {', '.join(duplicates)}")
        known = set(ids)
        for subtask in self.subtasks:
            unknown = [d for d in subtask.depends_on if d not in known]
            if unknown:
                problems.append(f"subtask {subtask.id} depends on unknown subtasks: {', '.join(unknown)}")
        if not problems:
            cycle = self._cycle()
            if cycle:
                problems.append(f"dependencies form a cycle: {' -> '.join(cycle)}")
        return problems

    def _cycle(self) -> list[str]:
        deps = {s.id: s.depends_on for s in self.subtasks}
        state: dict[str, int] = {}
        path: list[str] = []

        def visit(node: str) -> list[str]:
            state[node] = 1
            path.append(node)
            for dep in deps[node]:
                if state.get(dep) == 1:
                    return [*path[path.index(dep) :], dep]
                if dep not in state:
                    found = visit(dep)
                    if found:
                        return found
            state[node] = 2
            path.pop()
            return []

        for node in deps:
            if node not in state:
                found = visit(node)
                if found:
                    return found
        return []

    def ready(self, finished: set[str], started: set[str]) -> list[Subtask]:
        """Subtasks not yet started whose dependencies have all finished, in plan order."""
        return [s for s in self.subtasks if s.id not in started and all(d in finished for d in s.depends_on)]


WorkerStatus = Literal["done", "failed", "budget_exhausted"]


class WorkerReport(BaseModel):
    """What one worker did on one subtask: a summary, not its transcript."""

    subtask_id: str
    round: int
    attempt: int = 1
    status: WorkerStatus
    summary: str = ""
    branch: str = ""
    commit: str | None = None
    files_changed: list[str] = Field(default_factory=list)
    left_out: list[str] = Field(default_factory=list)
    """Folders the worker made that are git repositories of their own: not in its branch (see docs/security.md)."""
    steps: int = 0
    tool_calls: int = 0
    tool_calls_recovered: int = 0
    """Tool calls recovered from text the server left in content."""
    tool_calls_repaired: int = 0
    """Rejected tool calls (unknown tool, bad arguments, unreadable) that the model then got right."""
    tool_calls_unrepaired: int = 0
    """Rejected tool calls never repaired."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    context_budget: int | None = None
    """Prompt tokens each of the worker's requests could use (None: not known, e.g. the worker never asked)."""
    peak_context_tokens: int = 0
    """The largest prompt the server counted for one of the worker's requests."""
    compactions: int = 0
    """Times the worker's transcript was replaced by a summary and its recent turns."""
    outputs_offloaded: int = 0
    """Tool outputs saved to the run directory (and paged with view_file) instead of kept in the transcript."""
    duration_s: float = 0.0
    errors: list[str] = Field(default_factory=list)


class Conflict(BaseModel):
    """A merge that stopped: which subtask, which files, what clashed."""

    subtask_id: str
    files: list[str]
    hunks: str = ""


class Review(BaseModel):
    """The reviewer's integration of one round: what merged, what clashed, and its notes."""

    round: int
    integration_branch: str
    integration_commit: str
    merged: list[str] = Field(default_factory=list)
    conflicts: list[Conflict] = Field(default_factory=list)
    notes: str = ""
    diff_stat: str = ""


FAILING_TESTS_KEPT = 50
"""Failing tests a round summary names (the counts say how many there were)."""


class RoundSummary(BaseModel):
    """One planner -> verifier round, for the report and the next planner: what was planned, what failed, what
    the reviewer said (each round keeps its own; the state keeps only the last review)."""

    round: int
    subtasks: list[str]
    failed_subtasks: list[str] = Field(default_factory=list)
    tests_passed: bool = False
    tests_summary: str = ""
    slot_occupancy: float | None = None
    duration_s: float = 0.0
    plan_summary: str = ""
    goals: dict[str, str] = Field(default_factory=dict)
    """Each planned subtask's goal by id, in plan order."""
    failing_tests: list[str] = Field(default_factory=list)
    """Node ids of the tests that failed or errored on the merged result (at most `FAILING_TESTS_KEPT`)."""
    review_notes: str = ""
