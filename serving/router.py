"""Several vLLM replicas behind vllm-router: their commands, each flag with its reason, and a launcher for tests.

One replica is one `vllm serve` on its own GPU or tensor-parallel group, on its own port; `vllm-router` (the vLLM
project's router, `pip install vllm-router`) listens where one server would and spreads requests over them. For a
model that fits one GPU, independent servers behind a router are simpler than vLLM's `--data-parallel-size`
(which couples MoE experts across ranks). sevenfold sends a session key on every request (`session_header`,
`session_scope`); with `consistent_hash` a run's requests stay on the replica whose prefix cache holds its shared
prompt, and a replica that dies leaves the hash ring once the router's circuit breaker opens.

Checked against `vllm-router --help` (0.1.17): the policy reads the session key from `X-Session-ID`, then
`X-User-ID`, `X-Tenant-ID`, ...; retries re-run the policy, so with `consistent_hash` they go back to the same
replica until its circuit breaker opens (after `--cb-failure-threshold` failures, default 10).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Literal

from sevenfold.errors import SevenfoldError
from sevenfold.serving.launch import Flag, ServeCommand

RouterPolicy = Literal["consistent_hash", "cache_aware", "sticky_least_loaded", "power_of_two", "round_robin", "random"]

POLICY_REASONS: dict[str, str] = {
    "consistent_hash": "sevenfold sends each run's id in X-Session-ID: a run stays on the replica whose prefix cache "
    "holds its system prompt, tools and repo map; a dead replica's runs move to the others",
    "cache_aware": "routes by the prompt's prefix as the router has seen it (its own tree, not the session key); "
    "balances when replicas' loads drift apart",
    "sticky_least_loaded": "a session sticks to the replica it started on; new sessions go to the least loaded",
    "power_of_two": "the less loaded of two random replicas: no session affinity, so prefixes are computed again",
    "round_robin": "each request to the next replica: even load, but a run's shared prefix is computed on every "
    "replica (for comparison)",
    "random": "no affinity: for comparison only",
}

ROUTER_PROMETHEUS_PORT = 29000
"""vllm-router's metrics port when none is given; two routers on one machine need different ones."""


@dataclass(frozen=True)
class Replica:
    """One vLLM server of a deployment: its GPUs (`CUDA_VISIBLE_DEVICES`), port and command."""

    index: int
    gpus: tuple[int, ...]
    host: str
    port: int
    command: ServeCommand

    @property
    def url(self) -> str:
        """Where the router reaches this replica."""
        return f"http://{'127.0.0.1' if self.host == '0.0.0.0' else self.host}:{self.port}"

    def shell(self) -> str:
        """`CUDA_VISIBLE_DEVICES=0 vllm serve ... &`: one line of the deployment script."""
        gpus = ",".join(str(g) for g in self.gpus)
        return f"CUDA_VISIBLE_DEVICES={gpus} {shlex.join(self.command.argv())} &"


@dataclass(frozen=True)
class RouterCommand:
    """`vllm-router` and its flags in order, each with its reason."""

    flags: list[Flag]

    def argv(self) -> list[str]:
        out = ["vllm-router"]
        for flag in self.flags:  # --worker-urls takes one value per replica
            out += [flag.name] if flag.value is None else [flag.name, *flag.value.split(" ")]
        return out


def router_command(
    worker_urls: Sequence[str],
    host: str = "0.0.0.0",
    port: int = 8000,
    policy: RouterPolicy | str = "consistent_hash",
    prometheus_port: int = ROUTER_PROMETHEUS_PORT,
) -> RouterCommand:
    """The `vllm-router` command in front of `worker_urls`, each flag with its reason; `SevenfoldError` for a
    policy it does not know."""
    if policy not in POLICY_REASONS:
        raise SevenfoldError(f"--router-policy must be one of {', '.join(POLICY_REASONS)} (got {policy!r})")
    if not worker_urls:
        raise SevenfoldError("a router needs at least one replica")
    flags = [
        Flag("--worker-urls", " ".join(worker_urls), f"the {len(worker_urls)} vLLM replicas"),
        Flag("--policy", policy, POLICY_REASONS[policy]),
        Flag("--host", host, "where clients reach the router"),
        Flag("--port", str(port), "sevenfold's default base_url is http://localhost:8000/v1: the router takes it"),
        Flag(
            "--prometheus-port",
            str(prometheus_port),
            "the router's own metrics (retries, circuit breakers, decisions per replica); vLLM's stay on each "
            "replica's /metrics. Two routers on one machine need two ports",
        ),
        Flag(
            "--cb-failure-threshold",
            "3",
            "a dead replica leaves the hash ring after 3 failed tries (default 10), so the router's own retries "
            "(5 by default) already reach a live replica",
        ),
        Flag(
            "--health-check-interval-secs",
            "10",
            "notice a dead replica within ~30 s (3 failed checks) even when no request hits it (default 60 s)",
        ),
        Flag(
            "--worker-startup-timeout-secs",
            "1800",
            "loading ~31 GB of weights and capturing CUDA graphs can take longer than the default 600 s",
        ),
        Flag("--worker-startup-check-interval", "10", "start routing soon after the last replica is up (default 30 s)"),
    ]
    return RouterCommand(flags)


