"""A real PostgreSQL for the tests that need one.

`$SEVENFOLD_TEST_POSTGRES` names a server (`.ci/run` starts one with `scripts/postgres`); without it, a throwaway
cluster is started in a temporary folder when PostgreSQL's binaries are on this machine. In CI (`CI` set) a missing
PostgreSQL fails the tests that need it; elsewhere they are skipped. Each test (or module) gets a database of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_VARIABLE = "SEVENFOLD_TEST_POSTGRES"
SERVER_URL = os.environ.get(SERVER_VARIABLE)
"""Read at import: tests/conftest.py removes every SEVENFOLD_* variable from the environment after importing this."""
SCRIPT = Path(__file__).parent.parent / "scripts" / "postgres"


def _missing(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL tests: {why}")
    pytest.skip(why)


def _binaries_here() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")) or shutil.which("pg_ctl") is not None


@dataclass(frozen=True)
class PostgresServer:
    """A running server; `url` reaches its `postgres` database, from which test databases are made."""

    url: str

    def url_of(self, database: str) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + database

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new empty database for the block (dropped after, connections and all); its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]  # a generated name
        try:
            yield self.url_of(name)
        finally:
            with psycopg.connect(self.url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server of this test session (see the module's docstring)."""
    try:
        import psycopg  # noqa: F401
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # noqa: F401
    except ImportError:
        _missing("the postgres extra is not installed (pip install -e '.[dev]')")
    if SERVER_URL:
        yield PostgresServer(SERVER_URL)
        return
    if not _binaries_here():
        _missing(f"no PostgreSQL: set {SERVER_VARIABLE} or install it (apt-get install -y postgresql)")
    folder = tempfile.mkdtemp(prefix="sevenfold-pg-")  # /tmp: the postgres user must reach it when run as root
    started = subprocess.run([str(SCRIPT), "start", folder], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        _missing(f"scripts/postgres could not start a cluster: {started.stderr.strip()[-500:]}")
    try:
        yield PostgresServer(started.stdout.strip())
    finally:
        subprocess.run([str(SCRIPT), "stop", folder], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's PostgreSQL, dropped after the test."""
    with postgres_server.fresh_database() as url:
        yield url
