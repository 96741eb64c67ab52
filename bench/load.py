"""Load: many subtasks, seven slots, several rounds. Does the run finish, and does its memory stay bounded?

The coding graph runs one fixed plan (40 subtasks by default, `bench/workload.py`)
on 7 slots against `sevenfold sim --profile h100-fp8` (its own process). The
repository's test checks every module, and the workers write them wrong until the
last round (3 by default), so the verifier sends the whole team back each time:
every subtask's worker runs in every round.

It reports the run's status and rounds, wall time, slot occupancy per round (from
the run report, i.e. the client's slot limiter, and from the simulator's request
log), the most requests the simulator saw in flight at once, the checkpoint
database's size, how often "database is locked" was logged or raised, and memory:
this process runs nothing but the graph (the simulator has its own), so its peak
RSS is the run's own; its RSS at the start and end of each round, and the peak so
far at each round's end, show whether memory grows with rounds.

    .venv/bin/python bench/load.py [--subtasks 40] [--rounds 3] [--time-scale 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import resource
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from _harness import read_log, server_occupancy, settings_for, simulator
from workload import Workload, make_repo

from sevenfold.runs import start_run

LOCKED = "database is locked"
_ROUND_SUFFIX = re.compile(r"\.r(\d+)(?:\.a\d+)?$")


def rss_mb() -> float:
    """This process's resident memory now."""
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """This process's largest resident memory so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def round_of(worker: str) -> int:
    """The round of a worker key (`part-03`, `part-03.r2`, `part-03.r2.a2`)."""
    found = _ROUND_SUFFIX.search(worker)
    return int(found.group(1)) if found else 1


class LockedLog(logging.Handler):
    """Counts log records, tracebacks included, that say the database was locked."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.count += LOCKED in text


