"""Runs on a shared PostgreSQL database: their records, where each stands, and the lock that keeps one driver per run.

Run records go to a small table of sevenfold's own, `sevenfold_runs` (one row per run: what was asked, its
settings, and where its repository and worktrees are: host, run root, repository path), not into LangGraph's
checkpoint metadata: a record exists before the run's first checkpoint, its primary key makes run ids unique across
the team, and LangGraph's tables stay LangGraph's to migrate. Where a run stands is read when asked: its status and
round from its latest checkpoint (plain values are stored inline there), a pending plan approval from that
checkpoint's writes, and whether a process drives it now from the run's advisory lock (`pg_locks`).

A run is driven only on the machine holding its repository and worktrees (`check_here`); the lock
(`pg_advisory_lock`, held by a connection of its own for the whole drive) keeps a second driver off it from any
machine, and is released by the server when the driver's connection closes, however the driver died.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sevenfold.checkpoints import DatabaseError, connect, connect_async, redacted
from sevenfold.errors import SevenfoldError
from sevenfold.settings import Settings

if TYPE_CHECKING:
    from psycopg import AsyncConnection

HOST_VARIABLE = "SEVENFOLD_HOST_NAME"
"""Overrides the machine's name as runs record it (tests play two machines on one; a host with an unstable name)."""
LOCK_WAIT = "3s"
"""How long a driver waits for a run's lock before refusing: long enough for the server to release the lock of a
driver killed a moment ago (its session ends when its socket closes), short enough to refuse a live one promptly."""
FINAL_STATUSES = ("passed", "failed", "rejected")

RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS sevenfold_runs (
    run_id text PRIMARY KEY,
    host text NOT NULL,
    run_root text NOT NULL,
    repo text NOT NULL,
    task text NOT NULL,
    created double precision NOT NULL,
    record jsonb NOT NULL
)"""
LOCK_KEY = "hashtextextended('sevenfold:run:' || {run_id}, 0)"
"""The advisory lock key of a run: a 64-bit hash PostgreSQL computes (stable: hash partitioning relies on it)."""
HELD = """
    l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND l.classid::bigint = (({key} >> 32) & 4294967295) AND l.objid::bigint = ({key} & 4294967295)"""
"""Whether `l`, a row of `pg_locks`, is the granted advisory lock of `key` (a bigint shows as two 32-bit oids)."""


def this_host() -> str:
    """The name runs started here record, and resumes compare against."""
    return os.environ.get(HOST_VARIABLE) or socket.gethostname()


async def prepare(connection: AsyncConnection[Any]) -> None:
    """Create sevenfold's table and run LangGraph's checkpoint migrations (`setup()`), once per database.

    Serialised by an advisory lock: several drivers starting at once on a fresh database would otherwise race
    on `CREATE TABLE IF NOT EXISTS` (which is not atomic in PostgreSQL).
    """
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    await connection.execute("SELECT pg_advisory_lock(hashtextextended('sevenfold:setup', 0))")
    try:
        await connection.execute(RUNS_TABLE)
        await AsyncPostgresSaver(connection).setup()
    finally:
        await connection.execute("SELECT pg_advisory_unlock(hashtextextended('sevenfold:setup', 0))")


async def prepare_database(url: str) -> None:
    """Reach the database and create what sevenfold and LangGraph need there; `DatabaseError` in one line."""
    connection = await connect_async(url)
    async with connection:
        await prepare(connection)


async def insert_record(url: str, record: dict[str, Any]) -> None:
    """Record a new run; `SevenfoldError` if a run of that id exists in the database, from any machine."""
    connection = await connect_async(url)
    async with connection:
        await prepare(connection)
        inserted = await connection.execute(
            "INSERT INTO sevenfold_runs (run_id, host, run_root, repo, task, created, record)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO NOTHING",
            (
                record["run_id"],
                record["host"],
                record["run_root"],
                record["repo"],
                record["task"],
                record["created"],
                json.dumps(record),
            ),
        )
        if inserted.rowcount == 0:
            run_id = record["run_id"]
            raise SevenfoldError(f"run {run_id} already exists in the database; use `sevenfold resume {run_id}`")


def fetch_record(url: str, run_id: str) -> dict[str, Any]:
    """A run's record from the database; `SevenfoldError` if there is none."""
    with connect(url) as connection:
        try:
            row = connection.execute("SELECT record FROM sevenfold_runs WHERE run_id = %s", (run_id,)).fetchone()
        except _undefined_table():
            row = None
    if row is None:
        raise SevenfoldError(f"no run {run_id!r} in the database {redacted(url)} (see `sevenfold status`)")
    return dict(row["record"])


