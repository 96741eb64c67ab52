"""Nothing in a run blocks the event loop: seven workers and a server (Studio) share it.

blockbuster (the checker `langgraph dev` runs) turns every blocking call made on
the event loop (file I/O, os.stat, sleeps, sync sockets) into an error. Tool
failures are reported to the model rather than raised, so the test also checks
that every worker finished cleanly: a swallowed BlockingError would show there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from blockbuster import blockbuster_ctx

from sevenfold.demo.policy import DemoPolicy
from sevenfold.runs import start_run
from sevenfold.settings import Settings
from sevenfold.sim.runner import BackgroundSimulator

TASK = "Implement every stub module of the package so that the whole test suite passes."


async def test_a_whole_run_makes_no_blocking_call_on_the_event_loop(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    example_repo: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    sim = start_sim(policy=DemoPolicy())
    settings = settings_for(sim, run_root=tmp_path / "runs")
    repo = example_repo("blocking")
    with blockbuster_ctx():
        result = await start_run(settings, TASK, repo)
    assert result.status == "passed" and result.report_path
    report = json.loads(Path(result.report_path).with_suffix(".json").read_text())
    assert [w["errors"] for w in report["workers"] if w["errors"]] == []
    assert all(w["status"] == "done" for w in report["workers"])
