"""Is the simulator ever the bottleneck? Requests per second and CPU per request.

Starts `sevenfold sim --profile instant` (no modelled latency) as its own
process, drives it with N concurrent clients (aiohttp, non-streaming, short
prompts and replies) for a fixed time, and reports requests per second and the
simulator process's CPU seconds per request (user + system, from psutil).

    .venv/bin/python bench/sim_throughput.py [--clients 7] [--seconds 10] [--stream] [--words 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

import aiohttp
import psutil

from sevenfold.qwen3_coder import MODEL_NAME
from sevenfold.sim.runner import free_port, wait_until_serving


async def _drive(base_url: str, clients: int, seconds: float, stream: bool, words: int) -> tuple[int, int]:
    done = errors = 0
    deadline = time.monotonic() + seconds

    async def client(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        n = 0
        while time.monotonic() < deadline:
            body = {
                "model": MODEL_NAME,
                "messages": [
                    {"role": "system", "content": "You are a worker."},
                    {"role": "user", "content": f"client {index} request {n}: " + "word " * words},
                ],
                "stream": stream,
            }
            async with session.post(f"{base_url}/chat/completions", json=body) as response:
                await response.read()
                if response.status == 200:
                    done += 1
                else:
                    errors += 1
            n += 1

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(i, session) for i in range(clients)))
    return done, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--words", type=int, default=8, help="words in each prompt; the echo reply is as long")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from sevenfold.cli import main; main()",
        "sim",
        "--port",
        str(port),
        "--profile",
        "instant",
        "--max-num-seqs",
        str(max(args.clients, 1)),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base_url = wait_until_serving(port, server)
        asyncio.run(_drive(base_url, args.clients, 1.0, args.stream, args.words))  # warm up
        proc = psutil.Process(server.pid)
        cpu_before = sum(proc.cpu_times()[:2])
        started = time.monotonic()
        done, errors = asyncio.run(_drive(base_url, args.clients, args.seconds, args.stream, args.words))
        elapsed = time.monotonic() - started
        cpu = sum(proc.cpu_times()[:2]) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=10)
    figures = {
        "clients": args.clients,
        "stream": args.stream,
        "words": args.words,
        "seconds": round(elapsed, 2),
        "requests": done,
        "errors": errors,
        "requests_per_s": round(done / elapsed, 1),
        "sim_cpu_ms_per_request": round(1000 * cpu / max(done, 1), 3),
        "sim_cpu_utilisation": round(cpu / elapsed, 2),
        "cores": psutil.cpu_count(),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
