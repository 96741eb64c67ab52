"""Plan approval from the CLI: the run pauses after planning, a bad edit is refused, approval and rejection work."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.gitutil import git

TASK = "Implement every stub module of the package so that the whole test suite passes."


def test_a_run_waits_for_its_plan_and_goes_on_as_answered(
    sevenfold_cli: Callable[..., list[str]],
    sim_process: Callable[..., tuple[subprocess.Popen[str], str]],
    example_repo: Callable[[str], Path],
    run_env: dict[str, str],
    tmp_path: Path,
) -> None:
    _, base_url = sim_process("--profile", "instant", "--policy", "demo")
    repo = example_repo("approve")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(sevenfold_cli(*args), capture_output=True, text=True, timeout=120, env=run_env)

    first = cli("run", TASK, "--repo", str(repo), "--base-url", base_url, "--run-id", "r1", "--approve-plan", "--quiet")
    assert first.returncode == 3, first.stdout + first.stderr
    assert "round 1 plan, waiting for approval" in first.stdout and "impl-roman" in first.stdout
    assert "sevenfold/r1/impl-" not in git(repo, "branch", "--list")  # no worker has started

    saved = Path(run_env["SEVENFOLD_RUN_ROOT"]) / "r1" / "plan-round-1.json"
    plan = json.loads(saved.read_text())["plan"]
    cyclic = {**plan, "subtasks": [{**s, "depends_on": [s["id"]]} for s in plan["subtasks"]]}
    bad = tmp_path / "cyclic.json"
    bad.write_text(json.dumps({"plan": cyclic}))
    refused = cli("resume", "r1", "--plan", str(bad), "--quiet")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "not run: the edited plan cannot run" in refused.stdout
    assert "sevenfold/r1/impl-" not in git(repo, "branch", "--list")

    edited = {**plan, "subtasks": plan["subtasks"][:2]}  # only two of the seven modules
    good = tmp_path / "two.json"
    good.write_text(json.dumps(edited))
    second = cli("resume", "r1", "--plan", str(good), "--quiet")
    assert second.returncode == 3, second.stdout + second.stderr  # round 2's plan waits too
    assert "round 2 plan, waiting for approval" in second.stdout

    last = cli("resume", "r1", "--reject", "--quiet")
    assert last.returncode == 1 and "run r1: rejected" in last.stdout, last.stdout + last.stderr
    report = json.loads((Path(run_env["SEVENFOLD_RUN_ROOT"]) / "r1" / "report.json").read_text())
    assert report["status"] == "rejected"
    assert [w["subtask_id"] for w in report["workers"]] == [s["id"] for s in edited["subtasks"]]
    assert git(repo, "rev-parse", "--verify", "sevenfold/r1/result")
    assert git(repo, "status", "--porcelain") == ""


def test_approval_answers_need_a_paused_run_and_one_choice(
    sevenfold_cli: Callable[..., list[str]], run_env: dict[str, str]
) -> None:
    both = subprocess.run(
        sevenfold_cli("resume", "nope", "--approve", "--reject"), capture_output=True, text=True, env=run_env
    )
    assert both.returncode == 2 and both.stderr.strip() == "error: give one of --approve, --reject and --plan"
