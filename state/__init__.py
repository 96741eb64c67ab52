"""The team's typed state and the structured data it exchanges."""

from __future__ import annotations

from sevenfold.state.models import Conflict, Plan, Review, RoundSummary, Subtask, WorkerReport, from_state, to_state
from sevenfold.state.team import TeamInput, TeamOutput, TeamState, WorkerInput, WorkerOutput, WorkerState

__all__ = [
    "Conflict",
    "Plan",
    "Review",
    "RoundSummary",
    "Subtask",
    "TeamInput",
    "TeamOutput",
    "TeamState",
    "WorkerInput",
    "WorkerOutput",
    "WorkerReport",
    "WorkerState",
    "from_state",
    "to_state",
]
