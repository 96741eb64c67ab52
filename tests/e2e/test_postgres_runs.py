"""Runs on a shared PostgreSQL database: one listing for every machine, a lock no second driver gets past, a run
resumed only where its worktrees are, a URL whose password is never shown or written, Studio's checkpointer.

"Machines" are run roots with their own host name (`SEVENFOLD_HOST_NAME`) on one database. The kills at each
stage and the second driver on PostgreSQL are in tests/e2e/test_crash_resume.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sevenfold.demo.policy import DemoPolicy
from sevenfold.runs import start_run
from sevenfold.settings import Settings
from sevenfold.shared_runs import HOST_VARIABLE, run_lock
from sevenfold.sim.runner import BackgroundSimulator

TASK = "Implement every stub module of the package so that the whole test suite passes."
SECRET = "hunter2"  # trust authentication accepts any password: the URL carries one to prove it is never shown


def _with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")


def _cli_env(root: Path, host: str) -> dict[str, str]:
    return {**os.environ, "SEVENFOLD_RUN_ROOT": str(root), HOST_VARIABLE: host, "COLUMNS": "200"}


async def _cli(argv: list[str], env: dict[str, str], seconds: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a command in a thread, the test's event loop free meanwhile (it serves the run lock's connection)."""
    return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, env=env, timeout=seconds)


def _everything_written(root: Path) -> str:
    """Every text file under a run root, as one string (to look for a secret in)."""
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file() and ".git" not in p.parts)


def _record_rows(url: str) -> str:
    with psycopg.connect(url) as connection:
        return str(connection.execute("SELECT * FROM sevenfold_runs").fetchall())


@pytest.fixture
def machine(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    example_repo: Callable[[str], Path],
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Any]:
    """`await machine("alpha", "run-id", approve_plan=False)`: a demo run started on host alpha (its own run root
    and repository) in the test's database; returns (its RunResult, its run root, its repository)."""
    sim = start_sim(policy=DemoPolicy())

    async def run(host: str, run_id: str, approve_plan: bool = False) -> tuple[Any, Path, Path]:
        root = tmp_path / host / "runs"
        repo = example_repo(f"{host}-{run_id}")
        settings = settings_for(
            sim, run_root=root, checkpoint_url=_with_password(postgres_url), approve_plan=approve_plan
        )
        monkeypatch.setenv(HOST_VARIABLE, host)
        result = await start_run(settings, TASK, repo, run_id)
        monkeypatch.delenv(HOST_VARIABLE)
        return result, root, repo

    return run


async def test_status_lists_every_run_in_the_database_with_its_host_and_repository(
    machine: Callable[..., Any], postgres_url: str, sevenfold_cli: Callable[..., list[str]], tmp_path: Path
) -> None:
    done, alpha_root, alpha_repo = await machine("alpha", "alpha-run")
    paused, beta_root, beta_repo = await machine("beta", "beta-run", approve_plan=True)
    assert (done.status, paused.status) == ("passed", "awaiting_approval")

    # From a third machine with no run directory at all.
    listing = await _cli(
        sevenfold_cli("status", "--checkpoint-url", postgres_url), _cli_env(tmp_path / "gamma", "gamma"), 60
    )
    assert listing.returncode == 0 and listing.stderr == "", listing.stderr
    lines = listing.stdout.splitlines()
    assert [line.split()[:4] for line in lines] == [
        ["beta-run", "awaiting", "approval", "round"],
        ["alpha-run", "passed", "round", "2"],
    ]  # newest first; the demo needs two rounds
    assert f"beta:{beta_repo}" in lines[0] and f"alpha:{alpha_repo}" in lines[1]

    one = await _cli(
        sevenfold_cli("status", "beta-run", "--checkpoint-url", postgres_url), _cli_env(tmp_path / "gamma", "gamma"), 60
    )
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines() == [
        "run beta-run: awaiting approval (round 1, next: approval)",
        f"  on beta: {beta_repo} (run directory {beta_root.resolve()})",
    ]
    # The records are in the database, not in the run directories; the password is in neither.
    assert not (alpha_root / "alpha-run" / "run.json").exists()
    assert SECRET not in _everything_written(tmp_path) and SECRET not in _record_rows(postgres_url)
    local = await _cli(sevenfold_cli("status"), _cli_env(alpha_root, "alpha"), 60)
    assert local.stdout.strip() == f"no runs in {alpha_root}"  # without the URL: this machine's SQLite runs


