"""SIGKILL a run at each stage and at seeded random events; `sevenfold resume` must finish it with nothing lost.

The kills at each stage and the second driver run on both checkpoint stores: SQLite (a file per run) and a shared
PostgreSQL database (`--checkpoint-url`, here through `SEVENFOLD_CHECKPOINT_URL`); random kills run three seeds on
SQLite and one on PostgreSQL (the stage kills already cover every stage there).

Every kill is driven by an event of the run's own `--events` stream, never by a delay, and each case asserts the
stage the run was in when it died (from every event it emitted, read to the end after the kill). Every case is then
checked the same way: the result branch's tree equals an uninterrupted run's, no worker whose
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
from tests.gitutil import git
from tests.waiting import wait_until

Leftovers = Callable[[Path], list[str]]
TASK = "Implement every stub module of the package so that the whole test suite passes."
CLI = [sys.executable, "-c", "from sevenfold.cli import main; main()"]


@dataclass
class DemoSim:
    """`sevenfold sim --policy demo` in its own process (not the root `sim` fixture's in-process simulator)."""

    base_url: str
    log: Path

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@dataclass
class Reference:
    tree: str
    kinds: list[str]
    """The uninterrupted run's progress events, by kind, heartbeats left out (random kills are placed among them)."""


STAGE_STARTS = {
    "planning": "planning",
    "plan_ready": "fan-out",
    "merging": "merging",
    "merged": "reviewing",
    "tests_started": "verification",
}
"""The events at which a run enters a stage. Each stage lasts at least a model request, a git merge or a test run,
so the run cannot be past the next one when a kill sent on reading the first arrives."""


def stage_of(kinds: list[str]) -> str:
    """The stage a run is in after emitting these events: "planning", "fan-out", ... ("starting" before any)."""
    stages = [STAGE_STARTS[kind] for kind in kinds if kind in STAGE_STARTS]
    return stages[-1] if stages else "starting"


def _start_demo_sim(port: int, log: Path) -> subprocess.Popen[bytes]:
    """`sevenfold sim --policy demo` in its own process at twice the modelled H100 speed, logging requests."""
    args = ["sim", "--port", str(port), "--policy", "demo", "--max-num-seqs", "16", "--time-scale", "2"]
    process = subprocess.Popen([*CLI, *args, "--request-log", str(log)], stdout=subprocess.DEVNULL)
    wait_until_serving(port, process)
    return process


@pytest.fixture(scope="module")
def demo_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSim]:
    """One `sevenfold sim --policy demo` for the module, at twice the modelled H100 speed, logging requests."""
    port = free_port()
    log = tmp_path_factory.mktemp("crash-sim") / "requests.jsonl"
    process = _start_demo_sim(port, log)
    try:
        yield DemoSim(f"http://127.0.0.1:{port}/v1", log)
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crash-runs")


@dataclass(frozen=True)
class Store:
    """Where a test's runs keep their checkpoints and records: a run root and a PostgreSQL URL (None: SQLite)."""

    root: Path
    url: str | None = None

    def env(self) -> dict[str, str]:
        return _env(self.root, self.url)


@pytest.fixture(scope="module")
def store(request: pytest.FixtureRequest, runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The checkpoint store of a test parametrized with `store` ("sqlite" unless it says "postgres")."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield Store(runs)
        return
    server = request.getfixturevalue("postgres_server")
    with server.fresh_database() as url:
        yield Store(tmp_path_factory.mktemp("crash-postgres") / "runs", url)  # its repositories beside it


def _env(runs: Path, checkpoint_url: str | None = None) -> dict[str, str]:
    import os

    env = {**os.environ, "SEVENFOLD_RUN_ROOT": str(runs), "COLUMNS": "200"}
    if checkpoint_url is not None:
        env["SEVENFOLD_CHECKPOINT_URL"] = checkpoint_url
    return env


def _repo(runs: Path, name: str) -> Path:
    parent = runs.parent / f"repo-{name}"
    parent.mkdir()
    return make_example_repo(parent)


def _start(store: Store, repo: Path, sim: DemoSim, run_id: str, sandbox: str = "auto") -> subprocess.Popen[str]:
    """`sevenfold run --events`: progress as JSON lines on stdout, which must be read (see `_events`)."""
    argv = [*CLI, "run", TASK, "--repo", str(repo), "--base-url", sim.base_url, "--run-id", run_id, "--events"]
    argv += ["--sandbox", sandbox]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=store.env())


@pytest.fixture(scope="module")
def reference(runs: Path, demo_sim: DemoSim) -> Reference:
    """An uninterrupted run: its result tree and the events it emitted."""
    repo = _repo(runs, "reference")
    process = _start(Store(runs), repo, demo_sim, "reference")
    kinds = list(_kinds(_events(process)))
    assert process.wait(timeout=600) == 0
    return Reference(git(repo, "rev-parse", "sevenfold/reference/result^{tree}"), kinds)


