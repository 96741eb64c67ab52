"""Two runs of one compiled graph in one process (as Studio serves them), each with its own context."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from sevenfold.context import RunContext
from sevenfold.graphs.coding import build_graph
from sevenfold.llm.limiter import LIMITERS
from sevenfold.settings import Settings
from sevenfold.sim.runner import BackgroundSimulator


async def test_two_runs_with_different_endpoints_and_slots_each_use_their_own(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    example_repo: Callable[[str], Path],
    request_log: Callable[[Path], list[dict[str, Any]]],
    peak: Callable[..., int],
    tmp_path: Path,
) -> None:
    logs = {name: tmp_path / f"{name}.jsonl" for name in ("a", "b")}
    sims = {name: start_sim(policy="demo", request_log=logs[name]) for name in ("a", "b")}
    # The graph is built for endpoint a with 7 slots; run b's context moves it to endpoint b with 2 slots.
    settings = settings_for(sims["a"], slots=7, max_rounds=2, run_root=tmp_path / "runs")
    graph = build_graph(settings, InMemorySaver())
    repos = {name: example_repo(name) for name in ("a", "b")}
    contexts: dict[str, RunContext | None] = {"a": None, "b": RunContext(base_url=sims["b"].base_url, slots=2)}

    async def run(name: str) -> dict[str, Any]:
        config = {"configurable": {"thread_id": f"run-{name}"}, "max_concurrency": 8, "recursion_limit": 400}
        return await graph.ainvoke(
            {"task": "Implement the stub modules.", "repo": str(repos[name]), "run_id": f"run-{name}"},
            config,  # type: ignore[arg-type]
            context=contexts[name],
        )

    results = await asyncio.gather(run("a"), run("b"))
    assert [r["status"] for r in results] == ["passed", "passed"]
    for name in ("a", "b"):
        records = request_log(logs[name])
        assert {r["hints"].get("run") for r in records} == {f"run-{name}"}  # each run's requests, its own endpoint
        assert {r["hints"].get("role") for r in records} == {"planner", "worker", "reviewer"}
    assert peak(request_log(logs["b"])) <= 2  # run b's slots
    limiter_b = LIMITERS.get(sims["b"].base_url)
    assert limiter_b is not None and limiter_b.slots == 2 and limiter_b.snapshot().peak_in_flight <= 2
    limiter_a = LIMITERS.get(sims["a"].base_url)
    assert limiter_a is not None and limiter_a.slots == 7  # run b did not resize run a's endpoint
