"""SIGKILL a run at each stage and at seeded random moments; `sevenfold resume` must finish it with nothing lost.

Every case is checked the same way: the result branch's tree equals an uninterrupted run's, no worker whose
report was checkpointed asks the model again, no lock file or stale worktree is left in the repository, no
command the killed run started is still running, and the user's checkout is untouched.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sevenfold.demo.policy import DemoPolicy
from sevenfold.demo.run import make_example_repo
from sevenfold.nodes.worker import worker_key
from sevenfold.runs import resume_run, run_status
from sevenfold.settings import Settings, load_settings
from sevenfold.sim.runner import BackgroundSimulator, free_port, wait_until_serving

Leftovers = Callable[[Path], list[str]]
TASK = "Implement every stub module of the package so that the whole test suite passes."
CLI = [sys.executable, "-c", "from sevenfold.cli import main; main()"]


@dataclass
class Sim:
    base_url: str
    log: Path

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@dataclass
class Reference:
    tree: str
    events: int
    """How many progress events the uninterrupted run emitted (random kills are placed among them)."""


def _start_demo_sim(port: int, log: Path) -> subprocess.Popen[bytes]:
    """`sevenfold sim --policy demo` in its own process at twice the modelled H100 speed, logging requests."""
    args = ["sim", "--port", str(port), "--policy", "demo", "--max-num-seqs", "16", "--time-scale", "2"]
    process = subprocess.Popen([*CLI, *args, "--request-log", str(log)], stdout=subprocess.DEVNULL)
    wait_until_serving(port, process)
    return process


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """One `sevenfold sim --policy demo` for the module, at twice the modelled H100 speed, logging requests."""
    port = free_port()
    log = tmp_path_factory.mktemp("crash-sim") / "requests.jsonl"
    process = _start_demo_sim(port, log)
    try:
        yield Sim(f"http://127.0.0.1:{port}/v1", log)
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crash-runs")


def _env(runs: Path) -> dict[str, str]:
    import os

    return {**os.environ, "SEVENFOLD_RUN_ROOT": str(runs), "COLUMNS": "200"}


def _repo(runs: Path, name: str) -> Path:
    parent = runs.parent / f"repo-{name}"
    parent.mkdir()
    return make_example_repo(parent)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def _start(runs: Path, repo: Path, sim: Sim, run_id: str, sandbox: str = "auto") -> subprocess.Popen[str]:
    """`sevenfold run --events`: progress as JSON lines on stdout, which must be read (see `_events`)."""
    argv = [*CLI, "run", TASK, "--repo", str(repo), "--base-url", sim.base_url, "--run-id", run_id, "--events"]
    argv += ["--sandbox", sandbox]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(runs))


@pytest.fixture(scope="module")
def reference(runs: Path, sim: Sim) -> Reference:
    """An uninterrupted run: its result tree and how many events it emitted."""
    repo = _repo(runs, "reference")
    process = _start(runs, repo, sim, "reference")
    events = _events(process)
    count = sum(1 for _ in events)
    assert process.wait(timeout=600) == 0
    return Reference(_git(repo, "rev-parse", "sevenfold/reference/result^{tree}"), count)


def _events(process: subprocess.Popen[str]) -> Iterator[dict[str, Any]]:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{"):
            yield json.loads(line)


def _checkpointed_workers(runs: Path, run_id: str) -> set[str]:
    """The workers whose report is in the run's checkpoint (by worker key: subtask, round, attempt)."""
    try:
        reports = asyncio.run(run_status(load_settings(run_root=runs), run_id))["reports"]
    except Exception:  # the run has not written its first checkpoint yet
        return set()
    return {worker_key(r["subtask_id"], r["round"], r["attempt"]) for r in reports}


def _kill_at_event(runs: Path, process: subprocess.Popen[str], event: str, delay_s: float, run_id: str) -> None:
    """SIGKILL the run `delay_s` after it first emits `event` (for "worker_finished": once a report is checkpointed)."""
    for seen in _events(process):
        if seen["event"] != event:
            continue
        if event == "worker_finished":
            deadline = time.monotonic() + 30
            while not _checkpointed_workers(runs, run_id) and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(delay_s)
        break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def _kill_after(process: subprocess.Popen[str], count: int, seconds: float) -> None:
    """SIGKILL the run `seconds` after its `count`-th event (so where it dies does not depend on the machine's
    speed, only on the run's own progress); its output is drained meanwhile."""
    events = _events(process)
    for _ in range(count):
        next(events)
    threading.Thread(target=lambda: [None for _ in events], daemon=True).start()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