def _events(process: subprocess.Popen[str]) -> Iterator[dict[str, Any]]:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{"):
            yield json.loads(line)


def _kinds(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    """The events' kinds as they come, heartbeats left out (how many a run emits depends on the machine's speed)."""
    return (e["event"] for e in events if e["event"] != "heartbeat")


def _checkpointed_workers(store: Store, run_id: str) -> set[str]:
    """The workers whose report is in the run's checkpoint (by worker key: subtask, round, attempt)."""
    settings = load_settings(run_root=store.root, checkpoint_url=store.url)
    try:
        reports = asyncio.run(run_status(settings, run_id))["reports"]
    except Exception:  # the run has not written its first checkpoint yet
        return set()
    return {worker_key(r["subtask_id"], r["round"], r["attempt"]) for r in reports}


def _kill(process: subprocess.Popen[str], seen: list[str]) -> str:
    """SIGKILL the run now; the stage it died in, from `seen` and every event it emitted before it died."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return stage_of(seen + list(_kinds(_events(process))))


def _kill_at_event(process: subprocess.Popen[str], event: str, occurrence: int = 1) -> str:
    """SIGKILL the run as it emits `event` for the `occurrence`-th time; the stage it died in."""
    seen: list[str] = []
    for kind in _kinds(_events(process)):
        seen.append(kind)
        if seen.count(event) == occurrence:
            break
    return _kill(process, seen)


def _kill_at_count(process: subprocess.Popen[str], count: int) -> str:
    """SIGKILL the run as it emits its `count`-th event, heartbeats left out; the stage it died in."""
    seen: list[str] = []
    for kind in _kinds(_events(process)):
        seen.append(kind)
        if len(seen) == count:
            break
    return _kill(process, seen)


def _crash_and_resume(
    store: Store,
    sim: DemoSim,
    reference: Reference,
    run_id: str,
    kill: Callable[[subprocess.Popen[str]], str],
    stage: str,
    leftovers: Leftovers,
) -> None:
    """Start a run, `kill` it (which returns the stage it died in, expected: `stage`), resume it, check the result."""
    repo = _repo(store.root, run_id)
    user_head = git(repo, "rev-parse", "HEAD")
    process = _start(store, repo, sim, run_id)
    died_in = kill(process)
    assert process.returncode == -signal.SIGKILL, f"the run ended by itself ({process.returncode}) before the kill"
    assert died_in == stage, f"meant to kill the run in {stage}, but it died in {died_in}"
    checkpointed = _checkpointed_workers(store, run_id)
    before_resume = len(sim.records())

    resumed = subprocess.run(
        [*CLI, "resume", run_id, "--quiet"], capture_output=True, text=True, env=store.env(), timeout=600
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    asked_again = {
        r["hints"].get("subtask") for r in sim.records()[before_resume:] if r["hints"].get("role") == "worker"
    }
    assert not (checkpointed & asked_again), f"checkpointed workers asked the model again: {checkpointed & asked_again}"
    assert git(repo, "rev-parse", f"sevenfold/{run_id}/result^{{tree}}") == reference.tree
    # Nothing left behind: no lock files, no worktree git still tracks, no process of the killed run.
    assert sorted(str(p) for p in (repo / ".git").rglob("*.lock")) == []
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    assert git(repo, "worktree", "prune", "--dry-run", "--verbose") == ""
    assert leftovers(store.root / run_id) == []
    # The user's checkout is as it was.
    assert git(repo, "rev-parse", "HEAD") == user_head
    assert git(repo, "branch", "--show-current") == "main" and git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize(
    ("stage", "event"),
    [
        ("planning", "planning"),  # the planner is asking the model for a plan
        ("fan-out", "worker_finished"),  # all workers but one have reported, the last is mid-turn
        ("merging", "merging"),  # the reviewer is merging branches with git
        ("reviewing", "merged"),  # the reviewer is asking the model for a review
        ("verification", "tests_started"),  # the project's tests are starting
    ],
)
def test_a_run_killed_at_each_stage_resumes_to_the_same_result(
    store: Store, demo_sim: DemoSim, reference: Reference, leftovers: Leftovers, stage: str, event: str
) -> None:
    run_id = f"kill-{stage}"
    occurrence = 1
    if event == "worker_finished":  # all of round 1's workers but one have finished: the last is mid-turn
        occurrence = max(1, reference.kinds[: reference.kinds.index("merging")].count("worker_finished") - 1)
    kill = lambda p: _kill_at_event(p, event, occurrence)  # noqa: E731
    _crash_and_resume(store, demo_sim, reference, run_id, kill, stage, leftovers)


@pytest.mark.parametrize(
    ("store", "seed"), [("sqlite", 1), ("sqlite", 2), ("sqlite", 3), ("postgres", 1)], indirect=["store"]
)
def test_a_run_killed_at_a_random_event_resumes_to_the_same_result(
    store: Store, demo_sim: DemoSim, reference: Reference, leftovers: Leftovers, seed: int
) -> None:
    # Somewhere in the first 85% of the run's events: the run is still going. The run emits the same events in the
    # same stages as the reference (only workers' events interleave differently), so it dies in the reference's stage.
    count = random.Random(seed).randint(1, int(0.85 * len(reference.kinds)))
    stage = stage_of(reference.kinds[:count])
    kill = lambda p: _kill_at_count(p, count)  # noqa: E731
    _crash_and_resume(store, demo_sim, reference, f"kill-random-{seed}", kill, stage, leftovers)


def test_a_server_going_down_mid_run_stops_it_cleanly_and_it_resumes_when_back(
    runs: Path, reference: Reference, leftovers: Leftovers, tmp_path: Path
) -> None:
    port = free_port()
    sim = DemoSim(f"http://127.0.0.1:{port}/v1", tmp_path / "requests.jsonl")
    server = _start_demo_sim(port, sim.log)
    try:
        repo = _repo(runs, "server-down")
        process = _start(Store(runs), repo, sim, "server-down")
        for seen in _events(process):
            if seen["event"] == "worker_finished":
                break
        wait_until(lambda: _checkpointed_workers(Store(runs), "server-down"), "a worker's report to be checkpointed")
        server.kill()  # the server dies with worker requests in flight
        server.wait(timeout=10)
        remaining = [json.loads(line) for line in process.stdout or []]  # with --events, every line is JSON
        # Retries with backoff (0.5 s doubling, 3 retries, jittered) and then a clean stop: no traceback.
        assert process.wait(timeout=60) == 1
        ended = remaining[-1]
        assert (ended["event"], ended["run_id"], ended["status"]) == ("run_finished", "server-down", "incomplete")
        assert ended["stopped_by"].startswith("the model server stopped accepting")
        checkpointed = _checkpointed_workers(Store(runs), "server-down")
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
        assert git(repo, "rev-parse", "sevenfold/server-down/result^{tree}") == reference.tree
        assert leftovers(runs / "server-down") == []
    finally:
        server.kill()
        server.wait(timeout=10)


def _sleeping(run_dir: Path, leftovers: Leftovers) -> bool:
    """Whether the mid-step policy's `sleep 30` is running for this run."""
    return any(entry.endswith("sleep 30") for entry in leftovers(run_dir))


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
        sim = DemoSim(f"http://127.0.0.1:{port}/v1", tmp_path / "unused.jsonl")
        run_id = f"mid-step-{sandbox}"
        process = _start(Store(runs), repo, sim, run_id, sandbox)
        seen = []
        for event in _events(process):
            seen.append(event["event"])
            if event["event"] == "tool" and event["tool"] == "run_command":
                break
        else:
            pytest.fail(f"the run ended ({process.wait(timeout=30)}) before running its command: {seen}")
        worktree = runs / run_id / "worktrees" / "edit"
        # Kill when the turn is half done: str_replace has written app.py and the command is sleeping.
        wait_until(
            lambda: (worktree / "app.py").read_text() == "VALUE = 2\n" and _sleeping(runs / run_id, leftovers),
            lambda: f"the edit and the command to be under way; processes: {leftovers(runs / run_id)}",
        )
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert (worktree / "app.py").read_text() == "VALUE = 2\n"  # ahead of the checkpoint
        if sandbox == "none":
            assert leftovers(runs / run_id)  # the killed run's command is still sleeping
        else:
            wait_until(lambda: leftovers(runs / run_id) == [], "the command to die with the run")

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
        assert git(repo, "show", f"sevenfold/{run_id}/result:app.py") == "VALUE = 2"
        assert leftovers(runs / run_id) == []
    finally:
        server.kill()
        server.wait(timeout=10)


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
def test_a_run_being_driven_cannot_be_resumed_by_a_second_process(store: Store, demo_sim: DemoSim) -> None:
    repo = _repo(store.root, "driven")
    process = _start(store, repo, demo_sim, "driven")
    events = _events(process)
    next(e for e in events if e["event"] == "worker_started")  # the run is in its fan-out, commands may run
    second = subprocess.run(
        [*CLI, "resume", "driven", "--quiet"], capture_output=True, text=True, env=store.env(), timeout=120
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
