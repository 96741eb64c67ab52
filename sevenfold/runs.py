"""Running, resuming and inspecting runs: the graph plus a checkpoint database per run.

A run lives in `settings.run_root / <run-id>/`: `run.json` (what was asked, with
the settings and test setup it runs with), `checkpoints.sqlite` (every step,
written before the next begins), `worktrees/` and, at the end, `report.json` and
`report.md`. The run id is the LangGraph thread id. Reading those files without
a graph is `sevenfold.records`.

With `checkpoint_url` (a shared PostgreSQL database) the record and the checkpoints
go to that database instead (`sevenfold.checkpoints`, `sevenfold.shared_runs`); the
worktrees and reports stay in the run directory on the machine that started the run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Durability

from sevenfold.checkpoints import open_saver, postgres_url
from sevenfold.errors import ServerError, SettingsError, SevenfoldError, WorkspaceError
from sevenfold.graphs.coding import CodingGraph, build_graph
from sevenfold.llm.factory import check_endpoint
from sevenfold.records import list_runs, read_record, run_settings, run_status, save_record
from sevenfold.settings import ROLES, Settings
from sevenfold.shared_runs import check_here, prepare_database, run_lock, this_host
from sevenfold.state.ids import checked_run_id, new_run_id
from sevenfold.state.team import TeamInput
from sevenfold.tools.sandbox import sandbox_policy
from sevenfold.tools.shell import reap_leftovers
from sevenfold.tools.test_setup import TestSetup, resolve_test_setup
from sevenfold.tools.testing import check_test_command
from sevenfold.tools.workspace import Workspace

__all__ = [
    "Checked",
    "RunResult",
    "WorkspaceError",
    "list_runs",
    "new_run_id",
    "open_graph",
    "preflight",
    "resume_run",
    "run_config",
    "run_settings",
    "run_status",
    "start_run",
]

EventHandler = Callable[[dict[str, Any]], None]
DURABILITY: Durability = "sync"
"""Each step's checkpoint is written before the next step starts, so a crash loses at most the step running."""


@dataclass(frozen=True)
class RunResult:
    """How a run ended."""

    run_id: str
    status: str
    """passed, failed, rejected (the plan was), awaiting_approval (paused at the plan), or incomplete."""
    result_branch: str | None
    report_path: str | None
    run_dir: Path
    waiting_for: dict[str, Any] | None = None
    """When paused for approval: the interrupt's value (the round, the plan, any problem with an edit)."""
    stopped_by: str | None = None
    """When incomplete because the model server failed under the run: why (resume once it is back)."""


def run_config(settings: Settings, run_id: str) -> RunnableConfig:
    """The LangGraph config of a run: thread id, active-worker cap, recursion limit."""
    per_worker = 3 * settings.worker_max_steps + 10
    return {
        "configurable": {"thread_id": run_id},
        "max_concurrency": settings.max_active_workers,  # top level: under "configurable" it is ignored
        "recursion_limit": max(200, 20 * settings.max_rounds + per_worker),
    }


@asynccontextmanager
async def open_graph(settings: Settings, run_id: str) -> AsyncIterator[CodingGraph]:
    """The coding graph with the run's checkpointer (its SQLite file, or the shared database), open for the block."""
    run_dir = settings.run_root / checked_run_id(run_id)
    await asyncio.to_thread(run_dir.mkdir, parents=True, exist_ok=True)
    async with open_saver(settings, run_id) as saver:
        yield await asyncio.to_thread(build_graph, settings, saver)  # builds HTTP clients: reads certificates


@dataclass(frozen=True)
class Checked:
    """What the preflight found: the settings the run uses (its test setup applied), and that setup."""

    settings: Settings
    tests: TestSetup


async def preflight(settings: Settings, task: str, repo: Path, resolve_tests: bool = True) -> Checked:
    """Everything that can be checked before a run starts, so bad input changes nothing.

    With `resolve_tests` (a new run), the test setup is worked out (the repository's `[tool.sevenfold]`, a `src/`
    layout) and the tests are collected at the base commit in the sandbox; a resumed run keeps the setup it began
    with. Raises `SevenfoldError` subclasses with one-line messages: empty task, repository problems, no sandbox,
    unreachable server, model not served, a test command that does not run or cannot collect the tests.
    """
    if not task.strip():
        raise SettingsError("the task is empty: say what the team should do")
    workspace = await asyncio.to_thread(Workspace.open, repo, "preflight", settings.run_root / "preflight")
    sandbox = await asyncio.to_thread(sandbox_policy, settings, workspace.repo_path)  # no backend: stop here
    checked: set[tuple[str, str]] = set()
    for role in ROLES:
        endpoint, model = settings.endpoint_for(role), settings.model_for(role)
        if (endpoint.base_url, model) not in checked:
            await check_endpoint(endpoint, model)
            checked.add((endpoint.base_url, model))
    if resolve_tests:
        tests = await resolve_test_setup(settings, workspace.repo_path, workspace.base_commit, sandbox)
    else:
        await check_test_command(settings.tools, sandbox.jail(workspace.repo_path, writable=False))
        tests = TestSetup(settings.tools.test_command, dict(settings.sandbox.env))
    return Checked(tests.apply(settings), tests)


