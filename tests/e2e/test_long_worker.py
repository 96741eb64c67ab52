"""A worker that runs longer than the server's context: it compacts, survives a context-length 400, and finishes.

The simulator plays Qwen3-Coder with the `realistic` policy (real tool calls, published output sizes) and enforces
its `max_model_len` with vLLM's own 400 messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sevenfold.runs import start_run
from sevenfold.settings import Settings
from sevenfold.sim.policies.realistic import RealisticPolicy
from sevenfold.sim.policies.realistic_profile import RealisticProfile, Spread
from sevenfold.sim.runner import BackgroundSimulator

TURNS = 40
MAX_MODEL_LEN = 8_192
RESERVE = 2_048
"""The worker's max_tokens: the realistic profile writes up to 2,000 tokens in a turn."""


def _policy() -> RealisticPolicy:
    fixed = Spread(median=TURNS, p90=TURNS, low=TURNS, high=TURNS)
    return RealisticPolicy(RealisticProfile(subtasks=1, turns=fixed, malformed_rate=0.0))


def _run_long_worker(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    tmp_path: Path,
    **context: Any,
) -> tuple[BackgroundSimulator, Settings]:
    sim = start_sim(
        "h100-fp8",
        time_scale=50.0,
        policy=_policy(),
        max_model_len=MAX_MODEL_LEN,
        request_log=tmp_path / "sim.jsonl",
        scheduling_policy="priority",
    )
    settings = settings_for(
        sim,
        worker={"max_tokens": RESERVE},
        worker_max_steps=TURNS + 5,
        run_root=tmp_path / "runs",
        context=context,
    )
    settings.endpoints["default"].priority_scheduling = True
    return sim, settings


def _worker_requests(log: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in records if r["hints"].get("role") == "worker"]


async def test_a_worker_that_would_overflow_compacts_and_finishes(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    make_repo: Callable[..., Path],
    tmp_path: Path,
) -> None:
    _, settings = _run_long_worker(start_sim, settings_for, tmp_path)
    repo = make_repo({"tests/test_ok.py": "def test_ok():\n    assert True\n"})
    result = await start_run(settings, "Do the simulated work.", repo, run_id="long")
    report = json.loads(Path(str(result.report_path)).with_suffix(".json").read_text())
    (worker,) = report["workers"]
    assert worker["status"] == "done", worker["errors"]
    assert worker["steps"] == TURNS
    assert worker["compactions"] >= 1
    assert worker["peak_context_tokens"] <= MAX_MODEL_LEN - RESERVE
    assert worker["context_budget"] <= MAX_MODEL_LEN - RESERVE
    requests = _worker_requests(tmp_path / "sim.jsonl")
    assert all(r.get("status", 200) != 400 for r in requests)  # compacted before the server had to refuse
    summaries = [r for r in requests if r["hints"].get("purpose") == "summary"]
    assert len(summaries) == worker["compactions"]
    assert len({r["priority"] for r in requests}) == 1  # one stable priority, summaries included
    markdown = Path(str(result.report_path)).read_text()
    assert f"{worker['compactions']} compacted" in markdown and "Context:" in markdown
    archive = tmp_path / "runs" / "long" / "transcripts" / "task-1.jsonl"
    removed = [json.loads(line) for line in archive.read_text().splitlines()]
    assert sum("summary" in r for r in removed) == worker["compactions"]
    assert any(r.get("message", {}).get("type") == "tool" for r in removed)


async def test_a_context_length_400_is_recovered_by_one_compaction_and_a_retry(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    make_repo: Callable[..., Path],
    tmp_path: Path,
) -> None:
    # A budget set above what the server takes: only the server's 400 can say the transcript is too long.
    _, settings = _run_long_worker(
        start_sim, settings_for, tmp_path, budget=MAX_MODEL_LEN, high_water=1.0, low_water=0.5
    )
    repo = make_repo({"tests/test_ok.py": "def test_ok():\n    assert True\n"})
    result = await start_run(settings, "Do the simulated work.", repo, run_id="refused")
    report = json.loads(Path(str(result.report_path)).with_suffix(".json").read_text())
    (worker,) = report["workers"]
    assert worker["status"] == "done", worker["errors"]
    assert worker["steps"] == TURNS and worker["compactions"] >= 1
    requests = _worker_requests(tmp_path / "sim.jsonl")
    refused = [i for i, r in enumerate(requests) if r.get("status") == 400]
    assert refused
    for index in refused:  # each refusal: a summary request, then the same turn again, accepted
        assert requests[index + 1]["hints"].get("purpose") == "summary"
        assert requests[index + 2].get("status", 200) == 200


async def test_with_context_management_off_the_same_worker_overflows_as_before(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    make_repo: Callable[..., Path],
    tmp_path: Path,
) -> None:
    # `context.manage = false` sends whole transcripts: the server's 400 ends the worker, nothing is compacted.
    _, settings = _run_long_worker(start_sim, settings_for, tmp_path, manage=False)
    repo = make_repo({"tests/test_ok.py": "def test_ok():\n    assert True\n"})
    result = await start_run(settings, "Do the simulated work.", repo, run_id="naive")
    report = json.loads(Path(str(result.report_path)).with_suffix(".json").read_text())
    (worker,) = report["workers"]
    assert worker["status"] == "failed" and worker["compactions"] == 0
    assert any("ContextTooLongError" in error for error in worker["errors"]), worker["errors"]
    requests = _worker_requests(tmp_path / "sim.jsonl")
    assert requests[-1].get("status") == 400 and not any(r["hints"].get("purpose") == "summary" for r in requests)
