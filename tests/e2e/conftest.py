"""Fixtures for end-to-end runs: an isolated run root and the example repository."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from sevenfold.demo.run import make_example_repo
from sevenfold.tools.shell import MARKER


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    """An environment for `sevenfold` subprocesses with its own run root."""
    return {**os.environ, "SEVENFOLD_RUN_ROOT": str(tmp_path / "runs"), "COLUMNS": "200"}


@pytest.fixture
def example_repo(tmp_path: Path) -> Callable[[str], Path]:
    """`example_repo("name")`: a fresh committed copy of the demo's example project."""

    def make(name: str) -> Path:
        parent = tmp_path / name
        parent.mkdir()
        return make_example_repo(parent)

    return make


def read_log(path: Path) -> list[dict[str, Any]]:
    """The simulator's request log."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def request_log() -> Callable[[Path], list[dict[str, Any]]]:
    """Read a simulator request log."""
    return read_log


def peak_in_flight(records: list[dict[str, Any]], role: str | None = None) -> int:
    """The most requests being served at one instant, from the log's start and end times."""
    events = sorted(
        [
            (r["start_offset"], 1)
            for r in records
            if r.get("start_offset") is not None and (role is None or r["hints"].get("role") == role)
        ]
        + [
            (r["end_offset"], -1)
            for r in records
            if r.get("end_offset") is not None and (role is None or r["hints"].get("role") == role)
        ]
    )
    depth = peak = 0
    for _, step in events:
        depth += step
        peak = max(peak, depth)
    return peak


@pytest.fixture
def peak() -> Callable[..., int]:
    """Peak requests in flight in a request log."""
    return peak_in_flight


def processes_of(run_dir: Path) -> list[str]:
    """Processes running in a run's directory or started for it (`SEVENFOLD_WORKTREE`), as "pid: command"."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd", "environ"]):
        try:
            cwd = process.info["cwd"] or ""
            marker = (process.info["environ"] or {}).get(MARKER, "")
        except (psutil.Error, OSError):
            continue
        if cwd.startswith(str(run_dir)) or marker.startswith(str(run_dir)):
            found.append(f"{process.info['pid']}: {' '.join(process.info['cmdline'] or [])[:200]}")
    return found


@pytest.fixture
def leftovers() -> Callable[[Path], list[str]]:
    """`leftovers(run_dir)`: processes a run left running (should be none once it has ended)."""
    return processes_of