async def start_run(
    settings: Settings, task: str, repo: Path, run_id: str | None = None, on_event: EventHandler | None = None
) -> RunResult:
    """Check the input, then run the team on `task` in `repo` until the tests pass or the rounds run out."""
    run_id = new_run_id() if run_id is None else checked_run_id(run_id)
    if (url := postgres_url(settings)) is not None:
        await prepare_database(url)  # a bad URL or an unreachable database stops here, before anything is written
    checked = await preflight(settings, task, repo)
    settings = checked.settings
    repo_path = str(await asyncio.to_thread(repo.resolve))
    tests = checked.tests.describe()
    record = {
        "run_id": run_id,
        "task": task,
        "repo": repo_path,
        "created": time.time(),
        "host": this_host(),
        "run_root": str(await asyncio.to_thread(settings.run_root.resolve)),
        "settings": _public_settings(settings),
        "tests": tests,
    }
    await save_record(settings, record)
    inputs = TeamInput(task=task, repo=repo_path, run_id=run_id)
    return await _drive(settings, run_id, inputs, on_event, tests=tests)


async def resume_run(
    settings: Settings, run_id: str, on_event: EventHandler | None = None, answer: Any = None
) -> RunResult:
    """Continue a run from its last checkpoint; finished steps and workers are not redone.

    A run paused for plan approval needs an `answer`: True, False, or {"plan": {...}} (see `nodes.approval`).
    """
    record = await asyncio.to_thread(read_record, settings, run_id)
    if postgres_url(settings) is not None:
        check_here(record, settings)  # its repository and worktrees are on one machine
    checked = await preflight(settings, record["task"], Path(record["repo"]), resolve_tests=False)
    asked = TeamInput(task=record["task"], repo=record["repo"], run_id=run_id)
    tests = record.get("tests") or checked.tests.describe()
    return await _drive(settings, run_id, None if answer is None else Command(resume=answer), on_event, asked, tests)


async def _drive(
    settings: Settings,
    run_id: str,
    inputs: TeamInput | Command | None,
    on_event: EventHandler | None,
    resuming: TeamInput | None = None,
    tests: dict[str, Any] | None = None,
) -> RunResult:
    """Stream the graph from `inputs` to its end or a pause; `resuming` is the run's input when continuing it.

    The first events say where the model's commands run (`sandbox`) and how the tests run (`test_setup`: the
    command, the names of the variables set, what came from the repository, what sevenfold chose).
    """
    config = run_config(settings, run_id)
    stopped_by = None
    async with _exclusive(settings, run_id), open_graph(settings, run_id) as graph:
        asked = resuming if resuming is not None else inputs
        if on_event is not None and isinstance(asked, dict):  # say first where the model's commands will run
            sandbox = await asyncio.to_thread(sandbox_policy, settings, Path(asked["repo"]))
            on_event({"event": "sandbox", **sandbox.describe(), "time": time.time()})
            if tests is not None:
                on_event({"event": "test_setup", **tests, "time": time.time()})
        if resuming is not None:  # under the lock: commands of a process still driving the run are not leftovers
            reaped = await asyncio.to_thread(reap_leftovers, settings.run_root / run_id)
            if reaped and on_event is not None:
                on_event({"event": "leftovers_killed", "process_groups": reaped, "time": time.time()})
            if inputs is None and (await graph.aget_state(config)).created_at is None:
                inputs = resuming  # killed before its first step was written: start again from what was asked
        try:
            # subgraphs=True: the workers are a subgraph; their progress events only reach the caller this way.
            async for namespace, mode, chunk in graph.astream(
                inputs, config, stream_mode=["custom", "updates"], durability=DURABILITY, subgraphs=True
            ):
                if on_event is None:
                    continue
                if mode == "custom" and isinstance(chunk, dict):
                    on_event(chunk)
                elif mode == "updates" and isinstance(chunk, dict) and not namespace:
                    for node in chunk:
                        on_event({"event": "step", "node": node, "time": time.time()})
        except ServerError as exc:
            # Steps finished before the failure are checkpointed; the step that failed runs again on resume.
            stopped_by = str(exc)
        state = await graph.aget_state(config)
    values = state.values
    waiting = [i.value for task in state.tasks for i in task.interrupts]
    status = values.get("status") if not state.next else "awaiting_approval" if waiting else "incomplete"
    return RunResult(
        run_id,
        status or "incomplete",
        values.get("result_branch"),
        values.get("report_path"),
        settings.run_root / run_id,
        waiting[0] if waiting else None,
        stopped_by,
    )


@asynccontextmanager
async def _exclusive(settings: Settings, run_id: str) -> AsyncIterator[None]:
    """Hold the run's locks for the body: two processes driving one run would both write its worktrees.

    On a shared database, its advisory lock first (a driver on any machine is refused); then, always, the run
    directory's lock file.
    """
    url = postgres_url(settings)
    if url is None:
        async with _locked_file(settings.run_root / run_id):
            yield
        return
    async with run_lock(url, run_id), _locked_file(settings.run_root / run_id):
        yield


@asynccontextmanager
async def _locked_file(run_dir: Path) -> AsyncIterator[None]:
    """Hold the run directory's lock file: an OS lock (flock), so a process that dies releases it; where there is no
    `fcntl` (Windows), no lock."""
    if fcntl is None:
        yield
        return
    await asyncio.to_thread(run_dir.mkdir, parents=True, exist_ok=True)
    handle = await asyncio.to_thread(open, run_dir / "lock", "a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SevenfoldError(
                f"run {run_dir.name} is being driven by another process; wait for it or stop it first"
            ) from None
        yield
    finally:
        await asyncio.to_thread(handle.close)


def _public_settings(settings: Settings) -> dict[str, Any]:
    # Neither the API keys nor the database URL (its password): a resumed run takes both from its own settings.
    return json.loads(settings.model_dump_json(exclude={"endpoints": {"__all__": {"api_key"}}, "checkpoint_url": True}))
