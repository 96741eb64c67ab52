"""A run's records, read without building its graph: `run.json` (what was asked), `report.json` (how it ended),
and its last checkpoint; on a shared PostgreSQL database (`checkpoint_url`), the `sevenfold_runs` table and the
checkpoints there (`sevenfold.shared_runs`).

Listing runs and reading one's status import no model client and open no graph or HTTP connection, so
`sevenfold status` stays fast and quiet.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from sevenfold.checkpoints import postgres_url, read_saver
from sevenfold.errors import SevenfoldError
from sevenfold.settings import Settings

FINAL_STATUSES = ("passed", "failed", "rejected")
INTERRUPT_CHANNEL = "__interrupt__"
"""Where LangGraph saves a pending interrupt (a plan waiting for approval) among a checkpoint's writes."""


def read_record(settings: Settings, run_id: str) -> dict[str, Any]:
    """A run's record (`run.json`, or its row in the shared database); `SevenfoldError` if there is no such run or
    `run_id` is not a safe name."""
    path = _run_dir(settings, run_id) / "run.json"
    if (url := postgres_url(settings)) is not None:
        from sevenfold.shared_runs import fetch_record

        return fetch_record(url, run_id)
    if not path.exists():
        raise SevenfoldError(f"no run {run_id!r} in {settings.run_root} (see `sevenfold status`)")
    return dict(json.loads(path.read_text(encoding="utf-8")))


async def save_record(settings: Settings, record: dict[str, Any]) -> None:
    """Record a new run: in the shared database with `checkpoint_url`, else its `run.json`; `SevenfoldError` if a
    run of that id exists already."""
    if (url := postgres_url(settings)) is not None:
        from sevenfold.shared_runs import insert_record

        await insert_record(url, record)
    else:
        await asyncio.to_thread(write_record, settings.run_root / record["run_id"], record)


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    """Write a new run's `run.json`; `SevenfoldError` if the run exists already."""
    if (run_dir / "run.json").exists():
        raise SevenfoldError(f"run {record['run_id']} already exists; use `sevenfold resume {record['run_id']}`")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(record, indent=2), encoding="utf-8")


def list_runs(settings: Settings) -> list[dict[str, Any]]:
    """Every run under the run root, newest first by when it started, each record with its `status`.

    The status is the report's (passed, failed, rejected) once there is one, else awaiting_approval when the
    run is paused at a plan, else incomplete. With `checkpoint_url`: every run in that database, whichever machine
    started it (see `sevenfold.shared_runs.list_records`).
    """
    if (url := postgres_url(settings)) is not None:
        from sevenfold.shared_runs import list_records

        return list_records(url)
    if not settings.run_root.is_dir():
        return []
    runs = []
    for path in settings.run_root.iterdir():
        try:
            record = json.loads((path / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not a run (the preflight folder, a stray file) or a record being written
        if not isinstance(record, dict):
            continue
        record["status"] = run_outcome(path)
        record["finished"] = record["status"] in FINAL_STATUSES
        runs.append(record)
    runs.sort(key=lambda record: float(record.get("created") or 0), reverse=True)
    return runs


def run_outcome(run_dir: Path) -> str:
    """How a run stands, from its files: the report's status, awaiting_approval, or incomplete."""
    try:
        status = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))["status"]
        if status in FINAL_STATUSES:
            return str(status)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return "awaiting_approval" if _paused(run_dir / "checkpoints.sqlite") else "incomplete"


def _paused(database: Path) -> bool:
    """Whether the run's last checkpoint waits on an interrupt: two SQL reads, no graph, no checkpointer."""
    if not database.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=2)) as db:
            last = db.execute(
                "SELECT checkpoint_id FROM checkpoints WHERE checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT 1"
            ).fetchone()
            if last is None:
                return False
            found = db.execute(
                "SELECT 1 FROM writes WHERE checkpoint_ns = '' AND checkpoint_id = ? AND channel = ? LIMIT 1",
                (last[0], INTERRUPT_CHANNEL),
            ).fetchone()
            return found is not None
    except sqlite3.Error:
        return False  # locked, or written by another version: say incomplete rather than fail the listing


async def run_status(settings: Settings, run_id: str) -> dict[str, Any]:
    """Where a run stands: its record, the next nodes, round, status, and worker reports so far.

    Read from the run's last checkpoint without building its graph (no model clients, no HTTP).
    """
    record = await asyncio.to_thread(read_record, settings, run_id)
    values: dict[str, Any] = {}
    upcoming: list[str] = []
    paused = False
    async with read_saver(settings, run_id) as saver:
        saved = (
            None
            if saver is None
            else await saver.aget_tuple({"configurable": {"thread_id": run_id, "checkpoint_ns": ""}})
        )
    if saved is not None:
        values = dict(saved.checkpoint["channel_values"])
        upcoming = _next_nodes(saved.checkpoint)
        paused = any(write[1] == INTERRUPT_CHANNEL for write in saved.pending_writes or [])
    final = values.get("status") in FINAL_STATUSES and not upcoming
    return {
        **record,
        "next": upcoming,
        "round": values.get("round"),
        "status": values["status"] if final else "awaiting_approval" if paused else "incomplete",
        "reports": values.get("reports", []),
        "report_path": values.get("report_path"),
        "result_branch": values.get("result_branch"),
    }


def _next_nodes(checkpoint: Mapping[str, Any]) -> list[str]:
    """The nodes a checkpoint's next step runs, read as LangGraph 1.2 saves them (no compiled graph needed).

    An edge to a node is a `branch:to:<node>` channel holding a value until the node has run; `Send` packets (the
    workers) are the `__pregel_tasks` channel, pending when the last step wrote them.
    """
    values = checkpoint["channel_values"]
    upcoming = [name.removeprefix("branch:to:") for name in values if name.startswith("branch:to:")]
    if "__pregel_tasks" in (checkpoint.get("updated_channels") or []):
        upcoming += sorted({str(getattr(packet, "node", "worker")) for packet in values.get("__pregel_tasks") or []})
    return upcoming


def _run_dir(settings: Settings, run_id: str) -> Path:
    # Imported here: the `sevenfold.state` package imports LangGraph, which listing runs does without.
    from sevenfold.state.ids import checked_run_id

    return settings.run_root / checked_run_id(run_id)


def run_settings(current: Settings, run_id: str) -> Settings:
    """The settings a run was started with (endpoints, roles, limits, its test setup), with the current secrets.

    `run.json` keeps every setting but the API keys, so a resumed run talks to the same server with the same
    limits and runs the same test command as the run it continues.
    """
    return current.with_overrides(**read_record(current, run_id)["settings"])
