"""Three replicas behind vllm-router: what session affinity does to the prefix cache and to wall time.

One run of the coding graph on a fixed plan (14 subtasks by default, `bench/workload.py`) against three
`sevenfold sim --profile h100-fp8` replicas (each its own process) behind a real `vllm-router`, once per way of
routing, each with fresh replicas and a fresh repository:

  round_robin             each request to the next replica (the session header is sent but not read);
  consistent_hash, run    the run id in X-Session-ID: the whole run on one replica (sevenfold's default);
  consistent_hash, worker the run id and worker key: each worker on one replica, the run spread over three.

For each: the prefix-cache hit rate per replica and overall (`vllm:prefix_cache_hits` over
`vllm:prefix_cache_queries`, from each replica's `/metrics`), prompt tokens computed again (queries - hits),
requests per replica, the run's wall time, and the modelled time (wall x the simulators' `--time-scale`, which
each reports as `sevenfold_sim_time_scale`).

    .venv/bin/python bench/replicas.py [--subtasks 14] [--time-scale 4] [--slots 7] [--json out.json]

Needs vllm-router (`pip install -e '.[router]'`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from _harness import simulator
from workload import Workload, make_repo

from sevenfold.runs import start_run
from sevenfold.serving.router import RouterPolicy, router_command, start_router
from sevenfold.settings import load_settings
from sevenfold.sim.runner import free_port

logging.getLogger("sevenfold.llm.factory").setLevel(logging.ERROR)

CASES: list[tuple[str, RouterPolicy, str]] = [
    ("round_robin", "round_robin", "run"),
    ("consistent_hash, run", "consistent_hash", "run"),
    ("consistent_hash, worker", "consistent_hash", "worker"),
]
_METRIC = re.compile(
    r"^(vllm:prefix_cache_queries_total|vllm:prefix_cache_hits_total|sevenfold_sim_time_scale)\S* (\S+)"
)


@dataclass
class ReplicaFigures:
    requests: int
    prompt_tokens: int
    cached_tokens: int

    @property
    def hit_rate(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


@dataclass
class CaseFigures:
    case: str
    status: str
    wall_s: float
    modelled_s: float
    replicas: list[ReplicaFigures]

    @property
    def hit_rate(self) -> float:
        prompt = sum(r.prompt_tokens for r in self.replicas)
        return sum(r.cached_tokens for r in self.replicas) / prompt if prompt else 0.0

    @property
    def recomputed(self) -> int:
        return sum(r.prompt_tokens - r.cached_tokens for r in self.replicas)


def _metrics(base_url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base_url.removesuffix('/v1')}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {m.group(1): float(m.group(2)) for line in text.splitlines() if (m := _METRIC.match(line))}


def _requests(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if line.strip()) if log.exists() else 0


def _wait_for(url: str, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > end:
                raise RuntimeError(f"nothing answered at {url} within {deadline_s:.0f} s") from None
            time.sleep(0.2)


async def run_case(
    name: str, policy: RouterPolicy, scope: str, workload: Workload, slots: int, replicas: int
) -> CaseFigures:
    """One run through `replicas` fresh simulators behind vllm-router with `policy`; its figures."""
    with tempfile.TemporaryDirectory(prefix="sevenfold-replicas-") as scratch, ExitStack() as stack:
        root = Path(scratch)
        logs = [root / f"replica-{i}.jsonl" for i in range(replicas)]
        urls = [stack.enter_context(simulator(workload, "h100-fp8", log)) for log in logs]
        port = free_port()
        command = router_command([u.removesuffix("/v1") for u in urls], "127.0.0.1", port, policy, free_port())
        out = stack.enter_context((root / "router.log").open("w"))
        router = start_router(command.argv(), out)
        stack.callback(router.wait, 10)
        stack.callback(router.terminate)
        _wait_for(f"http://127.0.0.1:{port}/v1/models")
        endpoint = {"base_url": f"http://127.0.0.1:{port}/v1", "slots": slots, "replicas": replicas}
        settings = load_settings(
            endpoints={"default": endpoint | {"session_scope": scope}},
            max_active_workers=workload.subtasks,
            max_rounds=1,
            worker_max_steps=workload.turns + 2,
            run_root=root / "runs",
        )
        repo = make_repo(root / "repo")
        began = time.monotonic()
        result = await start_run(settings, "Add the benchmark's modules.", repo)
        wall = time.monotonic() - began
        figures = []
        scale = 1.0
        for url, log in zip(urls, logs, strict=True):
            metrics = _metrics(url)
            scale = metrics.get("sevenfold_sim_time_scale", scale)
            queries = int(metrics.get("vllm:prefix_cache_queries_total", 0))
            hits = int(metrics.get("vllm:prefix_cache_hits_total", 0))
            figures.append(ReplicaFigures(_requests(log), queries, hits))
        return CaseFigures(name, result.status, round(wall, 2), round(wall * scale, 1), figures)


def print_figures(cases: list[CaseFigures]) -> None:
    print(
        "| routing | hit rate per replica (requests) | hit rate, all | prompt tokens recomputed | wall s | modelled s |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for c in cases:
        per = ", ".join(f"{r.hit_rate:.2f} ({r.requests})" for r in c.replicas)
        print(f"| {c.case} | {per} | {c.hit_rate:.3f} | {c.recomputed:,} | {c.wall_s} | {c.modelled_s} |")
    if any(c.status != "passed" for c in cases):
        print("runs not passed: " + ", ".join(f"{c.case}: {c.status}" for c in cases if c.status != "passed"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subtasks", type=int, default=14)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--time-scale", type=float, default=4.0)
    parser.add_argument("--slots", type=int, default=7, help="Slots per replica.")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    workload = Workload(subtasks=args.subtasks, turns=args.turns, time_scale=args.time_scale)
    cases = [
        asyncio.run(run_case(name, policy, scope, workload, args.slots, args.replicas)) for name, policy, scope in CASES
    ]
    print_figures(cases)
    if args.json:
        data = [asdict(c) | {"hit_rate": c.hit_rate, "recomputed": c.recomputed} for c in cases]
        args.json.write_text(json.dumps({"workload": asdict(workload), "cases": data}, indent=2) + "\n")


if __name__ == "__main__":
    main()
