"""The `sevenfold` command line."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sevenfold.errors import SevenfoldError

app = typer.Typer(
    name="sevenfold",
    help="A team of coding agents on one self-hosted model server (vLLM + Qwen3-Coder).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


@app.command()
def sim(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8000,
    max_num_seqs: Annotated[
        int | None,
        typer.Option(help="Sequences running at once (vLLM --max-num-seqs); default from the profile.", min=1),
    ] = None,
    policy: Annotated[
        str,
        typer.Option(help="What the simulated model says: a policy name, a .yaml/.json script, or module:factory."),
    ] = "echo-tools",
    time_scale: Annotated[
        float,
        typer.Option(help="Run this many times faster than the modelled hardware.", min=0.001),
    ] = 1.0,
    profile: Annotated[
        str, typer.Option(help="Hardware profile: h100-fp8, rtx4090-awq, instant, or a .toml file.")
    ] = "h100-fp8",
    fault: Annotated[
        list[str] | None,
        typer.Option(help="KIND:RATE[:ARG], repeatable: http5xx, stall, drop, leak, malformed, length."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for fault draws.")] = 0,
    request_log: Annotated[Path | None, typer.Option(help="Append one JSON line per request here.")] = None,
    served_model_name: Annotated[str, typer.Option(help="Model name to serve.")] = "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    model_kind: Annotated[
        str,
        typer.Option(help="coder: no thinking mode (Qwen3-Coder); hybrid: honours enable_thinking."),
    ] = "coder",
    reasoning_parser: Annotated[
        str | None,
        typer.Option(help="As vLLM's --reasoning-parser: 'qwen3' moves thinking to reasoning_content."),
    ] = None,
    max_model_len: Annotated[int | None, typer.Option(help="Longest prompt + completion, in tokens.", min=16)] = None,
    kv_cache_tokens: Annotated[
        int | None,
        typer.Option(help="Override the profile's KV-cache capacity, in tokens.", min=16),
    ] = None,
) -> None:
    """Serve a vLLM simulator: vLLM's API, scheduling and failure modes, driven by a scripted policy (not a model)."""
    from sevenfold.sim.faults import FaultSpec
    from sevenfold.sim.profiles import load_profile
    from sevenfold.sim.runner import serve_forever
    from sevenfold.sim.server import SimConfig

    if model_kind not in ("coder", "hybrid"):
        raise SevenfoldError(f"--model-kind must be coder or hybrid (got {model_kind!r})")
    if reasoning_parser not in (None, "qwen3"):
        raise SevenfoldError(f"--reasoning-parser: only 'qwen3' is simulated (got {reasoning_parser!r})")
    config = SimConfig(
        model=served_model_name,
        profile=load_profile(profile, kv_cache_tokens=kv_cache_tokens),
        max_num_seqs=max_num_seqs,
        max_model_len=max_model_len,
        time_scale=time_scale,
        policy=policy,
        faults=[FaultSpec.parse(spec) for spec in fault or []],
        seed=seed,
        request_log=request_log,
        model_kind=model_kind,  # type: ignore[arg-type]
        reasoning_parser=reasoning_parser == "qwen3",
    )
    asyncio.run(serve_forever(config, host, port, announce=lambda line: print(line, flush=True)))


@app.command()
def demo(
    base_url: Annotated[str | None, typer.Option(help="Use this server instead of starting the simulator.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name on that server.")] = None,
    slots: Annotated[int, typer.Option(help="Model requests in flight at once.", min=1)] = 7,
) -> None:
    """Start the simulator and show a streamed chat, a typed tool call and the slot limiter, through ChatOpenAI."""
    from sevenfold.demo.chat_tour import run_demo

    asyncio.run(run_demo(base_url=base_url, model=model, slots=slots))


def main() -> None:
    """Entry point: run the CLI, turning sevenfold's errors into one line and exit code 2."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        app()
    except SevenfoldError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