def _crash_and_resume(
    runs: Path, sim: Sim, reference: Reference, run_id: str, kill: Callable[..., None], leftovers: Leftovers
) -> None:
    repo = _repo(runs, run_id)
    user_head = _git(repo, "rev-parse", "HEAD")
    process = _start(runs, repo, sim, run_id)
    kill(process)
    assert process.returncode == -signal.SIGKILL, f"the run ended by itself ({process.returncode}) before the kill"
    checkpointed = _checkpointed_workers(runs, run_id)
    before_resume = len(sim.records())

    resumed = subprocess.run(
        [*CLI, "resume", run_id, "--quiet"], capture_output=True, text=True, env=_env(runs), timeout=600
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    asked_again = {
        r["hints"].get("subtask") for r in sim.records()[before_resume:] if r["hints"].get("role") == "worker"
    }
    assert not (checkpointed & asked_again), f"checkpointed workers asked the model again: {checkpointed & asked_again}"
    assert _git(repo, "rev-parse", f"sevenfold/{run_id}/result^{{tree}}") == reference.tree
    # Nothing left behind: no lock files, no worktree git still tracks, no process of the killed run.
    assert sorted(str(p) for p in (repo / ".git").rglob("*.lock")) == []
    assert len(_git(repo, "worktree", "list").splitlines()) == 1
    assert _git(repo, "worktree", "prune", "--dry-run", "--verbose") == ""
    assert leftovers(runs / run_id) == []
    # The user's checkout is as it was.
    assert _git(repo, "rev-parse", "HEAD") == user_head
    assert _git(repo, "branch", "--show-current") == "main" and _git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("stage", "event", "delay_s"),
    [
        ("planning", "planning", 0.5),  # the planner's model request is in flight
        ("fan-out", "worker_finished", 0.0),  # some workers' reports are checkpointed, others are mid-turn
        ("merging", "merging", 0.0),  # the reviewer is merging branches with git
        ("reviewing", "merged", 0.05),  # the reviewer's model request is in flight
        ("verification", "tests_started", 0.3),  # the project's tests are running
    ],
)
def test_a_run_killed_at_each_stage_resumes_to_the_same_result(
    runs: Path, sim: Sim, reference: Reference, leftovers: Leftovers, stage: str, event: str, delay_s: float
) -> None:
    run_id = f"kill-{stage}"
    _crash_and_resume(
        runs, sim, reference, run_id, lambda p: _kill_at_event(runs, p, event, delay_s, run_id), leftovers
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_run_killed_at_a_random_moment_resumes_to_the_same_result(
    runs: Path, sim: Sim, reference: Reference, leftovers: Leftovers, seed: int
) -> None:
    draw = random.Random(seed)
    # Somewhere in the first 85% of the run's events, then up to half a second more: the run is still going.
    count, delay = draw.randint(1, int(0.85 * reference.events)), draw.uniform(0.0, 0.5)
    _crash_and_resume(runs, sim, reference, f"kill-random-{seed}", lambda p: _kill_after(p, count, delay), leftovers)


def test_a_server_going_down_mid_run_stops_it_cleanly_and_it_resumes_when_back(
    runs: Path, reference: Reference, leftovers: Leftovers, tmp_path: Path
) -> None:
    port = free_port()
    sim = Sim(f"http://127.0.0.1:{port}/v1", tmp_path / "requests.jsonl")
    server = _start_demo_sim(port, sim.log)
    try:
        repo = _repo(runs, "server-down")
        process = _start(runs, repo, sim, "server-down")
        for seen in _events(process):
            if seen["event"] == "worker_finished":
                break
        deadline = time.monotonic() + 30
        while not _checkpointed_workers(runs, "server-down") and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()  # the server dies with worker requests in flight
        server.wait(timeout=10)
        stopped = time.monotonic()
        remaining = [json.loads(line) for line in process.stdout or []]  # with --events, every line is JSON
        # Retries with backoff (0.5 s doubling, 3 retries, jittered) and then a clean stop: no traceback.
        assert process.wait(timeout=60) == 1
        assert time.monotonic() - stopped < 20
        ended = remaining[-1]
        assert (ended["event"], ended["run_id"], ended["status"]) == ("run_finished", "server-down", "incomplete")
        assert ended["stopped_by"].startswith("the model server stopped accepting")
        checkpointed = _checkpointed_workers(runs, "server-down")
        assert checkpointed

        # Resuming while the server is still down is refused with one line, and changes nothing.
        refused = subprocess.run(
            [*CLI, "resume", "server-down", "--quiet"], capture_output=True, text=True, env=_env(runs), timeout=60
        )
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "no model server at" in refused.stderr

        server = _start_demo_sim(port, sim.log)  # back, on the same address
        before = len(sim.records())
        resumed = subprocess.run(
            [*CLI, "resume", "server-down", "--quiet"], capture_output=True, text=True, env=_env(runs), timeout=600
        )
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        asked_again = {r["hints"].get("subtask") for r in sim.records()[before:] if r["hints"].get("role") == "worker"}
        assert not (checkpointed & asked_again)
        assert _git(repo, "rev-parse", "sevenfold/server-down/result^{tree}") == reference.tree
        assert leftovers(runs / "server-down") == []
    finally:
        server.kill()
        server.wait(timeout=10)


MID_STEP_POLICY = '''
from sevenfold.sim.policies import Reply, ToolCallSpec


class MidStep:
    """One worker: in one turn it edits app.py and runs a slow command; then it reports what its tools said."""

    def reply(self, request):
        if request.role == "planner":
            plan = {"summary": "One edit.", "subtasks": [{"id": "edit", "goal": "Set VALUE to 2 in app.py."}]}
            return Reply(content="One subtask.", tool_calls=(ToolCallSpec("submit_plan", plan),))
        if request.role == "worker":
            results = [request.text(m) for m in request.messages if m.get("role") == "tool"]
            if not results:
                return Reply(tool_calls=(
                    ToolCallSpec("str_replace", {"path": "app.py", "old": "VALUE = 1", "new": "VALUE = 2"}),
                    ToolCallSpec("run_command", {"command": "sleep 30; echo slept"}),
                ))
            return Reply(content="Tools said: " + " || ".join(r[:100] for r in results))
        return Reply(content="Looks right.")


def factory():
    return MidStep()
'''


@pytest.mark.parametrize("sandbox", ["auto", "none"])
def test_a_step_cut_short_is_undone_before_it_runs_again(
    sandbox: str, runs: Path, tmp_path: Path, make_repo: Callable[..., Path], leftovers: Leftovers
) -> None:
    """Killed while a turn's tools run: the edit it already made is undone, its command killed, and the turn redone.

    Sandboxed, the command dies with the run (bwrap's --die-with-parent; the landlock launcher's parent-death
    signal); unconfined, it keeps running and the resumed run kills it.
    """
    (tmp_path / "mid_step_policy.py").write_text(MID_STEP_POLICY)
    repo = make_repo(
        {
            "app.py": "VALUE = 1\n",
            "tests/test_app.py": "from app import VALUE\n\n\ndef test_value():\n    assert VALUE == 2\n",
        },
    )
    port = free_port()
    env = {**_env(runs), "PYTHONPATH": str(tmp_path)}
    args = ["sim", "--port", str(port), "--policy", "mid_step_policy:factory", "--profile", "instant"]
    server = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, env=env)
    try:
        wait_until_serving(port, server)
        sim = Sim(f"http://127.0.0.1:{port}/v1", tmp_path / "unused.jsonl")
        run_id = f"mid-step-{sandbox}"
        process = _start(runs, repo, sim, run_id, sandbox)
        for seen in _events(process):
            if seen["event"] == "tool" and seen["tool"] == "run_command":
                time.sleep(1.0)  # str_replace has written app.py; the command sleeps
                break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        worktree = runs / run_id / "worktrees" / "edit"
        assert (worktree / "app.py").read_text() == "VALUE = 2\n"  # ahead of the checkpoint
        if sandbox == "none":
            assert leftovers(runs / run_id)  # the killed run's command is still sleeping
        else:
            deadline = time.monotonic() + 30
            while leftovers(runs / run_id) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert leftovers(runs / run_id) == []  # it died with the run

        resumed = subprocess.run(
            [*CLI, "resume", run_id, "--events"], capture_output=True, text=True, env=env, timeout=300
        )
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        events = [json.loads(line) for line in resumed.stdout.splitlines() if line.startswith("{")]
        kinds = [e["event"] for e in events]
        assert kinds.count("leftovers_killed") == (1 if sandbox == "none" else 0)
        assert kinds.count("worktree_restored") == 1
        report = json.loads((runs / run_id / "report.json").read_text())
        summary = report["workers"][0]["summary"]
        # The edit ran again on the restored file and succeeded; so did the command.
        assert "Error" not in summary and "slept" in summary, summary
        assert _git(repo, "show", f"sevenfold/{run_id}/result:app.py") == "VALUE = 2"
        assert leftovers(runs / run_id) == []
    finally:
        server.kill()
        server.wait(timeout=10)