async def test_a_run_is_resumed_only_on_its_host_and_there_in_its_own_run_root(
    machine: Callable[..., Any], postgres_url: str, sevenfold_cli: Callable[..., list[str]], tmp_path: Path
) -> None:
    _, beta_root, _ = await machine("beta", "waits", approve_plan=True)
    resume = sevenfold_cli("resume", "waits", "--approve", "--quiet", "--checkpoint-url", postgres_url)
    status = sevenfold_cli("status", "waits", "--checkpoint-url", postgres_url)

    elsewhere = await _cli(resume, _cli_env(beta_root, "alpha"), 120)
    assert elsewhere.returncode == 2 and len(elsewhere.stderr.strip().splitlines()) == 1, elsewhere.stderr
    assert "run waits belongs to host beta (its repository and worktrees are there): resume it on beta" in (
        " ".join(elsewhere.stderr.split())
    )
    unchanged = await _cli(status, _cli_env(beta_root, "beta"), 60)
    assert unchanged.stdout.startswith("run waits: awaiting approval (round 1, next: approval)"), unchanged.stdout

    # On its host, from any folder: the run goes on in its own run root (its settings come from its record).
    home = await _cli(resume, _cli_env(tmp_path / "elsewhere", "beta"), 300)
    assert home.returncode == 3, home.stdout[-2000:] + home.stderr[-2000:]  # round 2's plan awaits approval
    went_on = await _cli(status, _cli_env(beta_root, "beta"), 60)
    assert went_on.stdout.startswith("run waits: awaiting approval (round 2, next: approval)"), went_on.stdout
    assert (beta_root / "waits" / "worktrees").is_dir() and not (tmp_path / "elsewhere").exists()


async def test_the_database_lock_refuses_a_second_driver_that_shares_no_lock_file(
    machine: Callable[..., Any],
    postgres_url: str,
    sevenfold_cli: Callable[..., list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, root, _ = await machine("alpha", "held", approve_plan=True)
    resume = sevenfold_cli("resume", "held", "--approve", "--quiet", "--checkpoint-url", postgres_url)
    monkeypatch.setenv(HOST_VARIABLE, "gamma")
    async with run_lock(postgres_url, "held"):  # a driver on another machine: the database lock, no lock file
        second = await _cli(resume, _cli_env(root, "alpha"), 120)
    assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert "run held is being driven by another process (on gamma); wait for it or stop it first" in (
        " ".join(second.stderr.split())
    )
    after = await _cli(resume, _cli_env(root, "alpha"), 300)
    assert after.returncode == 3, after.stdout[-2000:] + after.stderr[-2000:]  # released: on to round 2's plan


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://postgres:hunter2@127.0.0.1:{port}/db", "no PostgreSQL at postgresql://postgres:***@127.0.0.1:"),
        ("mysql://root:hunter2@127.0.0.1/db", "checkpoint_url: give a postgresql://USER@HOST:PORT/DATABASE URL"),
    ],
)
def test_a_bad_or_unreachable_database_is_one_line_exit_2_nothing_written_and_no_password(
    url: str,
    says: str,
    sevenfold_cli: Callable[..., list[str]],
    example_repo: Callable[[str], Path],
    free_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    url = url.format(port=free_port())
    repo = example_repo("repo")
    root = tmp_path / "runs"
    for argv in (
        ["run", TASK, "--repo", str(repo), "--base-url", "http://127.0.0.1:9/v1", "--run-id", "never"],
        ["status"],
        ["resume", "never"],
    ):
        done = subprocess.run(
            sevenfold_cli(*argv, "--checkpoint-url", url),
            capture_output=True,
            text=True,
            env=_cli_env(root, "alpha"),
            timeout=60,
        )
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, (argv, done.stderr)
        assert says in " ".join(done.stderr.split()) and SECRET not in done.stderr + done.stdout, done.stderr
    assert not root.exists()


async def test_studios_checkpointer_factory_gives_a_working_saver_on_the_database(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.graph import StateGraph
    from typing_extensions import TypedDict

    from sevenfold.graphs.checkpointer import factory

    class Count(TypedDict):
        n: int

    graph = StateGraph(Count)
    graph.add_node("add", lambda state: {"n": state["n"] + 1})
    graph.set_entry_point("add")
    monkeypatch.setenv("SEVENFOLD_CHECKPOINT_URL", postgres_url)
    async with factory() as saver:
        assert isinstance(saver, AsyncPostgresSaver)
        compiled = graph.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "studio-thread"}}
        await compiled.ainvoke({"n": 1}, config)
        await compiled.ainvoke({"n": 5}, config)
        assert (await compiled.aget_state(config)).values == {"n": 6}
    with psycopg.connect(postgres_url) as connection:  # in the database, for any machine to read
        saved = connection.execute("SELECT count(*) FROM checkpoints WHERE thread_id = 'studio-thread'").fetchone()
    assert saved is not None and saved[0] >= 2
    monkeypatch.delenv("SEVENFOLD_CHECKPOINT_URL")
    async with factory() as saver:
        assert isinstance(saver, InMemorySaver)  # no database named: the server's lifetime, as before
