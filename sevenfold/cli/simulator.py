"""The simulator and what runs on it: `sim` (a vLLM stand-in), `demo` (the whole team on the bundled example)
and `tour` (the model clients at work).

The simulator, the graph and the model clients are imported inside the commands that use them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from sevenfold.cli.common import QuietOption, settings_from_flags
from sevenfold.cli.run_output import exit_with_result, run_with_progress
from sevenfold.errors import SevenfoldError
from sevenfold.qwen3_coder import MODEL_NAME


def sim(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8000,
    max_num_seqs: Annotated[
        int | None,
        typer.Option(help="Sequences running at once (vLLM --max-num-seqs); default from the profile.", min=1),
    ] = None,
    policy: Annotated[
        str,
        typer.Option(
            help="What the simulated model says: a policy name (echo-tools, realistic, demo), realistic=FILE.toml, "
            "a .yaml/.json script, or module:factory."
        ),
    ] = "echo-tools",
    time_scale: Annotated[
        float,
        typer.Option(help="Run this many times faster than the modelled hardware.", min=0.001),
    ] = 1.0,
    profile: Annotated[
        str, typer.Option(help="Hardware profile: h100-fp8, rtx4090-awq, instant, h100-bf16, or a .toml file.")
    ] = "h100-fp8",
    fault: Annotated[
        list[str] | None,
        typer.Option(help="KIND:RATE[:ARG], repeatable: http5xx, stall, drop, leak, malformed, length."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for fault draws and the realistic policy's draws.")] = 0,
    request_log: Annotated[Path | None, typer.Option(help="Append one JSON line per request here.")] = None,
    served_model_name: Annotated[str, typer.Option(help="Model name to serve.")] = MODEL_NAME,
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
    scheduling_policy: Annotated[
        str,
        typer.Option(
            help="As vLLM's --scheduling-policy: fcfs, or priority (a request's `priority`, lower first; "
            "the highest value is preempted first when the KV cache is full)."
        ),
    ] = "fcfs",
    enable_prompt_tokens_details: Annotated[
        bool,
        typer.Option(
            "--enable-prompt-tokens-details", help="As vLLM's flag: report usage.prompt_tokens_details.cached_tokens."
        ),
    ] = False,
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
    if scheduling_policy not in ("fcfs", "priority"):
        raise SevenfoldError(f"--scheduling-policy must be fcfs or priority (got {scheduling_policy!r})")
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
        scheduling_policy=scheduling_policy,
        enable_prompt_tokens_details=enable_prompt_tokens_details,
    )
    asyncio.run(serve_forever(config, host, port, announce=lambda line: print(line, flush=True)))


def demo(
    base_url: Annotated[str | None, typer.Option(help="Use this server instead of starting the simulator.")] = None,
    slots: Annotated[int, typer.Option(help="Model requests in flight at once.", min=1)] = 7,
    workdir: Annotated[
        Path | None, typer.Option(help="Where to put the example repository (default: a new temp dir).")
    ] = None,
    quiet: QuietOption = False,
    sim_log: Annotated[Path | None, typer.Option(help="Write the simulator's request log (JSON lines) here.")] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Simulator fault, KIND:RATE[:ARG], repeatable (see `sevenfold sim --help`)."),
    ] = None,
) -> None:
    """Run the whole team on the bundled example repository, against the simulator (a scripted policy, not a model)."""
    from sevenfold.demo.run import run_demo

    settings = settings_from_flags(None, slots=slots)
    exit_with_result(
        run_with_progress(
            settings,
            quiet,
            lambda on_event: run_demo(
                settings, base_url=base_url, workdir=workdir, on_event=on_event, sim_log=sim_log, faults=fault
            ),
        )
    )


def tour(
    base_url: Annotated[str | None, typer.Option(help="Use this server instead of starting the simulator.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name on that server.")] = None,
    slots: Annotated[int, typer.Option(help="Model requests in flight at once.", min=1)] = 7,
) -> None:
    """A quick look at the model clients: a streamed reply, a typed tool call, and the slot limiter at work."""
    from sevenfold.demo.chat_tour import run_chat_tour

    asyncio.run(run_chat_tour(base_url=base_url, model=model, slots=slots))