@dataclass
class RoundWatch:
    """Follows the run's events: each round's memory and times at its start and end, its workers' first start and
    last end."""

    planning: dict[int, float] = field(default_factory=dict)
    planned: dict[int, float] = field(default_factory=dict)
    tested: dict[int, float] = field(default_factory=dict)
    rss_start: dict[int, float] = field(default_factory=dict)
    rss_end: dict[int, float] = field(default_factory=dict)
    peak_end: dict[int, float] = field(default_factory=dict)
    fanout: dict[int, list[float]] = field(default_factory=dict)

    def __call__(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        if name == "planning":
            self.planning[event["round"]], self.rss_start[event["round"]] = event["time"], rss_mb()
        elif name == "plan_ready":
            self.planned[event["round"]] = event["time"]
        elif name == "tests_finished":
            self.tested[event["round"]] = event["time"]
            self.rss_end[event["round"]], self.peak_end[event["round"]] = rss_mb(), peak_rss_mb()
        elif name in ("worker_started", "worker_finished"):
            span = self.fanout.setdefault(round_of(event["subtask"]), [event["time"], event["time"]])
            span[0], span[1] = min(span[0], event["time"]), max(span[1], event["time"])


@dataclass
class RoundFigures:
    round: int
    tests_passed: bool
    workers: int
    planning_s: float | None
    duration_s: float
    """The run report's figure: from the plan to the verifier's verdict."""
    occupancy_client: float | None
    """The run report's figure: the client's slot limiter over the round's fan-out."""
    occupancy_server: float | None
    """From the simulator's log, over the round's first worker start to its last worker end."""
    rss_start_mb: float | None
    rss_end_mb: float | None
    peak_rss_mb: float | None
    """The process's peak RSS so far, at the round's end."""


@dataclass
class LoadFigures:
    status: str
    error: str | None
    rounds: int
    wall_s: float
    before_round_1_s: float | None
    """From the start of the run to round 1's planning: checks of the repository, test command and server."""
    after_last_round_s: float | None
    """From the last verdict to the run's end: the result branch, removing worktrees, the report."""
    worker_requests: int
    peak_in_flight: int
    """Most model requests the simulator served at one instant (its log's start and end offsets)."""
    rss_before_run_mb: float
    peak_rss_mb: float
    checkpoint_bytes: int
    checkpoint_wal_bytes: int
    checkpoints: int
    locked: int
    """'database is locked' in log records, the run's exception or its report."""
    per_round: list[RoundFigures]


def peak_in_flight(records: list[dict[str, Any]]) -> int:
    """The most requests being served at one instant, from the log's start and end offsets."""
    events = sorted(
        [(r["start_offset"], 1) for r in records if r.get("start_offset") is not None]
        + [(r["end_offset"], -1) for r in records if r.get("end_offset") is not None]
    )
    depth = peak = 0
    for _, step in events:
        depth += step
        peak = max(peak, depth)
    return peak


def _checkpoints(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM checkpoints").fetchone()[0])


async def run_load(workload: Workload, slots: int, profile: str = "h100-fp8") -> LoadFigures:
    """Run the coding graph once on the workload, all subtasks active, against a fresh simulator; its figures."""
    with tempfile.TemporaryDirectory(prefix="sevenfold-load-") as scratch:
        root = Path(scratch)
        log = root / "requests.jsonl"
        repo = make_repo(root / "repo", checked=workload.subtasks)
        locked, watch = LockedLog(), RoundWatch()
        logging.getLogger().addHandler(locked)
        rss_before = rss_mb()
        status, error, run_root = "error", None, root / "runs"
        report: dict[str, Any] | None = None
        try:
            with simulator(workload, profile, log) as base_url:
                settings = settings_for(
                    base_url,
                    slots,
                    workload.subtasks,
                    run_root,
                    worker_max_steps=workload.turns + 2,
                    max_rounds=workload.rounds,
                )
                began = time.time()
                try:
                    result = await start_run(settings, "Add the benchmark's modules.", repo, on_event=watch)
                except Exception as exc:  # the run failing is a finding to report, like its figures
                    error = f"{type(exc).__name__}: {exc}"[:500]
                    locked.count += LOCKED in error
                else:
                    status = result.status
                    if result.report_path:
                        text = Path(result.report_path).with_suffix(".json").read_text()
                        locked.count += text.count(LOCKED)
                        report = json.loads(text)
                ended = time.time()
        finally:
            logging.getLogger().removeHandler(locked)
        records = [r for r in read_log(log) if r.get("status") == 200]
        workers = [r for r in records if r["hints"].get("role") == "worker"]
        reports = report["workers"] if report else []
        per_round = []
        for summary in report["rounds"] if report else []:
            number = summary["round"]
            span = watch.fanout.get(number)
            in_round = [r for r in workers if round_of(r["hints"].get("subtask", "")) == number]
            per_round.append(
                RoundFigures(
                    round=number,
                    tests_passed=summary["tests_passed"],
                    workers=sum(1 for w in reports if w["round"] == number),
                    planning_s=_span(watch.planning.get(number), watch.planned.get(number)),
                    duration_s=summary["duration_s"],
                    occupancy_client=summary["slot_occupancy"],
                    occupancy_server=round(server_occupancy(in_round, span[0], span[1], slots), 3) if span else None,
                    rss_start_mb=_mb(watch.rss_start.get(number)),
                    rss_end_mb=_mb(watch.rss_end.get(number)),
                    peak_rss_mb=_mb(watch.peak_end.get(number)),
                )
            )
        # Found, not taken from the result: a run that raised has a database too.
        database = next(run_root.glob("*/checkpoints.sqlite"), run_root / "checkpoints.sqlite")
        wal = database.with_name(database.name + "-wal")
        return LoadFigures(
            status=status,
            error=error,
            rounds=len(per_round),
            wall_s=round(ended - began, 2),
            before_round_1_s=_span(began, watch.planning.get(1)),
            after_last_round_s=_span(max(watch.tested.values(), default=None), ended),
            worker_requests=len(workers),
            peak_in_flight=peak_in_flight(records),
            rss_before_run_mb=round(rss_before, 1),
            peak_rss_mb=round(peak_rss_mb(), 1),
            checkpoint_bytes=database.stat().st_size if database.exists() else 0,
            checkpoint_wal_bytes=wal.stat().st_size if wal.exists() else 0,
            checkpoints=_checkpoints(database),
            locked=locked.count,
            per_round=per_round,
        )


def _span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 2)


def _mb(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _figure(value: float | None, form: str) -> str:
    return "n/a" if value is None else format(value, form)


def print_figures(workload: Workload, slots: int, f: LoadFigures) -> None:
    print(
        f"{workload.subtasks} subtasks, {slots} slots, up to {workload.rounds} rounds, time scale "
        f"{workload.time_scale:g}: {f.status} after {f.rounds} round(s), wall {f.wall_s:.1f} s, "
        f"{f.worker_requests} worker requests, at most {f.peak_in_flight} in flight at the simulator"
    )
    if f.error:
        print(f"the run raised: {f.error}")
    for r in f.per_round:
        print(
            f"round {r.round}: tests {'passed' if r.tests_passed else 'failed'}, {r.workers} workers, "
            f"planning {_figure(r.planning_s, '.1f')} s, then {r.duration_s:.1f} s, occupancy {_figure(r.occupancy_client, '.2f')} "
            f"(server log {_figure(r.occupancy_server, '.2f')}), RSS {_figure(r.rss_start_mb, '.0f')} -> "
            f"{_figure(r.rss_end_mb, '.0f')} MB, peak so far {_figure(r.peak_rss_mb, '.0f')} MB"
        )
    print(
        f"before round 1: {_figure(f.before_round_1_s, '.1f')} s; after the last round: "
        f"{_figure(f.after_last_round_s, '.1f')} s"
    )
    print(
        f"peak RSS of the run process {f.peak_rss_mb:.0f} MB ({f.rss_before_run_mb:.0f} MB before the run); "
        f"checkpoint database {f.checkpoint_bytes / 2**20:.1f} MB (WAL {f.checkpoint_wal_bytes / 2**20:.1f} MB), "
        f"{f.checkpoints} checkpoints; '{LOCKED}': {f.locked}"
    )
    peaks = [r.peak_rss_mb for r in f.per_round if r.peak_rss_mb is not None]
    if len(peaks) > 1:
        print(f"peak RSS growth from round 1's end to the last round's: {peaks[-1] - peaks[0]:+.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subtasks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3, help="the tests pass in this round, not before")
    parser.add_argument("--slots", type=int, default=7)
    parser.add_argument("--turns", type=int, default=5, help="model turns per worker")
    parser.add_argument("--words", type=int, default=200, help="words of output per turn (~1.5 tokens a word)")
    parser.add_argument("--tool-s", type=float, default=1.5, help="mean tool run, seconds at modelled speed")
    parser.add_argument("--time-scale", type=float, default=4.0, help="model and tools run this much faster")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    workload = Workload(args.subtasks, args.turns, args.words, args.tool_s, args.time_scale, args.rounds)
    figures = asyncio.run(run_load(workload, args.slots))
    print_figures(workload, args.slots, figures)
    if args.json:
        data = {"workload": asdict(workload), "slots": args.slots, "figures": asdict(figures)}
        Path(args.json).write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
