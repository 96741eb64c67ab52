"""Commands that drive runs: `run`, `resume` (after a crash, or to answer a plan approval) and `status`.

`sevenfold.runs` (the graph and the model clients) is imported inside `run` and `resume`: `status` reads a run's
files through `sevenfold.records` and stays fast.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from sevenfold.cli.common import (
    CheckpointUrlOption,
    ConfigOption,
    EventsOption,
    QuietOption,
    SandboxOption,
    settings_from_flags,
)
from sevenfold.cli.run_output import exit_with_result, run_with_progress
from sevenfold.errors import SevenfoldError
from sevenfold.records import list_runs, run_status

MAX_TASK_BYTES = 4 * 2**20
"""A larger task would be copied into every checkpoint and prompt; no model context holds it anyway."""


def run(
    task: Annotated[
        str | None, typer.Argument(help="What the team should do; - reads it from standard input.", show_default=False)
    ] = None,
    task_file: Annotated[
        Path | None, typer.Option("--task-file", help="Read the task from this file (for a long one).")
    ] = None,
    repo: Annotated[
        Path, typer.Option(help="The git repository to work on; only new branches are written to it.")
    ] = Path("."),
    slots: Annotated[int | None, typer.Option(help="Model requests in flight at once on the endpoint.")] = None,
    max_rounds: Annotated[int | None, typer.Option(help="Planner-to-verifier rounds before giving up.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server, e.g. http://gpu-box:8000/v1.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name on that server.")] = None,
    run_id: Annotated[str | None, typer.Option(help="Name the run (default: date, time and a random suffix).")] = None,
    approve_plan: Annotated[
        bool, typer.Option("--approve-plan", help="Pause after each plan until you approve it (sevenfold resume).")
    ] = False,
    test_command: Annotated[
        str | None,
        typer.Option(
            "--test-command",
            help="What runs the tests, e.g. 'PYTHONPATH=src python -m pytest' (default: the repository's "
            "pyproject.toml \\[tool.sevenfold] test_command, else python -m pytest; setting tools.test_command).",
        ),
    ] = None,
    test_env: Annotated[
        list[str] | None,
        typer.Option(
            "--test-env",
            help="NAME=VALUE set for the tests and every command the model runs, repeatable (setting sandbox.env).",
        ),
    ] = None,
    config: ConfigOption = None,
    checkpoint_url: CheckpointUrlOption = None,
    sandbox: SandboxOption = None,
    quiet: QuietOption = False,
    events: EventsOption = False,
) -> None:
    """Run the team on TASK in a repository until the tests pass or the rounds run out.

    Before anything is written, the tests are collected at HEAD in the sandbox: a test command that cannot
    even collect them stops the run with what to try.
    """
    from sevenfold.runs import start_run

    text = read_task(task, task_file)
    sandbox_settings: dict[str, Any] = {"backend": sandbox} if sandbox else {}
    if env := parse_test_env(test_env):
        sandbox_settings["env"] = env
    settings = settings_from_flags(
        config,
        base_url=base_url,
        model=model,
        slots=slots,
        max_rounds=max_rounds,
        approve_plan=True if approve_plan else None,
        sandbox=sandbox_settings or None,
        tools={"test_command": test_command} if test_command is not None else None,
        checkpoint_url=checkpoint_url,
    )
    exit_with_result(
        run_with_progress(settings, quiet, lambda on_event: start_run(settings, text, repo, run_id, on_event), events),
        events,
    )


def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue (see `sevenfold status`).")],
    approve: Annotated[bool, typer.Option("--approve", help="Approve the plan the run is waiting on.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject it: no workers run, the run ends.")] = False,
    plan: Annotated[
        Path | None, typer.Option("--plan", help='Run this plan instead (JSON: {"plan": {...}} or the plan itself).')
    ] = None,
    config: ConfigOption = None,
    checkpoint_url: CheckpointUrlOption = None,
    quiet: QuietOption = False,
    events: EventsOption = False,
) -> None:
    """Continue a run after a crash or Ctrl-C (finished work is not redone), or answer its plan approval."""
    from sevenfold.runs import resume_run, run_settings

    answer = approval_answer(approve, reject, plan)
    settings = run_settings(settings_from_flags(config, checkpoint_url=checkpoint_url), run_id)
    exit_with_result(
        run_with_progress(settings, quiet, lambda on_event: resume_run(settings, run_id, on_event, answer), events),
        events,
    )


def status(
    run_id: Annotated[str | None, typer.Argument(help="A run id; without one, list the runs.")] = None,
    config: ConfigOption = None,
    checkpoint_url: CheckpointUrlOption = None,
) -> None:
    """List runs (newest first), or show where one stands. With --checkpoint-url: every run in that database,
    whichever machine started it, with the machine and repository it belongs to."""
    from sevenfold.checkpoints import postgres_url, redacted

    settings = settings_from_flags(config, checkpoint_url=checkpoint_url)
    shared = postgres_url(settings)
    if run_id is None:
        runs = list_runs(settings)
        if not runs:
            print(f"no runs in {settings.run_root if shared is None else redacted(shared)}")
        for record in runs:
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(record.get("created") or 0)))
            task = " ".join(str(record.get("task", "")).split())
            label = str(record["status"]).replace("_", " ")
            where = f"{record.get('host', '?')}:{record.get('repo', '')}" if shared else record.get("repo", "")
            rounds = f"round {record['round'] or '-'}  " if shared else ""
            print(f"{record['run_id']}  {label:<17}  {rounds}{started}  {where}  {task[:60]}")
        return
    info = asyncio.run(run_status(settings, run_id))
    label = str(info["status"]).replace("_", " ")
    print(f"run {run_id}: {label} (round {info['round']}, next: {', '.join(info['next']) or 'nothing'})")
    if shared:
        print(f"  on {info.get('host', '?')}: {info.get('repo', '')} (run directory {info.get('run_root', '?')})")
    for report in info["reports"]:
        print(
            f"  round {report['round']} {report['subtask_id']}: {report['status']} ({len(report['files_changed'])} files)"
        )
    if info["report_path"]:
        print(f"report: {info['report_path']}")


def read_task(task: str | None, task_file: Path | None) -> str:
    """The task: the argument, `-` for standard input, or `--task-file` (exactly one of them)."""
    if (task is None) == (task_file is None):
        raise SevenfoldError("give the task once: as TASK, as - (read from standard input) or with --task-file PATH")
    if task is not None and task != "-":
        return task
    where = "standard input" if task_file is None else f"--task-file {task_file}"
    try:
        if task_file is None:
            data = sys.stdin.buffer.read(MAX_TASK_BYTES + 1)
        else:
            with task_file.open("rb") as file:
                data = file.read(MAX_TASK_BYTES + 1)
    except OSError as exc:
        raise SevenfoldError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_TASK_BYTES:
        raise SevenfoldError(f"{where}: the task is over {MAX_TASK_BYTES // 2**20} MiB; say it in fewer words")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SevenfoldError(f"{where}: the task is not UTF-8 text") from None


def parse_test_env(pairs: list[str] | None) -> dict[str, str] | None:
    """`--test-env NAME=VALUE` options as a dict (None when there are none)."""
    if not pairs:
        return None
    env: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise SevenfoldError(f"--test-env {pair!r}: give NAME=VALUE, NAME made of letters, digits and '_'")
        env[name] = value
    return env


def approval_answer(approve: bool, reject: bool, plan: Path | None) -> Any:
    """What `resume` answers a paused plan: True, False, {"plan": {...}} from `--plan`, or None (no answer)."""
    if approve + reject + (plan is not None) > 1:
        raise SevenfoldError("give one of --approve, --reject and --plan")
    if plan is None:
        return True if approve else False if reject else None
    try:
        data = json.loads(plan.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SevenfoldError(f"--plan {plan}: not a readable JSON file ({exc})") from None
    return data if isinstance(data, dict) and "plan" in data else {"plan": data}
