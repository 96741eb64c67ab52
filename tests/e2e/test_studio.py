"""LangGraph Studio's server (`langgraph dev`, in-memory runtime) serves the coding graph from langgraph.json."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gitutil import git
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
TASK = "Implement every stub module of the package so that the whole test suite passes."


@pytest.fixture
def studio(
    sim_process: Callable[..., tuple[subprocess.Popen[str], str]], free_port: Callable[[], int], tmp_path: Path
) -> Iterator[tuple[httpx.Client, Path]]:
    """`langgraph dev` on a free port, its settings pointing at a simulator playing the demo policy."""
    _, base_url = sim_process("--profile", "instant", "--policy", "demo")
    port = free_port()
    env = {
        **os.environ,
        "SEVENFOLD_ENDPOINTS__DEFAULT__BASE_URL": base_url,
        "SEVENFOLD_RUN_ROOT": str(tmp_path / "runs"),
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }
    command = [str(Path(sys.executable).parent / "langgraph"), "dev", "--no-browser", "--no-reload"]
    command += ["--port", str(port), "--host", "127.0.0.1", "--config", str(ROOT / "langgraph.json")]
    log = (tmp_path / "langgraph-dev.log").open("w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    try:

        def serving() -> bool:
            if server.poll() is not None:
                raise RuntimeError((tmp_path / "langgraph-dev.log").read_text()[-3000:])
            try:
                return client.get("/ok").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(
            serving, lambda: "langgraph dev to serve: " + (tmp_path / "langgraph-dev.log").read_text()[-3000:], 90
        )
        yield client, tmp_path
    finally:
        client.close()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text[:2000]
    return response.json()


def test_studio_runs_the_demo_shows_the_graph_and_pauses_for_plan_approval(
    studio: tuple[httpx.Client, Path],
    example_repo: Callable[[str], Path],
) -> None:
    client, _ = studio
    (assistant,) = _ok(client.post("/assistants/search", json={"graph_id": "sevenfold"}))
    assistant_id = assistant["assistant_id"]

    graph = _ok(client.get(f"/assistants/{assistant_id}/graph", params={"xray": "true"}))
    names = {node["id"] for node in graph["nodes"]}
    assert {"planner", "approval", "reviewer", "verifier", "report"} <= names
    assert {"worker:setup", "worker:agent", "worker:act", "worker:finish"} <= names
    schemas = _ok(client.get(f"/assistants/{assistant_id}/schemas"))
    form = schemas["context_schema"]["properties"]
    assert {"base_url", "slots", "max_rounds", "approve_plan", "planner_thinking", "worker_model"} <= set(form)
    assert "in flight" in str(form["slots"])

    repo = example_repo("studio")
    done = _ok(
        client.post("/runs/wait", json={"assistant_id": assistant_id, "input": {"task": TASK, "repo": str(repo)}})
    )
    assert done["status"] == "passed", done
    assert git(repo, "rev-parse", "--verify", done["result_branch"])

    paused_repo = example_repo("studio-approval")
    thread = _ok(client.post("/threads", json={}))["thread_id"]
    start = {
        "assistant_id": assistant_id,
        "input": {"task": TASK, "repo": str(paused_repo)},
        "context": {"approve_plan": True, "max_rounds": 1},
    }
    _ok(client.post(f"/threads/{thread}/runs/wait", json=start))
    state = _ok(client.get(f"/threads/{thread}/state"))
    assert state["next"] == ["approval"]
    (waiting,) = [i["value"] for task in state["tasks"] for i in task["interrupts"]]
    assert len(waiting["plan"]["subtasks"]) == 7 and waiting["round"] == 1

    edited = {"plan": {**waiting["plan"], "subtasks": waiting["plan"]["subtasks"][:1]}}
    resumed = {"assistant_id": assistant_id, "command": {"resume": edited}}
    final = _ok(client.post(f"/threads/{thread}/runs/wait", json=resumed))
    assert final["status"] == "failed"  # one module of seven, one round: the tests cannot pass
    assert [r["subtasks"] for r in final["rounds"]] == [[edited["plan"]["subtasks"][0]["id"]]]
