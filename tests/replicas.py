"""Simulator replicas behind a real vllm-router, for the replica tests: started on 127.0.0.1, stopped by pid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from sevenfold.serving.router import RouterPolicy, router_binary, router_command, start_router
from sevenfold.sim.runner import free_port, wait_until_serving
from tests.waiting import wait_until

CLI = [sys.executable, "-c", "from sevenfold.cli import main; main()"]


@cache
def _router_problem() -> str | None:
    binary = router_binary()
    if binary is None:
        return "vllm-router is not installed (pip install -e '.[dev]')"
    probe = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return f"vllm-router --help exited {probe.returncode}: {probe.stderr.strip()[-300:]}"
    return None


def require_router() -> None:
    """Skip when vllm-router cannot run here; in CI it must (a skipped replica suite proves nothing)."""
    if (why := _router_problem()) is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the replica tests: {why}")
        pytest.skip(why)


@dataclass
class Replica:
    """One `sevenfold sim` process and its request log."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def records(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@dataclass
class ReplicaSet:
    """Replicas and the router in front of them."""

    base_url: str
    replicas: list[Replica]
    router_log: Path
    prometheus_port: int

    def where(self, hint: str, value: str) -> set[int]:
        """The replicas (by index) that served requests whose `hint` (e.g. run, subtask) was `value`."""
        return {i for i, r in enumerate(self.replicas) if any(x["hints"].get(hint) == value for x in r.records())}

    def router_metric(self, name: str) -> str:
        """The router's Prometheus lines of one metric (from its own --prometheus-port)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.prometheus_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return "\n".join(line for line in text.splitlines() if line.startswith(name))


@contextmanager
def replica_set(
    folder: Path, count: int = 3, sim_args: tuple[str, ...] = (), policy: RouterPolicy = "consistent_hash"
) -> Iterator[ReplicaSet]:
    """`count` simulators, each logging its requests, behind vllm-router with sevenfold's recommended flags.

    The router gets its own port and its own --prometheus-port (the default, 29000, would collide between
    tests); every process is stopped by its pid on exit.
    """
    require_router()
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        replicas = []
        for index in range(count):
            port, log = free_port(), folder / f"replica-{index}.jsonl"
            argv = [*CLI, "sim", "--port", str(port), "--request-log", str(log), *sim_args]
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stack.callback(_stop, process)
            wait_until_serving(port, process)
            replicas.append(Replica(f"http://127.0.0.1:{port}", log, process))
        port, prometheus_port = free_port(), free_port()
        command = router_command([r.url for r in replicas], "127.0.0.1", port, policy, prometheus_port)
        router_log = folder / "router.log"
        out = stack.enter_context(router_log.open("w"))
        router = start_router(command.argv(), out)
        stack.callback(_stop, router)
        wait_until(
            lambda: _answers(f"http://127.0.0.1:{port}/v1/models") or router.poll() is not None,
            lambda: f"vllm-router to serve: {router_log.read_text()[-2000:]}",
        )
        assert router.poll() is None, f"vllm-router exited {router.returncode}: {router_log.read_text()[-2000:]}"
        yield ReplicaSet(f"http://127.0.0.1:{port}/v1", replicas, router_log, prometheus_port)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
