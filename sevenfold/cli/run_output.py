"""What a run shows while it goes (a live view, plain lines, or JSON events) and how it says it ended.

`sevenfold.progress` is imported where it is used: it loads the model clients, which `sevenfold status` and
`--help` do without.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sevenfold.cli.common import console
from sevenfold.settings import Settings

if TYPE_CHECKING:
    from sevenfold.runs import EventHandler, RunResult

PLAIN_EVENTS = (
    "sandbox",
    "test_setup",
    "plan_ready",
    "worker_finished",
    "merged",
    "merge_conflict",
    "tests_finished",
    "report_ready",
    "dirty_checkout",
)
"""The events shown as plain lines when there is no live view (`--quiet`, or standard error is not a terminal)."""


def run_with_progress(
    settings: Settings,
    quiet: bool,
    start: Callable[[EventHandler | None], Coroutine[Any, Any, RunResult]],
    events: bool = False,
) -> RunResult:
    """Run `start(on_event)` to its end, showing its events: JSON lines (`events`), plain lines, or a live view."""
    from sevenfold.progress import ProgressView

    if events:
        return asyncio.run(start(print_json_event))
    if quiet or not sys.stderr.isatty():
        return asyncio.run(start(_print_plain_event))
    with ProgressView(settings) as view:
        return asyncio.run(start(view))


def exit_with_result(result: RunResult, events: bool = False) -> None:
    """Say how the run ended and exit with its code; with `--events`, one last JSON line on stdout and the human
    lines on stderr, so that every stdout line is JSON."""
    say: Callable[[str], None] = (lambda line: print(line, file=sys.stderr)) if events else print
    if events:
        ended: dict[str, Any] = {"event": "run_finished", "run_id": result.run_id, "status": result.status}
        ended |= {"result_branch": result.result_branch, "report": result.report_path, "stopped_by": result.stopped_by}
        print_json_event(ended)
    say(f"run {result.run_id}: {result.status}")
    if result.result_branch:
        say(f"result branch: {result.result_branch}")
    if result.report_path:
        say(f"report: {result.report_path}")
    if result.stopped_by:
        say(f"stopped: {result.stopped_by}")
    if result.status == "incomplete":
        say(f"resume with: sevenfold resume {result.run_id}")
    if result.status == "awaiting_approval" and result.waiting_for is not None:
        show_plan(result.run_id, result.run_dir, result.waiting_for, say)
        raise typer.Exit(3)
    if result.status != "passed":
        raise typer.Exit(1)


def show_plan(run_id: str, run_dir: Path, waiting: dict[str, Any], say: Callable[[str], None] = print) -> None:
    """Show the plan a run waits on, write it to `plan-round-N.json` for editing, and say how to answer."""
    from sevenfold.progress import printable  # the plan is model text: no terminal control codes reach the screen

    plan = waiting.get("plan") or {}
    say(printable(f"round {waiting.get('round')} plan, waiting for approval: {plan.get('summary', '')}"))
    for subtask in plan.get("subtasks", []):
        after = f" (after {', '.join(subtask['depends_on'])})" if subtask.get("depends_on") else ""
        say(printable(f"  - {subtask['id']}{after}: {subtask['goal']}"))
    if waiting.get("problem"):
        say(printable(f"not run: {waiting['problem']}"))
    path = run_dir / f"plan-round-{waiting.get('round')}.json"
    path.write_text(json.dumps({"plan": plan}, indent=2), encoding="utf-8")
    say("to go on:")
    say(f"  sevenfold resume {run_id} --approve")
    say(f"  sevenfold resume {run_id} --plan {path}   (after editing it)")
    say(f"  sevenfold resume {run_id} --reject")


def print_json_event(event: dict[str, Any]) -> None:
    """One event as one JSON line on standard output."""
    print(json.dumps(event, default=str), flush=True)


def _print_plain_event(event: dict[str, Any]) -> None:
    from sevenfold.progress import describe_event

    if event.get("event") in PLAIN_EVENTS:
        console.print(describe_event(event, 300), highlight=False, soft_wrap=True)
