"""The live view of a run in the terminal: slots in use, each worker's subtask, tool and tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sevenfold.llm.limiter import limiter_for
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
            self.log.append(_describe(event))
            self.log = self.log[-6:]

    def _render(self) -> Group:
        endpoint = self.settings.endpoint_for("worker")
        limiter = limiter_for(endpoint.base_url, endpoint.slots)
        head = Text(
            f"phase {self.phase} | slots {limiter.in_flight}/{limiter.slots} in use, {limiter.waiting} waiting | {time.monotonic() - self.started:.0f} s"
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


def _describe(event: dict[str, Any]) -> str:
    kind = event.get("event")
    if kind == "plan_ready":
        return f"round {event.get('round')}: plan with {len(event.get('subtasks', []))} subtasks"
    if kind == "merged":
        return f"merged {len(event.get('merged', []))} branches; conflicts: {', '.join(event.get('conflicts', [])) or 'none'}"
    if kind == "tests_finished":
        return f"tests: {event.get('summary')}"
    details = {k: v for k, v in event.items() if k not in ("event", "time")}
    return f"{kind}: {details}"[:160]
