"""Do the seven slots stay full? One workload, three ways of running it.

The coding graph runs one fixed plan (14 subtasks by default, `bench/workload.py`)
against `sevenfold sim --profile h100-fp8` three times, each with a fresh
simulator and repository:

  (a) sequential:  one worker at a time, one slot (one agent loop);
  (b) semaphore:   7 workers at a time, 7 slots (the research report's pattern: a
                   semaphore of 7 around whole workers, so a worker running a
                   tool keeps its slot idle);
  (c) sevenfold:   7 slots shared by every worker through the slot limiter, with
                   more workers active than slots (all subtasks by default).

For each: wall time of the whole run, the fan-out's length, and slot occupancy
(time-averaged model requests in flight over slots) during the fan-out, from the
client's slot limiter and, independently, from the simulator's request log; then
the ratios the targets are stated in.

    .venv/bin/python bench/occupancy.py [--subtasks 14] [--time-scale 4] [--json out.json]
    .venv/bin/python bench/occupancy.py --modes c --sandboxes none,bwrap   # what the sandbox costs a whole run
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from pathlib import Path

from _harness import RunFigures, run_workload
from workload import Workload

MODES = {
    "a": ("sequential: 1 worker, 1 slot", 1, 1),
    "b": ("semaphore of 7 around whole workers", 7, 7),
    "c": ("sevenfold: 7 slots, all workers active", 7, 0),
}


async def measure(
    workload: Workload, modes: str, active_c: int, sandboxes: list[str]
) -> tuple[dict[str, RunFigures], dict[str, float]]:
    """Run the workload in each mode (and each sandbox, interleaved); the figures of each and the ratios between them."""
    figures: dict[str, RunFigures] = {}
    for mode in modes:
        for sandbox in sandboxes:
            label, slots, active = MODES[mode]
            key = mode if len(sandboxes) == 1 else f"{mode}/{sandbox}"
            figures[key] = f = await run_workload(
                workload, slots, active or active_c or workload.subtasks, sandbox={"backend": sandbox}
            )
            print(
                f"({key}) {label}: {f.status}, wall {f.wall_s:.1f} s, fan-out {f.fanout_s:.1f} s, "
                f"occupancy {f.occupancy_client:.2f} (server log {f.occupancy_server:.2f}), "
                f"peak active workers {f.peak_active_workers}, tools {f.tool_share:.0%} of worker time "
                f"(not in a model request: {f.non_model_share:.0%}), "
                f"worker prefix-cache hits {f.prefix_hit_rate:.2f}",
                flush=True,
            )
    ratios: dict[str, float] = {}
    for mode in modes:
        for sandbox in sandboxes[1:]:
            first = figures[f"{mode}/{sandboxes[0]}"].wall_s
            ratios[f"wall ({mode}) {sandbox} / {sandboxes[0]}"] = round(figures[f"{mode}/{sandbox}"].wall_s / first, 3)
    if {"b", "c"} <= figures.keys():
        ratios["wall c / b"] = round(figures["c"].wall_s / figures["b"].wall_s, 3)
        ratios["fan-out c / b"] = round(figures["c"].fanout_s / figures["b"].fanout_s, 3)
    if {"a", "c"} <= figures.keys():
        ratios["speed-up c over a"] = round(figures["a"].wall_s / figures["c"].wall_s, 2)
        ratios["fan-out speed-up c over a"] = round(figures["a"].fanout_s / figures["c"].fanout_s, 2)
    return figures, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subtasks", type=int, default=14)
    parser.add_argument("--turns", type=int, default=5, help="model turns per worker")
    parser.add_argument("--words", type=int, default=200, help="words of output per turn (~1.5 tokens a word)")
    parser.add_argument("--tool-s", type=float, default=1.5, help="mean tool run, seconds at modelled speed")
    parser.add_argument("--time-scale", type=float, default=4.0, help="model and tools run this much faster")
    parser.add_argument("--active", type=int, default=0, help="(c)'s active workers; 0 means all subtasks")
    parser.add_argument("--modes", default="abc")
    parser.add_argument("--sandboxes", default="auto", help="comma-separated sandbox backends to run each mode under")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    workload = Workload(args.subtasks, args.turns, args.words, args.tool_s, args.time_scale)
    figures, ratios = asyncio.run(measure(workload, args.modes, args.active, args.sandboxes.split(",")))
    for name, value in ratios.items():
        print(f"{name}: {value}")
    if args.json:
        runs = {m: asdict(f) for m, f in figures.items()}
        Path(args.json).write_text(json.dumps({"workload": asdict(workload), "runs": runs, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
