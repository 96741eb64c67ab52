"""The demo still finishes when the server leaks every tool call into content, or garbles one in five."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("fault", "stream"),
    [("leak:1", False), ("leak:1", True), ("malformed:0.2", False), ("malformed:0.2", True)],
    ids=["leak-all", "leak-all-streaming", "malformed-20pc", "malformed-20pc-streaming"],
)
def test_demo_survives_tool_call_faults(
    sevenfold_cli: Callable[..., list[str]], run_env: dict[str, str], tmp_path: Path, fault: str, stream: bool
) -> None:
    env = run_env | {"SEVENFOLD_WORKER__STREAM": str(stream).lower()}
    log = tmp_path / "sim.jsonl"
    argv = sevenfold_cli(
        "demo", "--quiet", "--workdir", str(tmp_path / "work"), "--fault", fault, "--sim-log", str(log)
    )
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    report_path = Path(result.stdout.split("report: ")[1].split()[0])
    report = json.loads(report_path.with_suffix(".json").read_text())
    assert report["status"] == "passed"
    faulted = [r for r in map(json.loads, log.read_text().splitlines()) if r["faults"]]
    calls = report["tool_calls"]
    if fault.startswith("leak"):
        # Every worker tool call reached the client as text; every one was recovered.
        assert calls["recovered"] == calls["run"] > 0 and calls["unrepaired"] == 0
        assert all(r["tool_calls"] == [] for r in faulted if r["hints"].get("role") == "worker")
    else:
        assert faulted and calls["repaired"] >= 1 and calls["unrepaired"] == 0
        assert "tool calls" in report_path.read_text()  # the counts are in the Markdown report too
