"""The graph state: the team's shared state and each worker's own.

Fields hold references (paths, branch names, commit ids) and summaries, never
whole files or transcripts, so every checkpoint stays small. Structured values
are the JSON form of the models in `state.models`. Reducers sit beside the
fields they merge.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Annotated, Any, NotRequired, cast

from langchain_core.messages import AnyMessage
from langgraph.channels import DeltaChannel
from langgraph.graph.message import Messages, add_messages
from typing_extensions import TypedDict

Json = dict[str, Any]


def add_message_batches(messages: Messages, batches: Sequence[Messages]) -> list[AnyMessage]:
    """`add_messages` over a batch of writes, oldest first (the reducer shape `DeltaChannel` calls)."""
    for batch in batches:
        messages = add_messages(messages, batch)
    return cast(list[AnyMessage], messages)


MESSAGES_SNAPSHOT_EVERY = 100
"""Worker steps between full snapshots of a transcript in the checkpoints; in between, each step stores only its
new messages (`DeltaChannel`), and a read replays them from the last snapshot."""


def add_reports(existing: list[Json] | None, new: list[Json] | None) -> list[Json]:
    """Append worker reports; a report for the same (round, subtask, attempt) replaces the older one."""
    merged = {(r["round"], r["subtask_id"], r.get("attempt", 1)): r for r in existing or []}
    for report in new or []:
        merged[(report["round"], report["subtask_id"], report.get("attempt", 1))] = report
    return list(merged.values())


class TeamInput(TypedDict):
    """What a run starts from."""

    task: str
    """What the team should do, in the user's words."""
    repo: str
    """Path of the user's git repository. Only new branches are ever written to it."""
    run_id: NotRequired[str]
    """Names the run's branches (`sevenfold/<run-id>/...`) and its directory; made up when left out."""


class TeamState(TypedDict, total=False):
    """Everything the team shares across nodes and rounds."""

    task: str
    repo: str
    run_id: str
    base_commit: str
    """The commit every worker starts from (the user's HEAD when the run began)."""
    max_rounds: int
    """This run's round limit (its settings, with its context applied)."""
    approve_plan: bool
    """Whether this run pauses for plan approval (kept in the state, so a resume without the context keeps it)."""
    round: int
    round_base: str
    """The commit the current round builds on: the base commit, then each round's merged result."""
    plan: Json | None
    reports: Annotated[list[Json], add_reports]
    """Worker reports of every round (`WorkerReport` JSON), in Send order per wave."""
    dispatched: list[str]
    """Subtask ids sent to workers in the current round."""
    redispatched: list[str]
    """Subtask ids re-sent after a merge conflict in the current round."""
    review: Json | None
    tests: Json | None
    rounds: Annotated[list[Json], operator.add]
    """One `RoundSummary` per finished round."""
    fanout_started: Json | None
    """Slot-limiter counters when the current round's fan-out began (for occupancy)."""
    fanout_ended: Json | None
    """Slot-limiter counters when the current round's last worker finished."""
    round_started: float
    result_branch: str | None
    report_path: str | None
    status: str


class TeamOutput(TypedDict, total=False):
    """What a run returns."""

    status: str
    result_branch: str | None
    report_path: str | None
    tests: Json | None
    rounds: list[Json]


class WorkerInput(TypedDict):
    """The Send payload that starts one worker: plain data only (it is checkpointed)."""

    subtask: Json
    plan_summary: str
    task: str
    repo: str
    run_id: str
    round: int
    attempt: int
    base: str
    """Commit the worker's branch starts from."""
    notes: str
    """What the worker should know from earlier rounds (failing tests, review notes)."""
    position: NotRequired[int]
    """The subtask's place in the plan (0 first): the worker's request priority when the server schedules by priority."""


class WorkerState(WorkerInput, total=False):
    """One worker's own state: its transcript lives here, not in the team state."""

    messages: Annotated[list[AnyMessage], DeltaChannel(add_message_batches, snapshot_frequency=MESSAGES_SNAPSHOT_EVERY)]
    """The transcript. Nodes return only their new messages (each with an id); a compaction replaces it whole
    (`RemoveMessage(REMOVE_ALL_MESSAGES)` first). Checkpoints store each step's new messages, not the list."""
    worktree: str
    branch: str
    tree: str
    """The worktree's files after the last step that may have written any (a git tree id); see `Workspace.restore_once`."""
    steps: int
    tool_calls: int
    tool_calls_recovered: int
    """Calls recovered from text the server left in content."""
    tool_calls_rejected: int
    """Calls not run (unknown tool, arguments that do not fit, unreadable); each explained to the model."""
    tool_calls_repaired: int
    """Rejected calls followed by a turn with a usable call."""
    tool_calls_unrepaired: int
    rejected_turns: int
    prompt_tokens: int
    completion_tokens: int
    context_tokens: int
    """The next request's prompt tokens, estimated: the server's count for the last request, plus its reply,
    plus an approximation of what was appended since (see `nodes/context_window.py`)."""
    peak_context_tokens: int
    """The largest prompt the server counted for this worker."""
    context_budget: int
    """The prompt tokens this worker's requests may use (`llm/budget.py`)."""
    compactions: int
    """Times the transcript was replaced by a summary and the recent turns."""
    outputs_offloaded: int
    """Tool outputs saved to the run directory instead of the transcript."""
    errors: list[str]
    status: str
    summary: str
    started: float


class WorkerOutput(TypedDict):
    """What a worker hands back to the team: its report, nothing else."""

    reports: list[Json]