def replicas_of(
    commands: Sequence[ServeCommand], gpus: Sequence[tuple[int, ...]], host: str, first_port: int
) -> list[Replica]:
    """The replicas: command i on GPUs `gpus[i]` and port `first_port + i` (its `--port` flag set to match)."""
    out = []
    for index, (command, ids) in enumerate(zip(commands, gpus, strict=True)):
        port = first_port + index
        flags = [
            Flag("--port", str(port), "each replica its own port; clients use the router's")
            if f.name == "--port"
            else Flag("--host", host, "only the router talks to the replicas")
            if f.name == "--host"
            else f
            for f in command.flags
        ]
        out.append(Replica(index, ids, host, port, replace(command, flags=flags)))
    return out


def replica_gpus(replicas: int, count: int, available: int | None = None) -> list[tuple[int, ...]]:
    """GPU ids for each replica: `count` consecutive ones each (a tensor-parallel group); `SevenfoldError` if the
    machine has fewer than `replicas` x `count` (when `available` is known)."""
    if replicas < 1 or count < 1:
        raise SevenfoldError("--replicas and --count must be at least 1")
    if available is not None and replicas * count > available:
        raise SevenfoldError(
            f"--replicas {replicas} x --count {count} needs {replicas * count} GPUs, but nvidia-smi lists {available}"
        )
    return [tuple(range(i * count, (i + 1) * count)) for i in range(replicas)]


def deployment_script(replicas: Sequence[Replica], router: RouterCommand) -> str:
    """A shell script: each replica in the background on its GPUs, then the router in the foreground.

    The first replica's flags are listed with their reasons (the others differ only in GPUs and port); the
    router's too. Stopping the script (Ctrl-C) stops the replicas it started.
    """
    first = replicas[0]
    lines = ["#!/bin/sh", f"# {len(replicas)} vLLM replicas behind vllm-router (sevenfold serve --replicas)."]
    lines.append(f"# checkpoint {first.command.checkpoint}: {first.command.checkpoint_reason}")
    for flag in first.command.flags:
        lines.append(f"#   {flag.name} {flag.value or ''}".rstrip() + f": {flag.reason}")
    lines.append(
        "#   CUDA_VISIBLE_DEVICES: each replica its own GPU"
        + (" group (tensor parallel)" if len(first.gpus) > 1 else "")
        + ", so no two share memory"
    )
    lines.append("trap 'kill $(jobs -p) 2>/dev/null' EXIT INT TERM")
    lines += [replica.shell() for replica in replicas]
    lines.append("# vllm-router waits for every replica's /health before routing.")
    for flag in router.flags:
        lines.append(f"#   {flag.name} {flag.value or ''}".rstrip() + f": {flag.reason}")
    lines.append(shlex.join(router.argv()))
    return "\n".join(lines) + "\n"


def router_binary() -> str | None:
    """The `vllm-router` executable on PATH or beside this Python, or None."""
    import sys

    beside = Path(sys.executable).parent / "vllm-router"
    return shutil.which("vllm-router") or (str(beside) if beside.exists() else None)


def start_router(argv: Sequence[str], log: IO[str]) -> subprocess.Popen[str]:
    """Start `vllm-router` with `argv` (as `RouterCommand.argv()`); `SevenfoldError` if it is not installed.

    The caller waits for it to serve (GET /health answers 200 once every replica has) and stops it.
    """
    binary = router_binary()
    if binary is None:
        raise SevenfoldError("vllm-router is not installed: pip install 'sevenfold[router]'")
    return subprocess.Popen([binary, *argv[1:]], stdout=log, stderr=subprocess.STDOUT, text=True)
