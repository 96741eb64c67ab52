"""Load, small: 10 subtasks on 7 slots for 3 rounds (the full size, 40 subtasks, is `bench/load.py`).

The run must finish, keep the simulator at 7 requests in flight at most and never
lock its checkpoint database. Whether its memory grows with rounds is a figure of
the whole process (shared here with other tests): `bench/load.py` reports it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sevenfold.runs import start_run
from sevenfold.settings import Settings
from sevenfold.sim.runner import BackgroundSimulator

BENCH = Path(__file__).resolve().parents[2] / "bench"
LOCKED = "database is locked"


def bench_workload() -> ModuleType:
    """`bench/workload.py`: the benchmarks' scripted team and its repository (bench/ holds scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("sevenfold_bench_workload", BENCH / "workload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


async def test_ten_subtasks_on_seven_slots_pass_in_round_three(
    start_sim: Callable[..., BackgroundSimulator],
    settings_for: Callable[..., Settings],
    request_log: Callable[[Path], list[dict[str, Any]]],
    peak: Callable[..., int],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bench = bench_workload()
    workload = bench.Workload(subtasks=10, turns=3, words=60, tool_s=0.5, time_scale=10.0, rounds=3)
    log = tmp_path / "sim.jsonl"
    sim = start_sim("h100-fp8", time_scale=workload.time_scale, policy=bench.WorkloadPolicy(workload), request_log=log)
    repo = bench.make_repo(tmp_path / "repo", checked=workload.subtasks)
    settings = settings_for(
        sim,
        slots=7,
        max_active_workers=workload.subtasks,
        max_rounds=workload.rounds,
        worker_max_steps=workload.turns + 2,
        run_root=tmp_path / "runs",
    )
    result = await start_run(settings, "Add the benchmark's modules.", repo)

    assert result.report_path, result
    report_text = Path(result.report_path).with_suffix(".json").read_text()
    report = json.loads(report_text)
    assert result.status == "passed"
    assert [r["tests_passed"] for r in report["rounds"]] == [False, False, True]
    parts = {f"part-{i:02d}" for i in range(workload.subtasks)}
    for number in (1, 2, 3):
        done = {w["subtask_id"] for w in report["workers"] if w["round"] == number and w["status"] == "done"}
        assert done == parts, f"round {number}"
    assert LOCKED not in caplog.text and LOCKED not in report_text
    records = [r for r in request_log(log) if r.get("status") == 200]
    assert peak(records) <= 7  # the slot limiter held every role to the 7 slots; the server would take 256
    assert peak(records, "worker") >= 2  # and the workers did overlap
