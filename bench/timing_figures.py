"""Figures the test suite used to assert with wall-clock thresholds; they depend on the machine's load, so they are
measured here and reported, not asserted (the tests now assert the behaviour behind each one).

- `flood`: how much this process's RSS grows while a command floods 50 MB of output (the test,
  `tests/integration/test_tools_shell.py`, bounds Python's own allocations with tracemalloc instead).
- `heartbeat`: the gaps between a worker's heartbeats while its tools run, with the interval set to 0.05 s
  (`tests/unit/test_heartbeat.py` waits for the beats instead of timing them).
- `slots`: the slot limiter's occupancy while 21 requests share 7 slots on `h100-fp8` at 4x
  (`tests/integration/test_model_clients.py` asserts the peak and the grants; `bench/occupancy.py` is the full study).
- `concurrency`: `sevenfold bench`'s request throughput and median TTFT at concurrency 1, 2, 4, 8 with
  `--max-num-seqs 4` (`tests/integration/test_bench.py` asserts the server never ran more than 4 at once).

    .venv/bin/python bench/timing_figures.py [flood|heartbeat|slots|concurrency ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from sevenfold.llm.factory import chat_model
from sevenfold.nodes import worker
from sevenfold.serving.bench import run_bench
from sevenfold.settings import load_settings
from sevenfold.sim.profiles import load_profile
from sevenfold.sim.runner import BackgroundSimulator
from sevenfold.sim.server import SimConfig
from sevenfold.tools.sandbox import unconfined
from sevenfold.tools.shell import run_command


async def flood() -> dict[str, Any]:
    """RSS growth while `run_command` reads 50 MB of output capped to 10,000 characters."""
    process = psutil.Process()
    before = process.memory_info().rss
    with tempfile.TemporaryDirectory() as folder:
        result = await run_command(
            "yes 0123456789 | head -c 50000000", unconfined(Path(folder)), timeout_s=60, output_limit=10_000
        )
    return {"rss_growth_mb": round((process.memory_info().rss - before) / 2**20, 1), "cut_chars": result.cut_chars}


class _State(TypedDict, total=False):
    done: bool


async def heartbeat() -> dict[str, Any]:
    """Gaps between heartbeats for 0.3 s of tools at a 0.05 s interval (the test used to require all under 0.2 s)."""
    worker.HEARTBEAT_S = 0.05

    async def slow_tools(state: _State) -> dict[str, Any]:
        async def tools() -> list[Any]:
            await asyncio.sleep(0.3)
            return []

        await worker._with_heartbeat(tools(), "w1")
        return {"done": True}

    graph = StateGraph(_State)
    graph.add_node("slow_tools", slow_tools)
    graph.add_edge(START, "slow_tools")
    graph.add_edge("slow_tools", END)
    beats = [e async for e in graph.compile().astream({}, stream_mode="custom") if e["event"] == "heartbeat"]
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(beats)]
    return {"beats": len(beats), "max_gap_s": round(max(gaps), 3) if gaps else None}


def _simulator(profile: str, **config: Any) -> BackgroundSimulator:
    return BackgroundSimulator(SimConfig(profile=load_profile(profile), **config)).start()


async def slots() -> dict[str, Any]:
    """Occupancy of 7 slots while 21 requests of ~8 words go through them (the test used to require > 0.8)."""
    sim = _simulator("h100-fp8", max_num_seqs=32, time_scale=4.0)
    try:
        endpoint = {"base_url": sim.base_url, "slots": 7, "model": sim.model}
        settings = load_settings(endpoints={"default": endpoint}, worker={"max_retries": 3, "retry_backoff": 0.01})
        model = chat_model(settings, "worker")
        limiter = model.limiter
        assert limiter is not None
        before = limiter.snapshot()
        await asyncio.gather(*(model.ainvoke([HumanMessage(f"a modest reply number {i} " * 8)]) for i in range(21)))
        after = limiter.snapshot()
        return {"occupancy": round(after.occupancy_since(before), 3), "peak_in_flight": after.peak_in_flight}
    finally:
        sim.stop()


async def concurrency() -> dict[str, Any]:
    """Request throughput and median TTFT by concurrency, 4 sequences at most on the server (modelled time)."""
    sim = _simulator("h100-fp8", max_num_seqs=4, time_scale=4)
    try:
        report = await run_bench(sim.base_url, [1, 2, 4, 8], input_len=64, output_len=40, num_prompts=8)
    finally:
        sim.stop()
    return {
        str(level.concurrency): {
            "request_throughput": round(level.request_throughput, 3),
            "ttft_median_ms": round(level.ttft_ms.median, 1),
            "scaling_efficiency": level.scaling_efficiency,
        }
        for level in report.levels
    }


FIGURES: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
    "flood": flood,
    "heartbeat": heartbeat,
    "slots": slots,
    "concurrency": concurrency,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", nargs="*", metavar="FIGURE", help=f"any of {', '.join(FIGURES)} (default: all)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if unknown := set(args.figures) - set(FIGURES):
        parser.error(f"unknown figures: {', '.join(sorted(unknown))}")
    figures = {name: asyncio.run(FIGURES[name]()) for name in args.figures or FIGURES}
    for name, values in figures.items():
        print(f"{name}: {json.dumps(values)}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
