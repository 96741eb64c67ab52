"""Long workers on a full KV cache: whole transcripts every turn vs sevenfold's context budgets, side by side.

Each mode runs the real coding graph with `--workers` workers (one round) against
a simulator in its own process playing the `realistic` policy (DESIGN section 11:
real tool calls, published output sizes, 60-90 turns per worker here) on the
`h100-bf16` profile: `--max-model-len 32768` and a KV pool of about 152k tokens,
so seven whole transcripts do not fit at once.

- naive: `context.manage` off: whole transcripts every turn, big outputs kept,
  no priorities (FCFS); a context-length 400 fails the worker, as sevenfold did before.
- budgets: sevenfold's defaults: the budget from the server (KV share per slot),
  big outputs to files, compaction at the high-water mark, and priority scheduling.

Per mode, from the simulator's request log and the run report: context-length
failures, preemptions, prefix-cache hit rate on worker prompts (cached / prompt
tokens), prompt tokens sent per worker, wall time, compactions per worker.

    .venv/bin/python bench/long_haul.py [--workers 7] [--time-scale 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _harness import read_log
from workload import make_repo

from sevenfold.runs import start_run
from sevenfold.settings import load_settings
from sevenfold.sim.runner import free_port, wait_until_serving

MODES = ("naive", "budgets")
MAX_MODEL_LEN = 32_768

_SERVE = """
import asyncio, sys
from pathlib import Path
from sevenfold.sim.policies.realistic import RealisticPolicy
from sevenfold.sim.policies.realistic_profile import RealisticProfile, Spread
from sevenfold.sim.profiles import load_profile
from sevenfold.sim.runner import serve_forever
from sevenfold.sim.server import SimConfig
port, log, scale, workers, policy = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
profile = RealisticProfile(subtasks=workers, turns=Spread(median=75, p90=88, low=60, high=90))
config = SimConfig(profile=load_profile("h100-bf16"), max_model_len=int(sys.argv[6]), time_scale=scale,
                   policy=RealisticPolicy(profile), request_log=Path(log), scheduling_policy=policy)
asyncio.run(serve_forever(config, "127.0.0.1", int(port), lambda line: print(line, flush=True)))
"""


@contextmanager
def simulator(log: Path, time_scale: float, workers: int, scheduling: str) -> Iterator[str]:
    """The simulator in its own process (`sevenfold sim` takes no realistic profile or scheduling policy yet)."""
    port = free_port()
    argv = [
        sys.executable,
        "-c",
        _SERVE,
        str(port),
        str(log),
        str(time_scale),
        str(workers),
        scheduling,
        str(MAX_MODEL_LEN),
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ)
    try:
        yield wait_until_serving(port, process)
    finally:
        process.terminate()
        process.wait(timeout=10)


async def run_mode(mode: str, workers: int, time_scale: float, root: Path) -> dict[str, Any]:
    """One run of the graph in `mode`; its figures."""
    log = root / f"{mode}.jsonl"
    repo = make_repo(root / f"repo-{mode}")
    budgets = mode == "budgets"
    with simulator(log, time_scale, workers, "priority" if budgets else "fcfs") as base_url:
        settings = load_settings(
            endpoints={"default": {"base_url": base_url, "slots": 7, "priority_scheduling": budgets}},
            worker={"timeout": 600, "max_retries": 3, "retry_backoff": 0.05},
            context={"manage": budgets},
            max_active_workers=workers,
            max_rounds=1,
            worker_max_steps=100,
            worker_max_tokens=10**9,
            run_root=root / "runs",
        )
        began = time.perf_counter()
        result = await start_run(settings, "Do the simulated work.", repo, run_id=mode)
        wall = time.perf_counter() - began
    report = json.loads(Path(str(result.report_path)).with_suffix(".json").read_text())
    records = [r for r in read_log(log) if r["hints"].get("role") == "worker"]
    served = [r for r in records if r.get("status", 200) == 200]
    prompt = sum(r.get("prompt_tokens") or 0 for r in served)
    cached = sum(r.get("cached_tokens") or 0 for r in served)
    reports = report["workers"]
    return {
        "mode": mode,
        "workers": len(reports),
        "workers_done": sum(w["status"] == "done" for w in reports),
        "workers_failed": sum(w["status"] == "failed" for w in reports),
        "context_length_failures": sum(r.get("status") == 400 for r in records),
        "preemptions": sum(r.get("preemptions") or 0 for r in records),
        "prefix_hit_rate": round(cached / prompt, 3) if prompt else 0.0,
        "prompt_tokens_per_worker": round(prompt / max(1, len(reports))),
        "turns_per_worker_median": statistics.median(w["steps"] for w in reports) if reports else 0,
        "peak_prompt_tokens": max((r.get("prompt_tokens") or 0 for r in served), default=0),
        "compactions_per_worker": round(statistics.mean(w.get("compactions", 0) for w in reports), 2) if reports else 0,
        "outputs_offloaded": sum(w.get("outputs_offloaded", 0) for w in reports),
        "wall_s": round(wall, 1),
        "status": result.status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=7)
    parser.add_argument("--time-scale", type=float, default=5.0)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    figures = []
    with tempfile.TemporaryDirectory(prefix="sevenfold-long-haul-") as scratch:
        for mode in args.modes.split(","):
            figures.append(asyncio.run(run_mode(mode, args.workers, args.time_scale, Path(scratch))))
            print(json.dumps(figures[-1]), flush=True)
    names = list(figures[0])
    print("| " + " | ".join(names) + " |")
    print("| " + " | ".join("---" for _ in names) + " |")
    for row in figures:
        print("| " + " | ".join(str(row[n]) for n in names) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
