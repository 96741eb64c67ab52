"""The live view of a run in the terminal: slots in use, each worker's subtask, tool and tokens."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sevenfold.llm.limiter import LIMITERS
from sevenfold.settings import Settings


@dataclass
class _Worker:
    goal: str = ""
    state: str = "started"
    tool: str = ""
    tokens: int = 0
    files: int = 0


@dataclass
class ProgressView:
    """Feeds on the run's custom stream events; a context manager around the run."""

    settings: Settings
    console: Console = field(default_factory=lambda: Console(stderr=True))
    workers: dict[str, _Worker] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)
    _live: Live | None = None

    def __enter__(self) -> ProgressView:
        self._live = Live(
            self._render(), console=self.console, refresh_per_second=4, transient=False, get_renderable=self._render
        )
        self._live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        key = str(event.get("subtask", ""))
        if kind == "step":
            self.phase = str(event.get("node"))
            return
        if kind == "worker_started":
            self.workers[key] = _Worker(goal=str(event.get("goal", ""))[:60])
        elif kind == "tool" and key in self.workers:
            self.workers[key].tool = str(event.get("tool"))
            self.workers[key].state = "tool"
        elif kind == "worker_finished" and key in self.workers:
            worker = self.workers[key]
            worker.state, worker.tool = str(event.get("status")), ""
            worker.tokens, worker.files = int(event.get("tokens", 0)), len(event.get("files", []))
        if kind not in ("tool", "heartbeat", "step"):
            self.log.append(describe_event(event))
            self.log = self.log[-6:]

    def _render(self) -> Group:
        endpoint = self.settings.endpoint_for("worker")
        limiter = LIMITERS.get(endpoint.base_url)  # a reader: before the run opens it, nothing is in flight
        in_flight, slots, waiting = (
            (limiter.in_flight, limiter.slots, limiter.waiting) if limiter is not None else (0, endpoint.total_slots, 0)
        )
        head = Text(
            f"phase {self.phase} | slots {in_flight}/{slots} in use, {waiting} waiting | {time.monotonic() - self.started:.0f} s"
        )
        table = Table(expand=False, show_edge=False, pad_edge=False)
        for column in ("worker", "state", "tool", "tokens", "files", "goal"):
            table.add_column(column)
        for key, worker in list(self.workers.items())[-16:]:
            table.add_row(
                key,
                worker.state,
                worker.tool,
                f"{worker.tokens:,}" if worker.tokens else "",
                str(worker.files or ""),
                worker.goal,
            )
        return Group(head, table, Text("\n".join(self.log), style="dim"))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text safe for a terminal: control characters (ESC sequences that move the cursor, rewrite lines or set the
    clipboard, BEL, ...) shown as `?`. Model output reaches the screen through here (plans, summaries, notes)."""
    return _CONTROL.sub("?", text)


def describe_event(event: dict[str, Any], width: int = 160) -> str:
    """One line of plain text for a progress event (never a raw dict), at most `width` characters, no control codes."""
    kind = str(event.get("event"))
    render = _RENDERERS.get(kind)
    if render is not None:
        text = render(event)
    else:  # an event this view does not know yet: its fields as name=value text
        details = ", ".join(f"{k}={_plain(v)}" for k, v in event.items() if k not in ("event", "time"))
        text = f"{kind.replace('_', ' ')}: {details}" if details else kind.replace("_", " ")
    text = printable(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _plain(value: object) -> str:
    if isinstance(value, list | tuple | set):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k} {_plain(v)}" for k, v in value.items()) or "none"
    return str(value)


def _sandbox(e: dict[str, Any]) -> str:
    warnings = "".join(f"; WARNING: {w}" for w in e.get("warnings", []))
    return f"sandbox: {e.get('backend')}, network {'on' if e.get('network') else 'off'}{warnings}"


def _test_setup(e: dict[str, Any]) -> str:
    parts = [f"test command: {e.get('command')}"]
    if e.get("env"):
        parts.append(f"with {_plain(e['env'])} set")
    if e.get("chosen"):
        parts.append(f"chosen: {e['chosen']}")
    if e.get("from_repository"):
        parts.append(f"from the repository: {_plain(e['from_repository'])}")
    if e.get("collected") is not None:
        parts.append(f"{e['collected']} tests collected")
    return "; ".join(parts) + "".join(f"; note: {n}" for n in e.get("notes", []))


def _worker_finished(e: dict[str, Any]) -> str:
    files = e.get("files", [])
    return f"{e.get('subtask')}: {e.get('status')}, {len(files)} files ({_plain(files)}), {e.get('tokens', 0):,} tokens"


_RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "sandbox": _sandbox,
    "test_setup": _test_setup,
    "planning": lambda e: f"round {e.get('round')}: planning",
    "plan_ready": lambda e: (
        f"round {e.get('round')}: plan with {len(e.get('subtasks', []))} subtasks "
        f"({_plain(e.get('subtasks', []))}): {e.get('summary', '')}"
    ),
    "plan_approved": lambda e: f"round {e.get('round')}: plan approved" + (" (edited)" if e.get("edited") else ""),
    "plan_rejected": lambda e: f"round {e.get('round')}: plan rejected",
    "worker_started": lambda e: f"{e.get('subtask')}: started: {e.get('goal', '')}",
    "worker_finished": _worker_finished,
    "worktree_restored": lambda e: f"{e.get('subtask')}: files put back to the last checkpointed step",
    "merging": lambda e: f"round {e.get('round')}: merging",
    "merge_conflict": lambda e: f"{e.get('subtask')}: merge conflict in {_plain(e.get('files', []))}",
    "merged": lambda e: (
        f"round {e.get('round')}: merged {len(e.get('merged', []))} branches; "
        f"conflicts: {_plain(e.get('conflicts', []))}"
    ),
    "review_ready": lambda e: f"round {e.get('round')}: review: {' '.join(str(e.get('notes', '')).split())}",
    "tests_started": lambda e: f"round {e.get('round')}: running the tests",
    "tests_finished": lambda e: f"round {e.get('round')}: tests: {e.get('summary')}",
    "report_ready": lambda e: f"report ({e.get('status')}): {e.get('path')}, branch {e.get('branch')}",
    "dirty_checkout": lambda e: (
        f"uncommitted changes are not part of the run (it starts from HEAD): {_plain(e.get('paths', []))}"
    ),
    "leftovers_killed": lambda e: f"killed {_plain(e.get('process_groups'))} process groups a dead run left",
    "heartbeat": lambda e: f"{e.get('subtask')}: tool running for {e.get('running_s')} s",
    "tool": lambda e: f"{e.get('subtask')}: {e.get('tool')}",
}
