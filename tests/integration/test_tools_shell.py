"""Commands: killed with their children at the timeout, output capped, secrets invisible."""

from __future__ import annotations

import os
import subprocess
import time
import tracemalloc
from pathlib import Path

import psutil
import pytest

from sevenfold.settings import SandboxSettings
from sevenfold.tools.sandbox import SandboxPolicy, unconfined
from sevenfold.tools.shell import MARKER, reap_leftovers, run_command
from tests.waiting import await_until, wait_until


def _sleepers() -> list[psutil.Process]:
    return [
        p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and p.info["cmdline"][:2] == ["sleep", "313"]
    ]


async def test_a_timeout_kills_the_command_and_its_background_children(tmp_path: Path) -> None:
    started = time.monotonic()
    result = await run_command(
        "sleep 313 & sleep 313 & sleep 313", unconfined(tmp_path), timeout_s=1.0, output_limit=1000
    )
    assert result.timed_out and result.exit_code is None
    assert time.monotonic() - started < 10
    assert "timed out" in result.for_model()
    assert _sleepers() == []


async def test_children_left_running_after_a_normal_exit_are_killed_too(tmp_path: Path) -> None:
    result = await run_command(
        "sleep 313 > /dev/null 2>&1 & echo started", unconfined(tmp_path), timeout_s=30, output_limit=1000
    )
    assert result.exit_code == 0 and "started" in result.output
    await await_until(lambda: _sleepers() == [], "the command's background child to be killed")


async def test_a_flood_of_output_is_capped_and_memory_stays_bounded(tmp_path: Path) -> None:
    # Python's own allocations, not the process's RSS (which other threads and the allocator move): a reader that
    # kept the 50 MB would peak above it. The RSS figure is measured by `bench/timing_figures.py flood`.
    tracemalloc.start()
    try:
        result = await run_command(
            "yes 0123456789 | head -c 50000000", unconfined(tmp_path), timeout_s=60, output_limit=10_000
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0
    assert result.cut_chars > 49_000_000
    assert "characters cut" in result.output and len(result.output) < 11_000
    assert result.output.startswith("0123456789\n") and result.output.endswith("\n012345")  # head and tail kept
    assert peak < 10 * 1024 * 1024, f"reading the output allocated up to {peak / 1e6:.0f} MB at once"


async def test_secrets_in_the_environment_are_invisible_to_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canaries = {
        "OPENAI_API_KEY": "canary-openai",
        "MY_SERVICE_TOKEN": "canary-token",
        "DB_PASSWORD": "canary-pw",
        "SEVENFOLD_ENDPOINTS__DEFAULT__API_KEY": "canary-sf",
        "LANGSMITH_API_KEY": "canary-ls",
        "APP_SECRET_VALUE": "canary-secret",
    }
    for key, value in canaries.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HARMLESS_SETTING", "visible")
    monkeypatch.setenv("NAMED_SETTING", "passed")
    policy = SandboxPolicy("none", SandboxSettings(backend="none", pass_env=["NAMED_SETTING"], env={"SET_HERE": "1"}))
    result = await run_command("env", policy.jail(tmp_path), timeout_s=10, output_limit=100_000)
    assert "canary" not in result.output
    # An allow-list, not a deny-list: only PATH-like basics, the names the user lists and the values they set.
    assert "HARMLESS_SETTING" not in result.output
    assert "NAMED_SETTING=passed" in result.output and "SET_HERE=1" in result.output and "PATH=" in result.output


async def test_commands_run_in_the_worktree_with_stdin_closed(tmp_path: Path) -> None:
    result = await run_command("pwd; cat; echo done", unconfined(tmp_path), timeout_s=10, output_limit=1000)
    assert result.output.splitlines() == [str(tmp_path), "done"]
    assert os.getpgrp() != 0


def test_commands_a_dead_run_left_behind_are_found_and_killed(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r1"
    other = tmp_path / "runs" / "r10"  # a run whose name starts the same: not ours
    env = {**os.environ, MARKER: str(run_dir / "worktrees" / "w1")}
    ours = subprocess.Popen(["bash", "-c", "sleep 317 & sleep 317"], env=env, start_new_session=True)
    theirs = subprocess.Popen(["sleep", "317"], env={**env, MARKER: str(other / "worktrees" / "w1")})
    try:
        wait_until(lambda: len(_by_cmdline("317")) == 3, "the three sleeps to start")
        assert reap_leftovers(run_dir) == 1  # one process group: the shell and both sleeps
        ours.wait(timeout=10)
        wait_until(lambda: [p.pid for p in _by_cmdline("317")] == [theirs.pid], "only the other run's sleep to be left")
    finally:
        theirs.kill()
        theirs.wait(timeout=10)


def _by_cmdline(marker: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and p.info["cmdline"][-1] == marker]
