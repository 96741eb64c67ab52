"""One worker failing does not stop the others; bad input is refused before anything is written."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sevenfold.demo.policy import DemoPolicy
from sevenfold.runs import start_run
from sevenfold.settings import Settings
from sevenfold.sim.policies import ChatRequest, Reply, ToolCallSpec
from sevenfold.sim.runner import BackgroundSimulator

TASK = "Implement every stub module of the package so that the whole test suite passes."


class BadWorker:
    """The demo policy, except that one worker's model is useless every turn.

    `nonsense` calls a tool that does not exist (every call is refused); `aimless` makes valid calls that get
    nowhere, until its turn budget runs out.
    """

    def __init__(self, subtask: str, kind: str) -> None:
        self.inner = DemoPolicy()
        self.subtask = subtask
        self.kind = kind

    def reply(self, request: ChatRequest) -> Reply:
        first_user = next((request.text(m) for m in request.messages if m.get("role") == "user"), "")
        if request.role == "worker" and f"## Your subtask: {self.subtask}\n" in first_user:
            if self.kind == "nonsense":
                return Reply(content="%%%% ### ?? lorem", tool_calls=(ToolCallSpec("frobnicate", {"x": "y"}),))
            return Reply(content="Looking around.", tool_calls=(ToolCallSpec("list_files", {"pattern": "*.py"}),))
        return self.inner.reply(request)


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("nonsense", "failed", "gave up after 4 turns of tool calls that could not be used"),
        ("aimless", "budget_exhausted", "budget spent: 4 turns"),
    ],
)
async def test_one_failing_worker_does_not_stop_the_others(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    example_repo: Callable[[str], Path],
    tmp_path: Path,
    kind: str,
    status: str,
    error: str,
) -> None:
    sim = start_sim(policy=BadWorker("impl-roman", kind))
    settings = settings_for(sim, max_rounds=1, worker_max_steps=4, run_root=tmp_path / "runs")
    events: list[dict[str, Any]] = []
    result = await start_run(settings, TASK, example_repo("one-fails"), on_event=events.append)
    assert result.status == "failed" and result.report_path
    report = json.loads(Path(result.report_path).with_suffix(".json").read_text())
    by_subtask = {w["subtask_id"]: w for w in report["workers"]}
    assert by_subtask["impl-roman"]["status"] == status
    assert error in by_subtask["impl-roman"]["errors"][-1]
    assert all(w["status"] == "done" for name, w in by_subtask.items() if name != "impl-roman")
    assert report["review"]["merged"] == [name for name in by_subtask if name != "impl-roman"]
    assert "impl-roman" in report["rounds"][0]["failed_subtasks"]
    assert status in Path(result.report_path).read_text()
    # Progress reaches the caller from inside the worker subgraph: who started, what tools ran, how each ended.
    assert {e["subtask"] for e in events if e["event"] == "worker_started"} == set(by_subtask)
    finished = {e["subtask"]: e["status"] for e in events if e["event"] == "worker_finished"}
    assert finished == {name: w["status"] for name, w in by_subtask.items()}
    assert {e["tool"] for e in events if e["event"] == "tool"} >= {"view_file", "create_file", "run_tests"}


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("empty-task", "the task is empty"),
        ("zero-slots", "invalid setting endpoints.default.slots: Input should be greater than or equal to 1"),
        ("negative-slots", "invalid setting endpoints.default.slots: Input should be greater than or equal to 1"),
        ("no-test-runner", "test command 'no-such-runner -q': 'no-such-runner' is not on PATH"),
        ("broken-test-command", "test command 'python -m no_such_module' does not run here (exited 1: "),
        (
            "cannot-collect",
            "test command 'python -m pytest' cannot collect the tests at the base commit "
            "(exit 2: ModuleNotFoundError: No module named 'textkit_extras'); try --test-env NAME=VALUE",
        ),
        ("unreachable", "no model server at http://127.0.0.1:"),
        ("wrong-model", "does not serve 'no/such-model'"),
        ("not-a-repo", "not a git repository"),
        ("missing-repo", "repository path does not exist"),
        ("no-commits", "has no commits yet"),
        ("bare-repo", "is a bare repository"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    sevenfold_cli: Callable[..., list[str]],
    sim_process: Callable[..., tuple[subprocess.Popen[str], str]],
    example_repo: Callable[[str], Path],
    run_env: dict[str, str],
    free_port: Callable[[], int],
    tmp_path: Path,
    case: str,
    says: str,
) -> None:
    repo = example_repo("user")
    before = subprocess.run(["git", "for-each-ref"], cwd=repo, capture_output=True, text=True, check=True).stdout
    base_url = f"http://127.0.0.1:{free_port()}/v1" if case == "unreachable" else sim_process("--profile", "instant")[1]
    task, args = TASK, ["--repo", str(repo), "--base-url", base_url, "--quiet"]
    if case == "empty-task":
        task = "   "
    if case in ("zero-slots", "negative-slots"):
        args += ["--slots", "0" if case == "zero-slots" else "-3"]
    if case == "no-test-runner":
        run_env["SEVENFOLD_TOOLS__TEST_COMMAND"] = "no-such-runner -q"
    if case == "broken-test-command":
        run_env["SEVENFOLD_TOOLS__TEST_COMMAND"] = "python -m no_such_module"
    if case == "cannot-collect":  # committed: the tests are collected at the base commit, in the sandbox
        (repo / "tests" / "test_extras.py").write_text("import textkit_extras\n\ndef test_it():\n    pass\n")
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "x"], cwd=repo, check=True)
        before = subprocess.run(["git", "for-each-ref"], cwd=repo, capture_output=True, text=True, check=True).stdout
    if case == "wrong-model":
        args += ["--model", "no/such-model"]
    if case == "not-a-repo":
        (tmp_path / "plain").mkdir()
        args[1] = str(tmp_path / "plain")
    if case == "missing-repo":
        args[1] = str(tmp_path / "nowhere")
    if case in ("no-commits", "bare-repo"):
        target = tmp_path / case
        target.mkdir()
        subprocess.run(["git", "init", "-q", *(["--bare"] if case == "bare-repo" else [])], cwd=target, check=True)
        args[1] = str(target)
    result = subprocess.run(sevenfold_cli("run", task, *args), capture_output=True, text=True, timeout=60, env=run_env)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert not Path(run_env["SEVENFOLD_RUN_ROOT"]).exists() or not any(Path(run_env["SEVENFOLD_RUN_ROOT"]).iterdir())
    assert (
        subprocess.run(["git", "for-each-ref"], cwd=repo, capture_output=True, text=True, check=True).stdout == before
    )
    assert not (repo / ".git" / "worktrees").exists()  # the collection's temporary checkout is gone


@pytest.mark.parametrize(
    ("command", "run_id"),
    [
        ("run", "../../x"),
        ("run", "a/b"),
        ("run", ".."),
        ("run", "-x"),
        ("run", "x" * 65),
        ("resume", "../../x"),
        ("status", "../../x"),
    ],
)
def test_an_unsafe_run_id_is_one_line_exit_2_and_nothing_written(
    sevenfold_cli: Callable[..., list[str]],
    example_repo: Callable[[str], Path],
    run_env: dict[str, str],
    free_port: Callable[[], int],
    tmp_path: Path,
    command: str,
    run_id: str,
) -> None:
    repo = example_repo("user")
    before = subprocess.run(["git", "for-each-ref"], cwd=repo, capture_output=True, text=True, check=True).stdout
    listing = sorted(tmp_path.rglob("*"))
    args = {
        "run": ["run", TASK, "--repo", str(repo), f"--run-id={run_id}", "--quiet"],
        "resume": ["resume", run_id, "--quiet"],
        "status": ["status", run_id],
    }[command]
    run_env["SEVENFOLD_ENDPOINTS__DEFAULT__BASE_URL"] = f"http://127.0.0.1:{free_port()}/v1"  # never asked
    result = subprocess.run(sevenfold_cli(*args), capture_output=True, text=True, timeout=60, env=run_env)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"run id {run_id!r} is not a safe name" in lines[0], result.stderr
    assert sorted(tmp_path.rglob("*")) == listing  # no run directory, database, worktree
    assert not (tmp_path.parent / "x").exists()  # nor beside the run root
    assert (
        subprocess.run(["git", "for-each-ref"], cwd=repo, capture_output=True, text=True, check=True).stdout == before
    )