def list_records(url: str) -> list[dict[str, Any]]:
    """Every run in the database, newest first, each record with its `status`, `round` and `driving` now.

    The status is `running` while a process holds the run's lock, else the run's final status once its report is
    written, else awaiting_approval when it waits on a plan, else incomplete.
    """
    key = LOCK_KEY.format(run_id="r.run_id")
    query = f"""
        SELECT r.record,
               c.checkpoint -> 'channel_values' ->> 'status' AS state_status,
               c.checkpoint -> 'channel_values' ->> 'report_path' AS report_path,
               c.checkpoint -> 'channel_values' -> 'round' AS round,
               EXISTS (SELECT 1 FROM checkpoint_writes w
                       WHERE w.thread_id = r.run_id AND w.checkpoint_ns = ''
                         AND w.checkpoint_id = c.checkpoint_id AND w.channel = '__interrupt__') AS paused,
               EXISTS (SELECT 1 FROM pg_locks l WHERE {HELD.format(key=key)}) AS driving
        FROM sevenfold_runs r
        LEFT JOIN LATERAL (
            SELECT checkpoint_id, checkpoint FROM checkpoints
            WHERE thread_id = r.run_id AND checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT 1
        ) c ON true
        ORDER BY r.created DESC"""
    with connect(url) as connection:
        try:
            rows = connection.execute(query).fetchall()
        except _undefined_table():
            return []  # nothing has run on this database yet
    runs = []
    for row in rows:
        record = dict(row["record"])
        final = row["report_path"] is not None and row["state_status"] in FINAL_STATUSES
        status = "awaiting_approval" if row["paused"] else "incomplete"
        record["status"] = "running" if row["driving"] else row["state_status"] if final else status
        record["finished"] = final
        record["round"] = row["round"]
        record["driving"] = bool(row["driving"])
        runs.append(record)
    return runs


def check_here(record: dict[str, Any], settings: Settings) -> None:
    """Refuse, in one line, to drive a run anywhere but on its machine, from its run root: its repository and
    worktrees are there, and nowhere else."""
    run_id, host = record["run_id"], record.get("host")
    if host and host != this_host():
        raise SevenfoldError(
            f"run {run_id} belongs to host {host} (its repository and worktrees are there): resume it on {host}"
        )
    run_root = record.get("run_root")
    if run_root and Path(run_root) != settings.run_root.resolve():
        raise SevenfoldError(
            f"run {run_id} keeps its worktrees in {run_root} on this host: resume it with SEVENFOLD_RUN_ROOT={run_root}"
        )


@asynccontextmanager
async def run_lock(url: str, run_id: str) -> AsyncIterator[None]:
    """Hold the run's advisory lock for the block, on a connection of its own; one line if another process holds it.

    The connection's application name says which host holds the lock, so the refusal can name it.
    """
    import psycopg

    connection = await connect_async(url, application_name=f"sevenfold@{this_host()}"[:63])
    async with connection:
        await connection.execute("SELECT set_config('lock_timeout', %s, false)", (LOCK_WAIT,))
        try:
            await connection.execute(f"SELECT pg_advisory_lock({LOCK_KEY.format(run_id='%s')})", (run_id,))
        except psycopg.errors.LockNotAvailable:
            holder = await _holder(connection, run_id)
            raise SevenfoldError(
                f"run {run_id} is being driven by another process{holder}; wait for it or stop it first"
            ) from None
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot lock run {run_id} in {redacted(url)}: {exc}") from None
        yield
        # Closing the connection releases the lock; a driver that dies releases it the same way.


async def _holder(connection: AsyncConnection[Any], run_id: str) -> str:
    """` (on HOST)` for the process holding a run's lock, if the database says."""
    held = HELD.format(key=LOCK_KEY.format(run_id="%s"))
    found = await connection.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE " + held,
        (run_id, run_id),
    )
    row = await found.fetchone()
    name = str(row["application_name"] or "") if row else ""
    return f" (on {name.removeprefix('sevenfold@')})" if name.startswith("sevenfold@") else ""


def _undefined_table() -> type[Exception]:
    import psycopg

    return psycopg.errors.UndefinedTable
