"""Running, resuming and inspecting runs: the graph plus a checkpoint database per run.

A run lives in `settings.run_root / <run-id>/`: `run.json` (what was asked),
`checkpoints.sqlite` (every step, written before the next begins), `worktrees/`
and, at the end, `report.json` and `report.md`. The run id is the LangGraph
thread id.
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
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.types import Command, Durability

from sevenfold.errors import ServerError, SettingsError, SevenfoldError, WorkspaceError
from sevenfold.graphs.coding import CodingGraph, build_graph
from sevenfold.llm.factory import check_endpoint
from sevenfold.settings import ROLES, Settings
from sevenfold.state.ids import new_run_id
from sevenfold.state.team import TeamInput
from sevenfold.tools.shell import reap_leftovers
from sevenfold.tools.testing import check_test_command
from sevenfold.tools.workspace import Workspace

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
    """The coding graph with the run's own SQLite checkpointer, open for the body of the block."""
    run_dir = settings.run_root / run_id
    await asyncio.to_thread(run_dir.mkdir, parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(run_dir / "checkpoints.sqlite")) as saver:
        # WAL (set by the saver) with synchronous=NORMAL: every committed step survives the process dying, which
        # is what resume needs; only a power cut can lose the last steps. FULL would fsync on every step.
        await saver.conn.execute("PRAGMA synchronous=NORMAL")
        yield await asyncio.to_thread(build_graph, settings, saver)  # builds HTTP clients: reads certificates


async def preflight(settings: Settings, task: str, repo: Path) -> Workspace:
    """Everything that can be checked before a run starts, so bad input changes nothing.

    Raises `SevenfoldError` subclasses with one-line messages: empty task,
    repository problems, unreachable server, model not served.
    """
    if not task.strip():
        raise SettingsError("the task is empty: say what the team should do")
    workspace = await asyncio.to_thread(Workspace.open, repo, "preflight", settings.run_root / "preflight")
    await check_test_command(settings.tools, workspace.repo_path)
    checked: set[tuple[str, str]] = set()
    for role in ROLES:
        endpoint, model = settings.endpoint_for(role), settings.model_for(role)
        if (endpoint.base_url, model) not in checked:
            await check_endpoint(endpoint, model)
            checked.add((endpoint.base_url, model))
    return workspace


async def start_run(
    settings: Settings, task: str, repo: Path, run_id: str | None = None, on_event: EventHandler | None = None
) -> RunResult:
    """Check the input, then run the team on `task` in `repo` until the tests pass or the rounds run out."""
    await preflight(settings, task, repo)
    run_id = run_id or new_run_id()
    repo_path = str(await asyncio.to_thread(repo.resolve))
    record = {
        "run_id": run_id,
        "task": task,
        "repo": repo_path,
        "created": time.time(),
        "settings": _public_settings(settings),
    }
    await asyncio.to_thread(_write_record, settings.run_root / run_id, record)
    inputs = TeamInput(task=task, repo=repo_path, run_id=run_id)
    return await _drive(settings, run_id, inputs, on_event)


def read_record(settings: Settings, run_id: str) -> dict[str, Any]:
    """A run's record (`run.json`); `SevenfoldError` if there is no such run."""
    path = settings.run_root / run_id / "run.json"
    if not path.exists():
        raise SevenfoldError(f"no run {run_id!r} in {settings.run_root} (see `sevenfold status`)")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _write_record(run_dir: Path, record: dict[str, Any]) -> None:
    if (run_dir / "run.json").exists():
        raise SevenfoldError(f"run {record['run_id']} already exists; use `sevenfold resume {record['run_id']}`")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(record, indent=2), encoding="utf-8")


async def resume_run(
    settings: Settings, run_id: str, on_event: EventHandler | None = None, answer: Any = None
) -> RunResult:
    """Continue a run from its last checkpoint; finished steps and workers are not redone.

    A run paused for plan approval needs an `answer`: True, False, or {"plan": {...}} (see `nodes.approval`).
    """
    record = await asyncio.to_thread(read_record, settings, run_id)
    await preflight(settings, record["task"], Path(record["repo"]))
    asked = TeamInput(task=record["task"], repo=record["repo"], run_id=run_id)
    return await _drive(settings, run_id, None if answer is None else Command(resume=answer), on_event, asked)


async def _drive(
    settings: Settings,
    run_id: str,
    inputs: TeamInput | Command | None,
    on_event: EventHandler | None,
    resuming: TeamInput | None = None,
) -> RunResult:
    """Stream the graph from `inputs` to its end or a pause; `resuming` is the run's input when continuing it."""
    config = run_config(settings, run_id)
    stopped_by = None
    async with _exclusive(settings.run_root / run_id), open_graph(settings, run_id) as graph:
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
async def _exclusive(run_dir: Path) -> AsyncIterator[None]:
    """Hold the run's lock file for the body: two processes driving one run would both write its worktrees.

    An OS lock (flock), so a process that dies releases it; where there is no `fcntl` (Windows), no lock.
    """
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


async def run_status(settings: Settings, run_id: str) -> dict[str, Any]:
    """Where a run stands: its record, the next nodes, round, status, and worker reports so far."""
    record = await asyncio.to_thread(read_record, settings, run_id)
    async with open_graph(settings, run_id) as graph:
        state = await graph.aget_state(run_config(settings, run_id))
    values = state.values
    return {
        **record,
        "next": list(state.next),
        "round": values.get("round"),
        "status": values.get("status") if not state.next else "incomplete",
        "reports": values.get("reports", []),
        "report_path": values.get("report_path"),
        "result_branch": values.get("result_branch"),
    }


def list_runs(settings: Settings) -> list[dict[str, Any]]:
    """Every run under the run root, newest first."""
    if not settings.run_root.is_dir():
        return []
    runs = []
    for path in sorted(settings.run_root.iterdir(), reverse=True):
        record_path = path / "run.json"
        if record_path.is_file():
            record = json.loads(record_path.read_text(encoding="utf-8"))
            record["finished"] = (path / "report.json").exists()
            runs.append(record)
    return runs


def _public_settings(settings: Settings) -> dict[str, Any]:
    return json.loads(settings.model_dump_json(exclude={"endpoints": {"__all__": {"api_key"}}}))


__all__ = [
    "RunResult",
    "WorkspaceError",
    "list_runs",
    "new_run_id",
    "open_graph",
    "preflight",
    "resume_run",
    "run_config",
    "run_status",
    "start_run",
]


def run_settings(current: Settings, run_id: str) -> Settings:
    """The settings a run was started with (endpoints, roles, limits), with the current secrets.

    `run.json` keeps every setting but the API keys, so a resumed run talks to
    the same server with the same limits as the run it continues.
    """
    from sevenfold.settings import load_settings

    record_path = current.run_root / run_id / "run.json"
    if not record_path.exists():
        raise SevenfoldError(f"no run {run_id!r} in {current.run_root} (see `sevenfold status`)")
    saved = json.loads(record_path.read_text(encoding="utf-8"))["settings"]
    for name, endpoint in saved.get("endpoints", {}).items():
        if name in current.endpoints:
            endpoint["api_key"] = current.endpoints[name].api_key.get_secret_value()
    return load_settings(**saved)