def test_a_run_being_driven_cannot_be_resumed_by_a_second_process(runs: Path, sim: Sim) -> None:
    repo = _repo(runs, "driven")
    process = _start(runs, repo, sim, "driven")
    events = _events(process)
    next(e for e in events if e["event"] == "worker_started")  # the run is in its fan-out, commands may run
    second = subprocess.run(
        [*CLI, "resume", "driven", "--quiet"], capture_output=True, text=True, env=_env(runs), timeout=120
    )
    assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert "run driven is being driven by another process" in second.stderr
    for _ in events:
        pass
    assert process.wait(timeout=600) == 0  # the first one was not disturbed


async def test_a_run_killed_before_its_first_step_was_written_starts_again_on_resume(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    example_repo: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    settings = settings_for(start_sim(policy=DemoPolicy()), run_root=tmp_path / "runs")
    repo = example_repo("early")
    # What `start_run` leaves when killed between writing the run's record and its first checkpoint.
    (settings.run_root / "early").mkdir(parents=True)
    record = {"run_id": "early", "task": TASK, "repo": str(repo), "created": time.time(), "settings": {}}
    (settings.run_root / "early" / "run.json").write_text(json.dumps(record))
    result = await resume_run(settings, "early")
    assert result.status == "passed" and result.result_branch == "sevenfold/early/result"
