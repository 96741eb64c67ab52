"""The whole team, end to end: the demo through the CLI (crash and resume: `test_crash_resume.py`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.gitutil import git

Log = Callable[[Path], list[dict[str, Any]]]


def test_demo_finishes_in_two_rounds_with_workers_in_parallel(
    sevenfold_cli: Callable[..., list[str]],
    run_env: dict[str, str],
    tmp_path: Path,
    request_log: Log,
    peak: Callable[..., int],
) -> None:
    log = tmp_path / "sim.jsonl"
    result = subprocess.run(
        sevenfold_cli("demo", "--quiet", "--workdir", str(tmp_path / "work"), "--sim-log", str(log)),
        capture_output=True,
        text=True,
        timeout=600,
        env=run_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout
    report_path = Path(result.stdout.split("report: ")[1].split()[0])
    report = json.loads(report_path.with_suffix(".json").read_text())
    assert report["status"] == "passed" and len(report["rounds"]) == 2
    assert [r["tests_passed"] for r in report["rounds"]] == [False, True]
    repo = tmp_path / "work" / "example"
    # The result branch passes the tests; the user's branch and worktree list are as they were.
    assert git(repo, "branch", "--list", "sevenfold/*") == report["result_branch"]
    assert git(repo, "branch", "--show-current") == "main" and git(repo, "status", "--porcelain") == ""
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    records = request_log(log)
    # Workers overlap, and never more than the 7 slots. How many overlap depends on the CPU: on an idle 2-core
    # machine all 7 (see bench/README.md); with the cores busy, setting up worktrees spreads the starts out.
    assert 2 <= peak(records, "worker") <= 7
    thinking = {(r["hints"]["role"], r["enable_thinking"]) for r in records}
    assert thinking == {("planner", True), ("reviewer", True), ("worker", False)}
