"""How short an interval between tokens can the simulator stream honestly? Its pacing floor.

Two measurements:

- `--clock`: steps paced to absolute deadlines on an otherwise idle event loop,
  with asyncio's own timers and with the simulator's `StepClock`; the median
  and spread of the intervals against the target.
- default: `sevenfold sim --profile h100-fp8` in its own process (or, with
  `--in-process`, on a thread of this one, as tests and notebooks run it) at
  each time scale, measured by `sevenfold bench`'s load generator in modelled
  time, each figure compared with the first scale's (1: the reference). The
  smallest wall-clock interval at which output throughput and median ITL stay
  within `--tolerance` of it, at every concurrency, is the floor.

    .venv/bin/python bench/sim_pacing.py --clock
    .venv/bin/python bench/sim_pacing.py --scales 1,5,10,20,40 --concurrency 1,4,8 --num-prompts 16
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sevenfold.serving.bench import run_bench
from sevenfold.serving.bench_metrics import BenchReport
from sevenfold.sim.clock import StepClock
from sevenfold.sim.profiles import load_profile
from sevenfold.sim.runner import BackgroundSimulator, free_port, wait_until_serving
from sevenfold.sim.server import SimConfig

PROFILE = "h100-fp8"


async def _pace(step_s: float, steps: int, sleep_until: Callable[[float], Awaitable[None]]) -> list[float]:
    stamps = []
    deadline = time.monotonic()
    for _ in range(steps):
        deadline = max(deadline + step_s, time.monotonic() - 0.05)  # as the engine's loop does
        await sleep_until(deadline)
        stamps.append(time.monotonic())
    return [b - a for a, b in itertools.pairwise(stamps)]


async def _asyncio_sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(deadline - time.monotonic(), 0))


def _quantiles_ms(gaps: list[float]) -> dict[str, float]:
    ordered = sorted(gaps)

    def at(p: float) -> float:
        return round(ordered[int(p * (len(ordered) - 1))] * 1000, 3)

    return {
        "median": at(0.5),
        "p10": at(0.1),
        "p90": at(0.9),
        "p99": at(0.99),
        "mean": round(statistics.fmean(gaps) * 1000, 3),
    }


async def measure_clock(intervals_ms: list[float], seconds: float) -> list[dict[str, Any]]:
    """Pacing accuracy of asyncio's timers and of `StepClock` at each target interval."""
    clock = StepClock()
    clock.start()
    rows = []
    try:
        for ms in intervals_ms:
            steps = max(50, int(seconds * 1000 / ms))
            for name, sleep_until in (("asyncio.sleep", _asyncio_sleep_until), ("StepClock", clock.sleep_until)):
                rows.append(
                    {"clock": name, "target_ms": ms, **_quantiles_ms(await _pace(ms / 1000, steps, sleep_until))}
                )
    finally:
        clock.close()
    return rows


def _bench(base_url: str, args: argparse.Namespace) -> BenchReport:
    return asyncio.run(
        run_bench(
            base_url,
            args.concurrency,
            input_len=args.input_len,
            output_len=args.output_len,
            num_prompts=args.num_prompts,
            refuse_unpaced=False,  # the point is to see what happens below the floor
        )
    )


def bench_at(scale: float, args: argparse.Namespace) -> BenchReport:
    """One `sevenfold bench` run against a fresh simulator at `scale`."""
    if args.in_process:
        config = SimConfig(profile=load_profile(PROFILE), max_num_seqs=args.max_num_seqs, time_scale=scale)
        with BackgroundSimulator(config) as sim:
            return _bench(sim.base_url, args)
    port = free_port()
    command = [sys.executable, "-c", "from sevenfold.cli import main; main()", "sim", "--port", str(port)]
    command += ["--profile", PROFILE, "--max-num-seqs", str(args.max_num_seqs), "--time-scale", str(scale)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return _bench(wait_until_serving(port, server), args)
    finally:
        server.terminate()
        server.wait(timeout=10)


def measure_scales(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Modelled figures at every scale, with their error against the first scale's."""
    profile = load_profile(PROFILE)
    interval_s = profile.step_overhead_s + profile.decode_per_seq_s
    rows: list[dict[str, Any]] = []
    reference: dict[int, dict[str, Any]] = {}
    for scale in args.scales:
        report = bench_at(scale, args)
        for level in report.levels:
            row = {
                "scale": scale,
                "wall_interval_ms": round(interval_s / scale * 1000, 3),
                "concurrency": level.concurrency,
                "failed": level.failed,
                "output_tok_s": round(level.output_throughput, 1),
                "itl_median_ms": round(level.itl_ms.median, 2),
                "itl_p99_ms": round(level.itl_ms.p99, 2),
                "tpot_median_ms": round(level.tpot_ms.median, 2),
                "ttft_median_ms": round(level.ttft_ms.median, 1),
            }
            base = reference.setdefault(level.concurrency, row)
            for key in ("output_tok_s", "itl_median_ms", "ttft_median_ms"):
                row[f"{key}_error"] = round(row[key] / base[key] - 1, 3) if base[key] else None
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def floor_from(rows: list[dict[str, Any]], tolerance: float) -> float | None:
    """The smallest wall interval (ms) at and above which every level kept throughput and median ITL in tolerance."""
    honest: dict[float, bool] = {}
    for row in rows:
        ok = row["failed"] == 0 and all(
            row[key] is not None and abs(row[key]) <= tolerance for key in ("output_tok_s_error", "itl_median_ms_error")
        )
        honest[row["wall_interval_ms"]] = honest.get(row["wall_interval_ms"], True) and ok
    floor = None
    for interval in sorted(honest, reverse=True):  # from the slowest scale down, until the first miss
        if not honest[interval]:
            break
        floor = interval
    return floor


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clock", action="store_true", help="measure the clocks alone")
    parser.add_argument("--intervals", type=_floats, default=[0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.85], help="ms")
    parser.add_argument("--seconds", type=float, default=0.6, help="per interval and clock, with --clock")
    parser.add_argument("--scales", type=_floats, default=[1, 5, 10, 20, 40], help="the first is the reference")
    parser.add_argument("--concurrency", type=lambda t: [int(c) for c in t.split(",")], default=[1, 4, 8])
    parser.add_argument("--num-prompts", type=int, default=16)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--max-num-seqs", type=int, default=16)
    parser.add_argument("--in-process", action="store_true", help="simulator on a thread of this process")
    parser.add_argument("--tolerance", type=float, default=0.1, help="relative, for the floor")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if args.clock:
        rows = asyncio.run(measure_clock(args.intervals, args.seconds))
        for row in rows:
            print(json.dumps(row))
    else:
        rows = measure_scales(args)
        floor = floor_from(rows, args.tolerance)
        print(f"floor at ±{args.tolerance:.0%}: {floor} ms of wall time between a lone sequence's tokens")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
