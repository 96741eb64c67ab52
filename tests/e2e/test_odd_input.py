"""Odd but legal input runs and loses nothing: detached HEAD, a dirty checkout, tests that hang, secrets around."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sevenfold.demo.policy import DemoPolicy
from sevenfold.runs import start_run
from sevenfold.settings import Settings, load_settings
from sevenfold.sim.policies import ChatRequest, Reply, ToolCallSpec
from sevenfold.sim.runner import BackgroundSimulator
from sevenfold.tools.shell import MARKER
from tests.gitutil import git

TASK = "Implement every stub module of the package so that the whole test suite passes."


class OneProbe:
    """One subtask, whose worker runs `command` (if any) once and stops; the reviewer says one line."""

    def __init__(self, command: str | None = None) -> None:
        self.command = command

    def reply(self, request: ChatRequest) -> Reply:
        if request.role == "planner":
            plan = {"summary": "Look around.", "subtasks": [{"id": "probe", "goal": "Look around the project."}]}
            return Reply(content="One subtask.", tool_calls=(ToolCallSpec("submit_plan", plan),))
        if request.role == "worker":
            if self.command and not any(m.get("role") == "tool" for m in request.messages):
                return Reply(tool_calls=(ToolCallSpec("run_command", {"command": self.command}),))
            return Reply(content="Looked around; nothing to change.")
        return Reply(content="Nothing to review.")


async def test_a_detached_head_is_worked_from_and_left_detached(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    example_repo: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    repo = example_repo("detached")
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "--quiet", "--detach")
    settings = settings_for(start_sim(policy=DemoPolicy()), run_root=tmp_path / "runs")
    result = await start_run(settings, TASK, repo)
    assert result.status == "passed" and result.result_branch
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "branch", "--show-current") == ""
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "merge-base", result.result_branch, head) == head  # the result builds on the detached commit


async def test_a_dirty_checkout_is_reported_and_left_exactly_as_it_was(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    example_repo: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    repo = example_repo("dirty")
    tracked = next(p for p in sorted((repo / "textkit").glob("*.py")) if p.name != "__init__.py")
    tracked.write_text(tracked.read_text() + "\n# my unsaved note\n")
    (repo / "scratch.txt").write_text("work in progress\n")
    git(repo, "add", "scratch.txt")  # staged, not committed
    (repo / "untracked.md").write_text("draft\n")
    before = {p: p.read_bytes() for p in (tracked, repo / "scratch.txt", repo / "untracked.md")}
    status_before = git(repo, "status", "--porcelain")
    events: list[dict[str, Any]] = []
    settings = settings_for(start_sim(policy=DemoPolicy()), run_root=tmp_path / "runs")
    result = await start_run(settings, TASK, repo, on_event=events.append)
    assert result.status == "passed" and result.result_branch
    assert {p: p.read_bytes() for p in before} == before and git(repo, "status", "--porcelain") == status_before
    dirty = next(e for e in events if e["event"] == "dirty_checkout")
    assert set(dirty["paths"]) >= {str(tracked.relative_to(repo)), "scratch.txt", "untracked.md"}
    # The run started from the last commit: none of the uncommitted work is in the result.
    in_result = git(repo, "ls-tree", "-r", "--name-only", result.result_branch).splitlines()
    assert "scratch.txt" not in in_result and "untracked.md" not in in_result
    assert "my unsaved note" not in git(repo, "show", f"{result.result_branch}:{tracked.relative_to(repo)}")


async def test_tests_that_hang_are_killed_at_the_timeout_and_reported(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    make_repo: Callable[..., Path],
    leftovers: Callable[[Path], list[str]],
    tmp_path: Path,
) -> None:
    hang = (
        "import subprocess, time\n\ndef test_hang():\n"
        "    subprocess.Popen(['sleep', '600'])  # a child that would outlive a careless kill\n"
        "    time.sleep(600)\n"
    )
    repo = make_repo({"tests/test_hang.py": hang}, name="hangs")
    settings = settings_for(
        start_sim(policy=OneProbe()), run_root=tmp_path / "runs", max_rounds=1, tools={"test_timeout": 3}
    )
    result = await start_run(settings, "Make the tests pass.", repo)
    assert result.status == "failed" and result.report_path
    report = json.loads(Path(result.report_path).with_suffix(".json").read_text())
    assert "timed out" in report["rounds"][0]["tests_summary"]
    assert leftovers(result.run_dir) == []  # pytest and its `sleep` child died with the process group


CANARIES = ("canary-env-5f1d2c", "canary-key-9a7e33", "canary-openai-71bb04")


async def test_secrets_never_reach_a_command_a_log_a_report_or_a_checkpoint(
    start_sim: Callable[..., BackgroundSimulator],
    example_repo: Callable[[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("DEPLOY_TOKEN", CANARIES[0])
    monkeypatch.setenv("OPENAI_API_KEY", CANARIES[2])
    sim = start_sim(policy=OneProbe("env; tr '\\0' '\\n' < /proc/self/environ"))
    endpoint = {"base_url": sim.base_url, "model": sim.model, "api_key": CANARIES[1]}
    settings = load_settings(endpoints={"default": endpoint}, run_root=tmp_path / "runs", max_rounds=1)
    events: list[dict[str, Any]] = []
    result = await start_run(settings, "Look around.", example_repo("secrets"), on_event=events.append)
    assert result.report_path
    stored = b"".join(p.read_bytes() for p in sorted(result.run_dir.rglob("*")) if p.is_file())
    # The command ran and its output (the environment it saw) is in the checkpointed transcript...
    assert f"{MARKER}=".encode() in stored and b"PATH=" in stored
    # ...and no secret is in it, nor in the run's files, the events or the log.
    seen = stored + json.dumps(events, default=str).encode() + caplog.text.encode()
    assert [c for c in CANARIES if c.encode() in seen] == []
