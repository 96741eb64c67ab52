"""A real project works the first time: its layout and variables through the CLI, a long task from standard input
or a file, `--events` that scripts can read line by line, and `sevenfold status` that says how each run ended."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sevenfold.sim.policies import ChatRequest, Reply, ToolCallSpec
from sevenfold.sim.runner import BackgroundSimulator

END_OF_TASK = "(end of the task: 7f3a)"
SRC_PROJECT = {
    "src/mylib/__init__.py": "def greet(name):\n    return f'hello {name}'\n",
    "tests/test_greet.py": "import os\nfrom mylib import greet\n\n\ndef test_greet():\n    assert greet('x') == 'hello x'\n\n\n"
    "def test_mode():\n    assert os.environ['MYLIB_MODE'] == 'strict'\n",
    "pyproject.toml": '[project]\nname = "mylib"\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\naddopts = "-ra"\n',
    "tox.ini": "[tox]\nenvlist = py311\n\n[testenv]\nsetenv =\n    MYLIB_MODE = strict\ncommands = pytest\n",
}


class LookAround:
    """One subtask whose worker changes nothing; keeps what the planner and the workers were told."""

    def __init__(self) -> None:
        self.planner_prompts: list[str] = []
        self.worker_systems: list[str] = []

    def reply(self, request: ChatRequest) -> Reply:
        if request.role == "planner":
            self.planner_prompts.append("\n".join(request.text(m) for m in request.messages))
            plan = {"summary": "Look around.", "subtasks": [{"id": "probe", "goal": "Look around the project."}]}
            return Reply(content="One subtask.", tool_calls=(ToolCallSpec("submit_plan", plan),))
        if request.role == "worker":
            self.worker_systems.append(request.system)
            return Reply(content="Looked around; nothing to change.")
        return Reply(content="Nothing to review.")


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]  # every line: a script reads them all as JSON


def test_a_src_layout_project_with_a_test_variable_runs_a_1_mb_task_from_standard_input(
    start_sim: Callable[..., BackgroundSimulator],
    make_repo: Callable[..., Path],
    sevenfold_cli: Callable[..., list[str]],
    run_env: dict[str, str],
) -> None:
    policy = LookAround()
    sim = start_sim(policy=policy)
    repo = make_repo(SRC_PROJECT, name="mylib")
    line = "Make the greeting friendlier and keep every existing behaviour of the library exactly as it is now.\n"
    task = line * (1_000_000 // len(line)) + END_OF_TASK  # 1 MB: over what one argument may carry on some systems
    argv = ["run", "-", "--repo", str(repo), "--base-url", sim.base_url, "--run-id", "mylib", "--events"]
    result = subprocess.run(
        sevenfold_cli(*argv, "--test-env", "MYLIB_MODE=strict"),
        input=task, capture_output=True, text=True, env=run_env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    events = _events(result.stdout)
    # First where the commands run, then how the tests run: src/ was found and chosen, the variable is named.
    assert [e["event"] for e in events[:2]] == ["sandbox", "test_setup"]
    setup = events[1]
    assert setup["command"] == "PYTHONPATH=src python -m pytest" and setup["chosen"] == "src layout"
    assert setup["env"] == ["MYLIB_MODE"] and setup["collected"] == 2 and setup["notes"] == []
    assert "strict" not in json.dumps(setup)  # names, never values
    assert events[-1] | {"report": None} == {
        "event": "run_finished", "run_id": "mylib", "status": "passed", "result_branch": "sevenfold/mylib/result",
        "report": None, "stopped_by": None,
    }  # fmt: skip
    assert "run mylib: passed" in result.stderr and "result branch: sevenfold/mylib/result" in result.stderr

    run_dir = Path(run_env["SEVENFOLD_RUN_ROOT"]) / "mylib"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["task"] == task and record["settings"]["tools"]["test_command"] == "PYTHONPATH=src python -m pytest"
    assert policy.planner_prompts and END_OF_TASK in policy.planner_prompts[0]
    report = (run_dir / "report.md").read_text()
    assert "Test command: `PYTHONPATH=src python -m pytest` with MYLIB_MODE set" in report
    assert "Tests: 2 passed, 0 failed, 0 errors, 0 skipped" in report and "(1,000," in report  # task shortened
    assert "### Round 1\n\nPlan: Look around.\n- `probe`: Look around the project." in report
    assert "Review notes:\n\n> Nothing to review." in report


def test_status_lists_runs_newest_first_with_how_each_ended_and_builds_no_model_client(
    start_sim: Callable[..., BackgroundSimulator],
    make_repo: Callable[..., Path],
    sevenfold_cli: Callable[..., list[str]],
    run_env: dict[str, str],
    tmp_path: Path,
) -> None:
    sim = start_sim(policy=LookAround())
    repo = make_repo({"tests/test_ok.py": "def test_ok():\n    pass\n"}, name="small")
    task_file = tmp_path / "task.md"
    task_file.write_text("Add a docstring to every test.\n\nKeep them short.\n")
    argv = ["run", "--task-file", str(task_file), "--repo", str(repo), "--base-url", sim.base_url]
    paused = subprocess.run(
        sevenfold_cli(*argv, "--run-id", "paused", "--approve-plan", "--events"),
        capture_output=True, text=True, env=run_env, timeout=300,
    )  # fmt: skip
    assert paused.returncode == 3, paused.stdout[-2000:] + paused.stderr[-2000:]
    assert _events(paused.stdout)[-1]["status"] == "awaiting_approval"
    assert "sevenfold resume paused --approve" in paused.stderr  # the plan and what to do next: for people

    runs = Path(run_env["SEVENFOLD_RUN_ROOT"])
    now = time.time()
    for run_id, created, status in (("aa-newest", now + 60, "passed"), ("zz-oldest", now - 600, "failed")):
        (runs / run_id).mkdir()
        record = {"run_id": run_id, "task": "A task\nover two lines", "repo": str(repo), "created": created}
        (runs / run_id / "run.json").write_text(json.dumps(record))
        (runs / run_id / "report.json").write_text(json.dumps({"status": status}))
    (runs / "mm-stopped").mkdir()  # started, then killed before its first checkpoint
    record = {"run_id": "mm-stopped", "task": "Another task", "repo": str(repo), "created": now - 60}
    (runs / "mm-stopped" / "run.json").write_text(json.dumps(record))

    shown = (
        "import sys\nfrom sevenfold.cli import app\napp(sys.argv[1:], standalone_mode=False)\n"
        "print(sorted(m for m in ('langchain_openai', 'openai', 'sevenfold.graphs.coding') if m in sys.modules))\n"
    )
    listing = subprocess.run(
        [sevenfold_cli()[0], "-c", shown, "status"], capture_output=True, text=True, env=run_env, timeout=60
    )
    assert listing.returncode == 0 and listing.stderr == "", listing.stderr  # no "asks for thinking" warnings
    lines = listing.stdout.splitlines()
    assert lines[-1] == "[]"  # neither a model client nor the graph was imported, let alone built
    assert [line.split()[:2] for line in lines[:-1]] == [
        ["aa-newest", "passed"], ["paused", "awaiting"], ["mm-stopped", "incomplete"], ["zz-oldest", "failed"]
    ]  # fmt: skip
    assert "A task over two lines" in lines[0] and "Add a docstring to every test. Keep them short." in lines[1]

    one = subprocess.run(sevenfold_cli("status", "paused"), capture_output=True, text=True, env=run_env, timeout=60)
    assert one.returncode == 0 and one.stderr == "", one.stderr
    assert one.stdout.splitlines()[0] == "run paused: awaiting approval (round 1, next: approval)"
    record = json.loads((runs / "paused" / "run.json").read_text())
    assert record["task"] == task_file.read_text()
