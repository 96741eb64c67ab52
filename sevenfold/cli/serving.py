"""Serving the model: `capacity` (what fits on a GPU), `serve` (start vLLM, each flag with its reason) and
`bench` (measure a server as `vllm bench serve` does).

The benchmark's HTTP client and plots are imported inside `bench`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sevenfold.cli.common import console
from sevenfold.errors import SettingsError, SevenfoldError
from sevenfold.serving.capacity import (
    OVERHEAD_WHAT,
    QWEN3_CODER_30B_A3B,
    KvDtype,
    default_weights,
    load_model_config,
    plan_capacity,
)
from sevenfold.serving.hardware import GIB, Gpu, detect_gpus, find_gpu
from sevenfold.serving.launch import build_serve_command
from sevenfold.serving.router import (
    ROUTER_PROMETHEUS_PORT,
    deployment_script,
    replica_gpus,
    replicas_of,
    router_command,
)


def capacity(
    gpu: Annotated[str, typer.Option(help="GPU model, e.g. h100-80, a100-40, rtx4090-24, l40s-48.")],
    count: Annotated[int, typer.Option(help="GPUs (tensor parallel).")] = 1,
    weights: Annotated[
        str | None, typer.Option(help="bf16, fp8 or awq (default: fp8 on Ada/Hopper if it fits, else awq).")
    ] = None,
    kv_cache_dtype: Annotated[str, typer.Option(help="auto (BF16) or fp8.")] = "auto",
    slots: Annotated[int, typer.Option(help="Sequences in flight at once.")] = 7,
    context: Annotated[int, typer.Option(help="Tokens of context per sequence.")] = 32_768,
    gpu_memory_utilization: Annotated[float, typer.Option(help="vLLM's --gpu-memory-utilization.")] = 0.92,
    model_config: Annotated[
        Path | None, typer.Option(help="A model's config.json (default: Qwen3-Coder-30B-A3B).")
    ] = None,
    weights_gib: Annotated[
        float | None, typer.Option(help="Size of the weights in GiB, instead of the built-in or estimated one.")
    ] = None,
    replicas: Annotated[
        int, typer.Option(help="vLLM replicas behind a router, each on COUNT GPUs; the plan is per replica.", min=1)
    ] = 1,
) -> None:
    """What fits: weights, KV cache per token, tokens that fit, longest context per slot, most slots.

    With --replicas, the plan is one replica's (COUNT GPUs, SLOTS sequences) and the totals are the router's.
    Exits 0 when SLOTS x CONTEXT fits, 1 when it does not (the verdict says what does).
    """
    if kv_cache_dtype not in ("auto", "fp8"):
        raise SevenfoldError(f"--kv-cache-dtype must be auto or fp8 (got {kv_cache_dtype!r})")
    if weights not in (None, "bf16", "fp8", "awq"):
        raise SevenfoldError(f"--weights must be bf16, fp8 or awq (got {weights!r})")
    if weights_gib is not None and weights_gib <= 0:
        raise SevenfoldError(f"--weights-gib must be more than 0 (got {weights_gib})")
    card = find_gpu(gpu)
    model = load_model_config(model_config) if model_config else QWEN3_CODER_30B_A3B
    chosen = weights or default_weights(card, max(count, 1), gpu_memory_utilization, model)
    if weights_gib is not None:
        model = replace(
            model, weight_bytes={**model.weight_bytes, chosen: int(weights_gib * GIB)}, weights_estimated=False
        )
    dtype: KvDtype = "fp8" if kv_cache_dtype == "fp8" else "auto"
    plan = plan_capacity(card, count, chosen, dtype, slots, context, gpu_memory_utilization, model)
    estimated = ", estimated from config.json: pass --weights-gib for the real size" if model.weights_estimated else ""
    rows = [
        ("model", model.name),
        ("GPUs", f"{count}x {card.name} ({card.memory_gib:.1f} GiB each, {card.architecture})"),
        ("usable at utilization", f"{plan.usable_bytes / GIB:.1f} GiB ({gpu_memory_utilization:.0%} of memory)"),
        ("weights", f"{plan.weight_bytes / GIB:.1f} GiB ({chosen}{estimated})"),
        ("weights per GPU", f"{plan.weight_bytes_per_gpu / GIB:.1f} GiB"),
        (
            "overhead allowance",
            f"{plan.overhead_bytes / GIB:.1f} GiB ({plan.overhead_bytes / count / GIB:.1f} GiB {OVERHEAD_WHAT})",
        ),
        ("KV cache", f"{plan.kv_bytes / GIB:.1f} GiB"),
        (
            "KV per token",
            f"{plan.kv_bytes_per_token:,} bytes ({plan.kv_bytes_per_token // 1024} KiB, {'fp8' if dtype == 'fp8' else 'bf16'})",
        ),
        ("tokens that fit", f"{plan.kv_tokens:,}"),
        (f"needed for {slots} x {context:,}", f"{plan.needed_tokens:,} tokens"),
        (f"longest context at {slots} slots", f"{plan.max_context_per_slot:,}"),
        (f"most slots at {context:,} tokens", f"{plan.max_slots_at_context}"),
    ]
    if replicas > 1:
        rows += [
            ("replicas", f"{replicas} x {count} GPU(s) = {replicas * count} GPUs, each replica as above"),
            (
                "slots behind the router",
                f"{replicas} x {slots} = {replicas * slots} (settings: slots = {slots}, replicas = {replicas})",
            ),
        ]
    for name, value in rows:
        print(f"{name:>32}  {value}")
    print(f"verdict: {plan.verdict()}")
    if not plan.fits:
        raise typer.Exit(1)


def serve(
    gpu: Annotated[
        str, typer.Option(help="GPU model (see `sevenfold capacity --help`), or auto (nvidia-smi).")
    ] = "auto",
    count: Annotated[int | None, typer.Option(help="GPUs to use (default: all detected, or 1).")] = None,
    slots: Annotated[int, typer.Option(help="Agents' requests in flight at once.")] = 7,
    context: Annotated[int, typer.Option(help="Tokens of context per sequence (--max-model-len).")] = 32_768,
    weights: Annotated[
        str | None, typer.Option(help="bf16, fp8 or awq (default: fp8 on Ada/Hopper, else awq).")
    ] = None,
    kv_cache_dtype: Annotated[str | None, typer.Option(help="auto or fp8 (default: fp8 only if needed).")] = None,
    gpu_memory_utilization: Annotated[float, typer.Option(help="vLLM's --gpu-memory-utilization.")] = 0.92,
    host: Annotated[str, typer.Option(help="Address vLLM listens on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port vLLM (or, with --replicas, the router) listens on.")] = 8000,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command instead of running it.")] = False,
    replicas: Annotated[
        int,
        typer.Option(
            help="vLLM servers behind vllm-router, each on COUNT GPUs (default COUNT: detected / replicas).", min=1
        ),
    ] = 1,
    router_policy: Annotated[
        str, typer.Option(help="vllm-router's --policy: consistent_hash (with sevenfold's session header), ...")
    ] = "consistent_hash",
    replica_port: Annotated[
        int | None, typer.Option(help="Port of the first replica; the others follow (default: --port + 1).")
    ] = None,
    router_prometheus_port: Annotated[int, typer.Option(help="vllm-router's metrics port.")] = ROUTER_PROMETHEUS_PORT,
) -> None:
    """Start vLLM for Qwen3-Coder, tuned for a team of agents on this hardware (each flag with its reason).

    With --replicas N: N vLLM servers (one per GPU or tensor-parallel group of COUNT GPUs, SLOTS sequences each)
    behind vllm-router on --port, as a shell script (run by `sh` unless --dry-run).
    """
    if kv_cache_dtype not in (None, "auto", "fp8"):
        raise SevenfoldError(f"--kv-cache-dtype must be auto or fp8 (got {kv_cache_dtype!r})")
    found: int | None = None
    if gpu == "auto":
        card, found = detect_gpus()
        if count is not None and count > found and replicas == 1:  # with replicas, replica_gpus says
            raise SevenfoldError(f"--count {count}, but nvidia-smi lists {found} {card.name} GPU(s)")
        count = count or max(found // replicas, 1)
    else:
        card = find_gpu(gpu)
    dtype: KvDtype | None = None if kv_cache_dtype is None else "fp8" if kv_cache_dtype == "fp8" else "auto"
    if replicas > 1:
        _serve_replicas(card, count or 1, found, replicas, slots, context, weights, dtype, gpu_memory_utilization,
                        host, port, replica_port or port + 1, router_policy, router_prometheus_port, dry_run)  # fmt: skip
        return
    command = build_serve_command(card, count or 1, slots, context, weights, dtype, gpu_memory_utilization, host, port)
    print(f"{'checkpoint ' + command.checkpoint:<56}  # {command.checkpoint_reason}")
    for flag in command.flags:
        print(f"{flag.name} {flag.value or ''}".ljust(56) + f"  # {flag.reason}")
    print(shlex.join(command.argv()))
    if dry_run:
        return
    vllm = shutil.which("vllm")
    if vllm is None:
        raise SevenfoldError("vllm is not installed here: `pip install vllm` on the GPU machine, or use --dry-run")
    sys.stdout.flush()
    os.execv(vllm, command.argv())


def _serve_replicas(
    card: Gpu,
    count: int,
    found: int | None,
    replicas: int,
    slots: int,
    context: int,
    weights: str | None,
    dtype: KvDtype | None,
    gpu_memory_utilization: float,
    host: str,
    port: int,
    replica_port: int,
    policy: str,
    prometheus_port: int,
    dry_run: bool,
) -> None:
    """Print (and unless `dry_run`, run with sh) the script that starts the replicas and the router."""
    ids = replica_gpus(replicas, count, found)
    if len({port, prometheus_port, *range(replica_port, replica_port + replicas)}) != replicas + 2:
        last = replica_port + replicas - 1
        raise SevenfoldError(
            f"--port {port}, --router-prometheus-port {prometheus_port} and the replicas' ports "
            f"{replica_port}-{last} must all differ"
        )
    command = build_serve_command(card, count, slots, context, weights, dtype, gpu_memory_utilization, "127.0.0.1")
    deployed = replicas_of([command] * replicas, ids, "127.0.0.1", replica_port)
    router = router_command([r.url for r in deployed], host, port, policy, prometheus_port)
    script = deployment_script(deployed, router)
    where = "localhost" if host in ("0.0.0.0", "127.0.0.1") else host
    script += (
        f"# sevenfold: base_url = http://{where}:{port}/v1, slots = {slots}, replicas = {replicas} "
        f"(endpoints.NAME in the config file)\n"
    )
    print(script, end="")
    if dry_run:
        return
    missing = [name for name in ("vllm", "vllm-router") if shutil.which(name) is None]
    if missing:
        raise SevenfoldError(
            f"{' and '.join(missing)} not installed here: `pip install vllm vllm-router` on the GPU machine, "
            "or use --dry-run"
        )
    sys.stdout.flush()
    os.execv("/bin/sh", ["sh", "-c", script])


def bench(
    base_url: Annotated[str, typer.Option(help="OpenAI-compatible server, e.g. http://gpu-box:8000/v1.")],
    concurrency: Annotated[
        str, typer.Option(help="Requests in flight, one level each, e.g. 1,2,4,7,8,16 (include 1 for scaling).")
    ] = "1,2,4,7,8,16",
    model: Annotated[str | None, typer.Option(help="Model to load (default: the first the server lists).")] = None,
    api_key: Annotated[str, typer.Option(help="API key, if the server wants one.")] = "EMPTY",
    input_len: Annotated[int, typer.Option(help="Prompt tokens per request, about.", min=1)] = 512,
    output_len: Annotated[int, typer.Option(help="Output tokens per request.", min=1)] = 128,
    num_prompts: Annotated[int, typer.Option(help="Requests per concurrency level.", min=1)] = 32,
    seed: Annotated[int, typer.Option(help="Seed for the random prompts.")] = 0,
    backend: Annotated[
        str,
        typer.Option(help="API to drive: chat (/v1/chat/completions) or completions (/v1/completions, as vllm bench)."),
    ] = "chat",
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every figure here as JSON.")] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of output throughput and median ITL by concurrency.")
    ] = None,
) -> None:
    """Measure a server like `vllm bench serve`: throughput, TTFT, TPOT, ITL and latency at each concurrency."""
    from sevenfold.serving.bench import parse_concurrency, run_bench
    from sevenfold.serving.bench_metrics import LevelResult
    from sevenfold.serving.bench_report import bench_notes, bench_table, plot_report, require_matplotlib

    levels = parse_concurrency(concurrency)
    if backend not in ("chat", "completions"):
        raise SettingsError(f"--backend must be chat or completions (got {backend!r})")
    if plot_path:
        require_matplotlib()  # before the run, not after it
    for option, path in (("--json", json_path), ("--plot", plot_path)):
        if path and not path.parent.is_dir():
            raise SettingsError(f"{option}: folder {path.parent} does not exist")

    def progress(level: LevelResult) -> None:
        console.print(f"c={level.concurrency}: {level.completed} requests in {level.duration_s:.1f} s", highlight=False)

    report = asyncio.run(
        run_bench(
            base_url,
            levels,
            model=model,
            api_key=api_key,
            input_len=input_len,
            output_len=output_len,
            num_prompts=num_prompts,
            seed=seed,
            backend=backend,  # type: ignore[arg-type]
            on_level=progress,
        )
    )
    out = Console()
    if not out.is_terminal:
        out = Console(width=200)  # a file or pipe: keep one row per line
    out.print(bench_table(report))
    for note in bench_notes(report):
        out.print(f"note: {note}", highlight=False)
    if json_path:
        json_path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    if plot_path:
        plot_report(report, plot_path)
