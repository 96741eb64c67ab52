"""The demo finishes with every server fault at once: 5xx, stalls past the timeout, dropped streams, bad tool calls."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any


def test_the_demo_passes_with_all_server_faults_at_once_and_counts_the_retries(
    sevenfold_cli: Callable[..., list[str]],
    run_env: dict[str, str],
    request_log: Callable[[Path], list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    log = tmp_path / "requests.jsonl"
    env = {**run_env, **{f"SEVENFOLD_{role}__TIMEOUT": "2" for role in ("PLANNER", "WORKER", "REVIEWER")}}
    # Rates high enough that every kind is drawn whatever the prompts say (draws follow the request content).
    faults = ["http5xx:0.1", "stall:0.08:4", "drop:0.08", "malformed:0.08"]
    args = [arg for fault in faults for arg in ("--fault", fault)]
    result = subprocess.run(
        sevenfold_cli("demo", "--quiet", "--workdir", str(tmp_path / "work"), "--sim-log", str(log), *args),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    records = request_log(log)
    seen = Counter(fault for record in records for fault in record["faults"])
    assert seen["http500"] and seen["stall"] and seen["drop"] and seen["malformed"], seen  # every kind happened
    report = json.loads(next(Path(run_env["SEVENFOLD_RUN_ROOT"]).glob("*/report.json")).read_text())
    assert report["status"] == "passed"
    requests = report["model_requests"]
    retried = sum(m["retries"] for m in requests.values())
    # Every request that got a 5xx or a stall past the 2 s timeout cost one retry (a request can draw both; drops
    # mid-stream cost one too, when not streaming).
    assert retried >= sum(1 for record in records if {"http500", "stall"} & set(record["faults"]))
    assert sum(m["failed"] for m in requests.values()) == 0
    assert sum(m["requests"] for m in requests.values()) == len(records)
    markdown = (Path(run_env["SEVENFOLD_RUN_ROOT"]) / report["run_id"] / "report.md").read_text()
    assert f"worker {requests['worker']['requests']} ({requests['worker']['retries']} retried" in markdown
