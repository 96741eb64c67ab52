"""What the graph benchmarks share: a simulator process, a run of the coding graph on a workload, its figures."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workload import Workload, make_repo

from sevenfold.llm.limiter import LIMITERS, SlotSnapshot
from sevenfold.nodes.worker import worker_key
from sevenfold.runs import start_run
from sevenfold.settings import Settings, load_settings
from sevenfold.sim.runner import free_port, wait_until_serving

BENCH = Path(__file__).resolve().parent
logging.getLogger("sevenfold.llm.factory").setLevel(logging.ERROR)  # Qwen3-Coder cannot think: known, not news


@contextmanager
def simulator(workload: Workload, profile: str, log: Path) -> Iterator[str]:
    """`sevenfold sim` in its own process (so it does not share this one's GIL), playing the workload."""
    port = free_port()
    env = {**os.environ, **workload.env(), "PYTHONPATH": str(BENCH)}
    command = [
        sys.executable,
        "-c",
        "from sevenfold.cli import main; main()",
        "sim",
        "--port",
        str(port),
        "--profile",
        profile,
        "--time-scale",
        str(workload.time_scale),
        "--policy",
        "workload:policy",
        "--request-log",
        str(log),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        try:
            base_url = wait_until_serving(port, process)
        except RuntimeError as exc:
            if process.poll() is None:
                process.kill()
            stderr = process.stderr.read() if process.stderr else ""
            raise RuntimeError(f"{exc}: {stderr}") from None
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class FanOut:
    """Collects the run's events: when the workers' fan-out began and ended, and the slot counters then."""

    base_url: str
    slots: int
    started: float | None = None
    ended: float | None = None
    first: SlotSnapshot | None = None
    last: SlotSnapshot | None = None
    active: int = 0
    peak_active: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        if name == "worker_started":
            if self.started is None:
                self.started, self.first = time.time(), LIMITERS.open(self.base_url, self.slots).snapshot()
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
        elif name == "worker_finished":
            self.active -= 1
            self.ended, self.last = time.time(), LIMITERS.open(self.base_url, self.slots).snapshot()

    @property
    def occupancy(self) -> float:
        assert self.first is not None and self.last is not None, "no workers ran"
        return self.last.occupancy_since(self.first)


def settings_for(base_url: str, slots: int, active: int, run_root: Path, **overrides: Any) -> Settings:
    """Settings for one benchmark run: one endpoint, one round unless `max_rounds` says otherwise."""
    overrides.setdefault("max_rounds", 1)
    return load_settings(
        endpoints={"default": {"base_url": base_url, "slots": slots}},
        max_active_workers=active,
        run_root=run_root,
        **overrides,
    )


def server_occupancy(records: list[dict[str, Any]], start: float, end: float, slots: int) -> float:
    """Time-averaged worker requests in flight at the server over [start, end], over slots (from its log)."""
    busy = 0.0
    for record in records:
        begin = record["time"]
        finish = begin + (record.get("e2e_s") or 0.0)
        busy += max(0.0, min(finish, end) - max(begin, start))
    return busy / ((end - start) * slots) if end > start else 0.0


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class RunFigures:
    wall_s: float
    status: str
    fanout_s: float
    occupancy_client: float
    occupancy_server: float
    occupancy_round: float | None
    peak_active_workers: int
    worker_requests: int
    tool_share: float
    """Mean over workers of (their tool runs' planned time) / (their wall time)."""
    non_model_share: float
    """Mean over workers of 1 - (their model requests' time at the server) / (their wall time): tools, slot
    waits, git and the orchestrator."""
    prefix_hit_rate: float
    checkpoint_bytes: int


async def run_workload(
    workload: Workload, slots: int, active: int, profile: str = "h100-fp8", **overrides: Any
) -> RunFigures:
    """Run the coding graph once on the workload against a fresh simulator; its figures."""
    with tempfile.TemporaryDirectory(prefix="sevenfold-bench-") as scratch:
        root = Path(scratch)
        log = root / "requests.jsonl"
        repo = make_repo(root / "repo")
        with simulator(workload, profile, log) as base_url:
            settings = settings_for(
                base_url, slots, active, root / "runs", worker_max_steps=workload.turns + 2, **overrides
            )
            fanout = FanOut(base_url.rstrip("/"), slots)
            began = time.monotonic()
            result = await start_run(settings, "Add the benchmark's modules.", repo, on_event=fanout)
            wall = time.monotonic() - began
        assert result.report_path, f"the run did not report: {result.status}"
        report = json.loads(Path(result.report_path).with_suffix(".json").read_text())
        records = [r for r in read_log(log) if r.get("status") == 200]
        workers = [r for r in records if r["hints"].get("role") == "worker"]
        assert fanout.started is not None and fanout.ended is not None
        model_s: dict[str, float] = {}
        for record in workers:
            key = record["hints"].get("subtask", "")
            model_s[key] = model_s.get(key, 0.0) + record["e2e_s"]
        shares = [
            1 - model_s.get(worker_key(w["subtask_id"], w["round"], w["attempt"]), 0.0) / w["duration_s"]
            for w in report["workers"]
            if w["duration_s"] > 0
        ]
        tool_shares = [
            sum(workload.tool_seconds(int(w["subtask_id"].removeprefix("part-")), t) for t in range(workload.turns - 1))
            / w["duration_s"]
            for w in report["workers"]
            if w["duration_s"] > 0
        ]
        prompt = sum(r["prompt_tokens"] for r in workers)
        return RunFigures(
            wall_s=round(wall, 2),
            status=result.status,
            fanout_s=round(fanout.ended - fanout.started, 2),
            occupancy_client=round(fanout.occupancy, 3),
            occupancy_server=round(server_occupancy(workers, fanout.started, fanout.ended, slots), 3),
            occupancy_round=report["rounds"][0]["slot_occupancy"],
            peak_active_workers=fanout.peak_active,
            worker_requests=len(workers),
            tool_share=round(sum(tool_shares) / len(tool_shares), 3) if tool_shares else 0.0,
            non_model_share=round(sum(shares) / len(shares), 3) if shares else 0.0,
            prefix_hit_rate=round(sum(r["cached_tokens"] for r in workers) / prompt, 3) if prompt else 0.0,
            checkpoint_bytes=(result.run_dir / "checkpoints.sqlite").stat().st_size,
        )
