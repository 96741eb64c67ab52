"""Checkpoint cost and lock waits: SQLite (a file per run) against PostgreSQL (one shared database).

Both savers serialise every call on one `asyncio.Lock` per saver (for PostgreSQL: langgraph issue 7259). Does
that lock hold seven workers back? This runs R runs at once (3 by default), each fanning out W workers (7) that
take S steps (20) each, in a graph shaped like the team's (a parent fanning out `Send`s to a worker subgraph whose
every step is checkpointed with `durability="sync"`, as `sevenfold.runs` drives it). A step "asks the model" by
waiting `--turn` seconds (0: no model at all, the worst case for the saver) and appends ~1 KB to the worker's
transcript. The savers come from `sevenfold.checkpoints.open_saver`, as a run's do.

It reports, per store: wall time, the saver's calls (each acquisition of its lock), how long a call held the lock
(its cost) and how long it waited for it (mean, p95, max), the share of the wall time the lock was held, and
"database is locked" errors. Stores: `sqlite` (a saver and file per run), `postgres` (a saver
and pool per run, as separate `sevenfold run` processes have), `postgres-one-saver` (every run on one saver, as
`langgraph dev` / Studio has: the lock is shared by all of them).

    .venv/bin/python bench/checkpoints.py --checkpoint-url postgresql://postgres@127.0.0.1:PORT/postgres \\
        [--runs 3] [--workers 7] [--steps 20] [--turn 0] [--json out.json]

Without `--checkpoint-url` it starts a throwaway cluster with `scripts/postgres` (PostgreSQL's binaries needed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from typing_extensions import TypedDict

from sevenfold.checkpoints import open_saver
from sevenfold.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


class Team(TypedDict):
    workers: int
    reports: Annotated[list[str], operator.add]


class Worker(TypedDict):
    name: str
    steps: int
    transcript: Annotated[list[str], operator.add]


@dataclass
class Timings:
    """What the saver's calls cost and waited, across one store's runs."""

    waits: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    locked_errors: int = 0


class TimedLock(asyncio.Lock):
    """The saver's lock, timing how long each acquisition waited and how long the call then held it (its cost)."""

    def __init__(self, timings: Timings) -> None:
        super().__init__()
        self.timings = timings
        self.taken = 0.0

    async def acquire(self) -> bool:
        started = time.perf_counter()
        acquired = await super().acquire()
        self.taken = time.perf_counter()
        self.timings.waits.append(self.taken - started)
        return acquired

    def release(self) -> None:
        self.timings.costs.append(time.perf_counter() - self.taken)
        super().release()


def instrument(saver: BaseCheckpointSaver[Any], timings: Timings) -> None:
    """Time every call's wait for the saver's lock and its work under it; count "database is locked" errors."""
    saver.lock = TimedLock(timings)  # type: ignore[attr-defined]  # both savers have one
    for name in ("aput", "aput_writes"):
        original = getattr(saver, name)

        async def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            try:
                return await _original(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                timings.locked_errors += "locked" in str(exc)
                raise

        setattr(saver, name, counted)


def build(saver: BaseCheckpointSaver[Any], steps: int, turn: float) -> Any:
    async def step(state: Worker) -> dict[str, Any]:
        await asyncio.sleep(turn)  # the model's turn
        return {"transcript": [f"{state['name']} step {len(state['transcript'])}: " + "x" * 1000], "steps": 1}

    def more(state: Worker) -> str:
        return "step" if len(state["transcript"]) < steps else "report"

    def report(state: Worker) -> dict[str, Any]:
        return {"transcript": []}

    worker = StateGraph(Worker)
    worker.add_node("step", step)
    worker.add_node("report", report)
    worker.add_edge(START, "step")
    worker.add_conditional_edges("step", more, ["step", "report"])
    worker.add_edge("report", END)
    compiled_worker = worker.compile()

    async def run_worker(payload: dict[str, Any]) -> dict[str, Any]:
        return {"reports": [payload["name"]]}

    def fan_out(state: Team) -> list[Send]:
        return [Send("worker", {"name": f"w{i}", "steps": 0, "transcript": []}) for i in range(state["workers"])]

    team = StateGraph(Team)
    team.add_node("plan", lambda state: {})
    team.add_node("worker", compiled_worker)
    team.add_node("merge", lambda state: {})
    team.add_edge(START, "plan")
    team.add_conditional_edges("plan", fan_out, ["worker"])
    team.add_edge("worker", "merge")
    team.add_edge("merge", END)
    return team.compile(checkpointer=saver)


@asynccontextmanager
async def savers(store: str, url: str, root: Path, runs: int) -> AsyncIterator[list[BaseCheckpointSaver[Any]]]:
    """One saver per run (`sqlite`, `postgres`), or one for all (`postgres-one-saver`)."""
    async with AsyncExitStack() as stack:
        settings = load_settings(run_root=root / store, checkpoint_url=None if store == "sqlite" else url)
        if store == "postgres-one-saver":
            one = await stack.enter_async_context(open_saver(settings, "shared"))
            yield [one] * runs
            return
        yield [await stack.enter_async_context(open_saver(settings, f"run-{i}")) for i in range(runs)]


async def measure(store: str, url: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    timings = Timings()
    async with savers(store, url, root, args.runs) as opened:
        for saver in {id(s): s for s in opened}.values():
            instrument(saver, timings)
        graphs = [build(saver, args.steps, args.turn) for saver in opened]
        started = time.perf_counter()
        await asyncio.gather(
            *(
                graph.ainvoke(
                    {"workers": args.workers, "reports": []},
                    {"configurable": {"thread_id": f"{store}-{i}-{time.time_ns()}"}, "max_concurrency": 16},
                    durability="sync",
                )
                for i, graph in enumerate(graphs)
            )
        )
        wall = time.perf_counter() - started
    waits, costs = sorted(timings.waits), sorted(timings.costs)
    return {
        "store": store,
        "wall_s": round(wall, 2),
        "saver_calls": len(costs),
        "call_cost_ms": {"mean": _ms(statistics.fmean(costs)), "p95": _ms(costs[int(0.95 * len(costs))])},
        "lock_wait_ms": {
            "mean": _ms(statistics.fmean(waits)),
            "p95": _ms(waits[int(0.95 * len(waits))]),
            "max": _ms(waits[-1]),
        },
        "lock_busy_share": round(sum(costs) / wall / len({id(s) for s in opened}), 3),
        "database_is_locked": timings.locked_errors,
    }


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-url", help="A PostgreSQL database (default: a throwaway cluster).")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--turn", type=float, default=0.0, help="Seconds a model turn takes (0: none).")
    parser.add_argument("--stores", default="sqlite,postgres,postgres-one-saver")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sevenfold-bench-") as folder:
        url, cluster = args.checkpoint_url, None
        if url is None:
            cluster = tempfile.mkdtemp(prefix="sevenfold-bench-pg-")
            url = subprocess.run(
                [str(ROOT / "scripts/postgres"), "start", cluster], check=True, capture_output=True, text=True
            ).stdout.strip()
        try:
            results = [asyncio.run(measure(store, url, Path(folder), args)) for store in args.stores.split(",")]
        finally:
            if cluster is not None:
                subprocess.run([str(ROOT / "scripts/postgres"), "stop", cluster], capture_output=True)
    figures = {"runs": args.runs, "workers": args.workers, "steps": args.steps, "turn_s": args.turn, "results": results}
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
