"""What does the orchestrator itself cost per model round-trip, and how big are its checkpoints?

One worker takes `--turns` turns against `sevenfold sim --profile instant` (no
modelled latency; the simulator runs in its own process). Each turn is one model
request and one tool call (a file view, the cheapest real tool). A LangChain
callback stamps when each model call starts and ends in this process; the gap
between one call's end and the next call's start is the orchestrator's own cost
for that round-trip: the agent step's end, its checkpoint write (SQLite,
durability "sync": written before the next step), routing, the act step (tool
dispatch, the view itself, its checkpoint) and building the next request. HTTP
and the simulator's time are inside the model calls and not counted.

The model calls' own time is reported too, first and last ten turns: it holds
what the client does in this process per request (building the body, the
OpenAI SDK's walk over it, JSON encoding) besides HTTP and the simulator.

Checkpoint size is read from the run's SQLite file: bytes of checkpoints and
pending writes per checkpoint, for the first and last ten steps (the worker's
transcript grows; with its messages on a `DeltaChannel` a checkpoint holds only
the step's new messages).

    .venv/bin/python bench/overhead.py [--turns 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from _harness import settings_for, simulator
from langchain_core.callbacks import BaseCallbackHandler
from workload import Workload, make_repo

from sevenfold.runs import DURABILITY, open_graph, run_config


class ModelCallClock(BaseCallbackHandler):
    """Start and end times of every model call in this process, and how long the worker's nodes took."""

    def __init__(self) -> None:
        self.starts: dict[UUID, float] = {}
        self.spans: list[tuple[float, float]] = []
        self.node_starts: dict[UUID, tuple[str, float]] = {}
        self.nodes: dict[str, list[float]] = {}
        """Milliseconds each run of the worker's `agent` and `act` nodes took."""

    def on_chat_model_start(self, serialized: dict[str, Any], messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.starts[run_id] = time.perf_counter()

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if run_id in self.starts:
            self.spans.append((self.starts.pop(run_id), time.perf_counter()))

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if kwargs.get("name") in ("agent", "act"):
            self.node_starts[run_id] = (kwargs["name"], time.perf_counter())

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if run_id in self.node_starts:
            name, start = self.node_starts.pop(run_id)
            self.nodes.setdefault(name, []).append((time.perf_counter() - start) * 1000)


def checkpoint_sizes(path: Path) -> list[int]:
    """Bytes per checkpoint (its blob, metadata and the writes recorded against it), oldest first."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT c.checkpoint_id, LENGTH(c.checkpoint) + LENGTH(c.metadata) + "
            "COALESCE((SELECT SUM(LENGTH(w.value)) FROM writes w WHERE w.checkpoint_id = c.checkpoint_id), 0) "
            "FROM checkpoints c ORDER BY c.checkpoint_id"
        ).fetchall()
    return [int(size) for _, size in rows]


async def measure(turns: int) -> dict[str, Any]:
    """Run one worker for `turns` turns; the overhead and checkpoint figures."""
    workload = Workload(subtasks=1, turns=turns, words=20, tool_s=0.0, time_scale=1.0)
    clock = ModelCallClock()
    with tempfile.TemporaryDirectory(prefix="sevenfold-bench-") as scratch:
        root = Path(scratch)
        repo = make_repo(root / "repo")
        with simulator(workload, "instant", root / "requests.jsonl") as base_url:
            # No token budget: 200 turns of a growing transcript would spend the default 600k tokens.
            settings = settings_for(base_url, 7, 7, root / "runs", worker_max_steps=turns + 2, worker_max_tokens=10**9)
            run_id = "overhead"
            config = run_config(settings, run_id)
            config["callbacks"] = [clock]
            began = time.perf_counter()
            async with open_graph(settings, run_id) as graph:
                await graph.ainvoke(
                    {"task": "Add a module.", "repo": str(repo), "run_id": run_id}, config, durability=DURABILITY
                )
            wall = time.perf_counter() - began
        sizes = checkpoint_sizes(root / "runs" / run_id / "checkpoints.sqlite")
    worker_spans = sorted(clock.spans)[1:-1]  # drop the planner's call and the reviewer's
    gaps_ms = [(b[0] - a[1]) * 1000 for a, b in itertools.pairwise(worker_spans)]
    model_ms = [(end - start) * 1000 for start, end in worker_spans]
    return {
        "turns": turns,
        "wall_s": round(wall, 2),
        "overhead_ms_median": round(statistics.median(gaps_ms), 2),
        "overhead_ms_p90": round(statistics.quantiles(gaps_ms, n=10)[-1], 2),
        "overhead_ms_first10_median": round(statistics.median(gaps_ms[:10]), 2),
        "overhead_ms_last10_median": round(statistics.median(gaps_ms[-10:]), 2),
        "model_call_ms_median": round(statistics.median(model_ms), 2),
        "model_call_ms_first10_median": round(statistics.median(model_ms[:10]), 2),
        "model_call_ms_last10_median": round(statistics.median(model_ms[-10:]), 2),
        "act_node_ms_median": round(statistics.median(clock.nodes["act"]), 2),
        "agent_node_ms_median_less_model_call": round(
            statistics.median(clock.nodes["agent"][1:-1]) - statistics.median(model_ms), 2
        ),
        "checkpoints": len(sizes),
        "checkpoint_bytes_mean": round(statistics.mean(sizes)),
        "checkpoint_bytes_first10_mean": round(statistics.mean(sizes[:10])),
        "checkpoint_bytes_last10_mean": round(statistics.mean(sizes[-10:])),
        # The step's own writes, without the transcript snapshot a DeltaChannel makes every `snapshot_frequency`
        # updates (a mean over ten steps is dominated by one snapshot when it falls among them).
        "checkpoint_bytes_first10_median": round(statistics.median(sizes[:10])),
        "checkpoint_bytes_last10_median": round(statistics.median(sizes[-10:])),
        "snapshot_checkpoints_bytes": [size for size in sizes if size > 10 * statistics.median(sizes)],
        "checkpoint_bytes_total": sum(sizes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.turns))
    for name, value in figures.items():
        print(f"{name}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
