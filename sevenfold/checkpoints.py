"""Where checkpoints live: a SQLite file per run (the embedded default) or one shared PostgreSQL database.

With `checkpoint_url` set (`--checkpoint-url`, `SEVENFOLD_CHECKPOINT_URL`), every run's checkpoints go to that
database through `langgraph-checkpoint-postgres` (the `postgres` extra), and so do the run records
(`sevenfold.shared_runs`), so `sevenfold status` there lists a team's runs whichever machine started them.

The URL is a secret: messages and records show it through `redacted`, never with its password.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from sevenfold.errors import SettingsError, SevenfoldError
from sevenfold.settings import Settings

if TYPE_CHECKING:  # imported where used: listing runs needs neither LangGraph nor psycopg
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from psycopg import AsyncConnection, Connection
    from psycopg_pool import AsyncConnectionPool

__all__ = [
    "CONNECT_TIMEOUT",
    "DatabaseError",
    "connect",
    "connect_async",
    "open_saver",
    "postgres_pool",
    "postgres_url",
    "read_saver",
    "redacted",
    "studio_saver",
]

SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT = 5
"""Seconds to wait for the database: an unreachable one is a one-line error, not a hang."""
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 20, "keepalives_interval": 5, "keepalives_count": 4}
"""TCP keepalives: the server notices a driver whose machine vanished (power cut, network gone) within about
40 s, and releases the run's lock; a process that dies on a live machine closes its socket and releases it at once."""
POOL_SIZE = 4
"""Connections per drive. The saver takes one at a time (its lock, see `bench/checkpoints.py`); the rest serve the
run's own reads (`aget_state`) and keep a spare ready."""


class DatabaseError(SevenfoldError):
    """The checkpoint database cannot be used: unreachable, refused the login, or not PostgreSQL."""


def redacted(url: str) -> str:
    """`url` with its password replaced by `***` (and nothing else changed), for messages and records."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return f"{url.partition('://')[0]}://(unparsable URL)"


def postgres_url(settings: Settings) -> str | None:
    """The checkpoint database's URL, checked; None means SQLite (a file per run).

    Raises `SettingsError` (one line, password hidden) for a URL that is not `postgresql://...`, and when the
    `postgres` extra is not installed.
    """
    if settings.checkpoint_url is None:
        return None
    url = settings.checkpoint_url.get_secret_value().strip()
    if not url:
        return None
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise SettingsError(f"checkpoint_url: give a postgresql://USER@HOST:PORT/DATABASE URL (got {redacted(url)})")
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise SettingsError(
            "checkpoint_url: PostgreSQL needs the postgres extra: pip install 'sevenfold[postgres]'"
        ) from None
    try:
        conninfo_to_dict(url)
    except Exception as exc:  # psycopg.ProgrammingError; its message never holds the password
        raise SettingsError(
            f"checkpoint_url {redacted(url)}: not a valid PostgreSQL URL ({_first_line(exc)})"
        ) from None
    return url


def _connection_kwargs() -> dict[str, Any]:
    """What `langgraph-checkpoint-postgres` requires of its connections (its README), plus timeouts."""
    from psycopg.rows import dict_row

    return {
        "autocommit": True,  # the saver commits each statement itself
        "prepare_threshold": 0,  # no server-side prepared statements (use None behind transaction-mode PgBouncer)
        "row_factory": dict_row,
        "connect_timeout": CONNECT_TIMEOUT,
        **KEEPALIVES,
    }


def connect(url: str, application_name: str = "sevenfold") -> Connection[dict[str, Any]]:
    """A blocking connection (for records and listings, which run in a thread or the CLI); `DatabaseError` if
    the database cannot be reached."""
    import psycopg

    try:
        return psycopg.connect(url, application_name=application_name, **_connection_kwargs())
    except psycopg.Error as exc:
        raise DatabaseError(f"no PostgreSQL at {redacted(url)}: {_first_line(exc)}") from None


async def connect_async(url: str, application_name: str = "sevenfold") -> AsyncConnection[dict[str, Any]]:
    """An async connection of its own (the run lock holds one for a whole drive); `DatabaseError` as `connect`."""
    import psycopg

    try:
        return await psycopg.AsyncConnection.connect(url, application_name=application_name, **_connection_kwargs())
    except psycopg.Error as exc:
        raise DatabaseError(f"no PostgreSQL at {redacted(url)}: {_first_line(exc)}") from None


@asynccontextmanager
async def postgres_pool(url: str, size: int = POOL_SIZE) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """A connection pool on the database, open for the block, with the tables sevenfold and LangGraph need.

    The database is reached once first, so a wrong URL fails at once with the server's reason.
    """
    from psycopg_pool import AsyncConnectionPool

    from sevenfold.shared_runs import prepare_database

    await prepare_database(url)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=1, max_size=size, kwargs=_connection_kwargs(), open=False, timeout=CONNECT_TIMEOUT * 6
    )
    await pool.open(wait=True, timeout=CONNECT_TIMEOUT * 2)
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def open_saver(settings: Settings, run_id: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The checkpointer a run is driven with: its own SQLite file, or `AsyncPostgresSaver` on a pool."""
    url = postgres_url(settings)
    if url is not None:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with postgres_pool(url) as pool:
            yield AsyncPostgresSaver(pool)
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    run_dir = settings.run_root / run_id
    await asyncio.to_thread(run_dir.mkdir, parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(run_dir / "checkpoints.sqlite")) as saver:
        # WAL (set by the saver) with synchronous=NORMAL: every committed step survives the process dying, which
        # is what resume needs; only a power cut can lose the last steps. FULL would fsync on every step.
        await saver.conn.execute("PRAGMA synchronous=NORMAL")
        yield saver


@asynccontextmanager
async def studio_saver(settings: Settings) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The checkpointer of a long-lived server (`langgraph dev`, Studio): `AsyncPostgresSaver` on a pool when
    `checkpoint_url` is set, else an in-memory one (what the in-memory server would use anyway)."""
    url = postgres_url(settings)
    if url is None:
        from langgraph.checkpoint.memory import InMemorySaver

        yield InMemorySaver()
        return
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with postgres_pool(url) as pool:
        yield AsyncPostgresSaver(pool)


@asynccontextmanager
async def read_saver(settings: Settings, run_id: str) -> AsyncIterator[BaseCheckpointSaver[Any] | None]:
    """A checkpointer to read a run's checkpoints with (None when it has none yet): one connection, no pool."""
    url = postgres_url(settings)
    if url is not None:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        connection = await connect_async(url)
        async with connection:
            yield AsyncPostgresSaver(connection)
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    database = settings.run_root / run_id / "checkpoints.sqlite"
    if not await asyncio.to_thread(database.is_file):
        yield None
        return
    async with AsyncSqliteSaver.from_conn_string(str(database)) as saver:
        yield saver


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
