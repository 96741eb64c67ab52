"""Three `sevenfold sim --policy demo` replicas behind a real vllm-router (`consistent_hash`): session affinity and
a replica dying mid-run.

Where each request went is read from the replicas' own request logs (the `run` and `subtask` hints are sevenfold's
`X-Sevenfold-Run` and `X-Sevenfold-Subtask` headers, which the router passes through). The replica is killed on an
event of the run's own `--events` stream, never after a delay.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gitutil import git
from tests.replicas import CLI, ReplicaSet, replica_set

TASK = "Implement every stub module of the package so that the whole test suite passes."
SIM = ("--policy", "demo", "--max-num-seqs", "16", "--time-scale", "4")


def _env(runs: Path, **settings: str) -> dict[str, str]:
    env = {**os.environ, "SEVENFOLD_RUN_ROOT": str(runs), "COLUMNS": "200"}
    return env | {f"SEVENFOLD_ENDPOINTS__DEFAULT__{k.upper()}": v for k, v in settings.items()}


def _run(runs: Path, repo: Path, base_url: str, run_id: str, *flags: str, **settings: str) -> subprocess.Popen[str]:
    argv = [*CLI, "run", TASK, "--repo", str(repo), "--base-url", base_url, "--run-id", run_id, *flags]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(runs, **settings)
    )


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaSet]:
    with replica_set(tmp_path_factory.mktemp("replicas"), sim_args=SIM) as found:
        yield found


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replica-runs")


@pytest.fixture(scope="module")
def reference_tree(runs: Path, replicas: ReplicaSet) -> str:
    """The result of one uninterrupted demo run through the router."""
    repo = _repo(runs, "reference")
    process = _run(runs, repo, replicas.base_url, "reference", "--quiet")
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-3000:]
    return git(repo, "rev-parse", "sevenfold/reference/result^{tree}")


def _repo(runs: Path, name: str) -> Path:
    from sevenfold.demo.run import make_example_repo

    parent = runs.parent / f"replica-repo-{name}"  # the crash tests make repo-<name> beside their own runs
    parent.mkdir()
    return make_example_repo(parent)


def test_each_runs_requests_land_on_one_replica(runs: Path, replicas: ReplicaSet, reference_tree: str) -> None:
    # Two more runs at once, with the default session scope (the run id in X-Session-ID).
    started = {run_id: _run(runs, _repo(runs, run_id), replicas.base_url, run_id, "--quiet") for run_id in ("a", "b")}
    for run_id, process in started.items():
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"{run_id}: {out[-3000:]}"
    for run_id in ("reference", "a", "b"):
        served = replicas.where("run", run_id)
        assert len(served) == 1, f"run {run_id}'s requests went to replicas {served}"
        (index,) = served
        roles = {r["hints"]["role"] for r in replicas.replicas[index].records() if r["hints"].get("run") == run_id}
        assert roles == {"planner", "worker", "reviewer"}  # every role of the run, on its one replica


def test_with_worker_scope_each_workers_requests_land_on_one_replica(runs: Path, replicas: ReplicaSet) -> None:
    process = _run(runs, _repo(runs, "per-worker"), replicas.base_url, "per-worker", "--quiet", session_scope="worker")
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-3000:]
    workers = {
        r["hints"]["subtask"]
        for replica in replicas.replicas
        for r in replica.records()
        if r["hints"].get("run") == "per-worker" and r["hints"].get("role") == "worker"
    }
    assert len(workers) >= 7
    for worker in workers:
        served = {
            i
            for i, replica in enumerate(replicas.replicas)
            for r in replica.records()
            if r["hints"].get("run") == "per-worker" and r["hints"].get("subtask") == worker
        }
        assert len(served) == 1, f"worker {worker}'s requests went to replicas {served}"


def _events(process: subprocess.Popen[str]) -> Iterator[dict[str, Any]]:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{"):
            yield json.loads(line)


def test_a_replica_dying_mid_run_the_run_goes_on_through_the_others(
    runs: Path, reference_tree: str, tmp_path: Path, leftovers: Callable[[Path], list[str]]
) -> None:
    with replica_set(tmp_path / "dying", sim_args=SIM) as fresh:
        repo = _repo(runs, "dying")
        process = _run(runs, repo, fresh.base_url, "dying", "--events")
        events = _events(process)
        for event in events:  # the first worker has reported: its siblings are mid-turn, requests in flight
            if event["event"] == "worker_finished":
                break
        (victim,) = fresh.where("run", "dying")
        before = len(fresh.replicas[victim].records())
        fresh.replicas[victim].kill()
        rest = list(events)
        assert process.wait(timeout=600) in (0, 1)
        ended = rest[-1]
        assert ended["event"] == "run_finished"
        if ended["status"] != "passed":  # stopped cleanly instead: it must resume through the live replicas
            assert ended["status"] == "incomplete", ended
            resumed = subprocess.run(
                [*CLI, "resume", "dying", "--quiet"], capture_output=True, text=True, env=_env(runs), timeout=600
            )
            assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        # Nothing lost: the same result as an uninterrupted run.
        assert git(repo, "rev-parse", "sevenfold/dying/result^{tree}") == reference_tree
        assert leftovers(runs / "dying") == []
        # After the kill, the run's requests went on at one surviving replica (the hash ring without the dead one).
        survivors = fresh.where("run", "dying") - {victim}
        assert len(survivors) == 1, f"after the kill the run's requests went to {survivors}"
        assert len(fresh.replicas[victim].records()) == before  # the dead replica logged nothing more
        assert 'to="open"' in fresh.router_metric("vllm_router_cb_state_transitions_total")
