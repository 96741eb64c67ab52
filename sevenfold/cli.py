"""The `sevenfold` command line."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from sevenfold.errors import SevenfoldError
from sevenfold.settings import Settings

if TYPE_CHECKING:
    from sevenfold.runs import RunResult

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


def _settings(config: Path | None, **overrides: Any) -> Settings:
    from sevenfold.settings import load_settings

    clean: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    endpoint: dict[str, Any] = {k: clean.pop(k) for k in ("base_url", "model", "slots") if k in clean}
    settings = load_settings(config)
    if endpoint:
        merged: dict[str, Any] = {**settings.endpoints["default"].model_dump(), **endpoint}
        merged["api_key"] = settings.endpoints["default"].api_key.get_secret_value()
        # Keep every endpoint (with its key); change the default one.
        endpoints: dict[str, dict[str, Any]] = {
            name: e.model_dump() | {"api_key": e.api_key.get_secret_value()} for name, e in settings.endpoints.items()
        }
        endpoints["default"] = merged
        clean["endpoints"] = endpoints
    return load_settings(config, **clean) if clean else settings


def _finish(result: RunResult, events: bool = False) -> None:
    """Say how the run ended and exit with its code; with `--events`, one last JSON line on stdout and the human
    lines on stderr, so that every stdout line is JSON."""
    say: Callable[[str], None] = (lambda line: print(line, file=sys.stderr)) if events else print
    if events:
        ended: dict[str, Any] = {"event": "run_finished", "run_id": result.run_id, "status": result.status}
        ended |= {"result_branch": result.result_branch, "report": result.report_path, "stopped_by": result.stopped_by}
        _json_events(ended)
    say(f"run {result.run_id}: {result.status}")
    if result.result_branch:
        say(f"result branch: {result.result_branch}")
    if result.report_path:
        say(f"report: {result.report_path}")
    if result.stopped_by:
        say(f"stopped: {result.stopped_by}")
    if result.status == "incomplete":
        say(f"resume with: sevenfold resume {result.run_id}")
    if result.status == "awaiting_approval" and result.waiting_for is not None:
        _show_plan(result.run_id, result.run_dir, result.waiting_for, say)
        raise typer.Exit(3)
    if result.status != "passed":
        raise typer.Exit(1)


def _show_plan(run_id: str, run_dir: Path, waiting: dict[str, Any], say: Callable[[str], None] = print) -> None:
    from sevenfold.progress import printable  # the plan is model text: no terminal control codes reach the screen

    plan = waiting.get("plan") or {}
    say(printable(f"round {waiting.get('round')} plan, waiting for approval: {plan.get('summary', '')}"))
    for subtask in plan.get("subtasks", []):
        after = f" (after {', '.join(subtask['depends_on'])})" if subtask.get("depends_on") else ""
        say(printable(f"  - {subtask['id']}{after}: {subtask['goal']}"))
    if waiting.get("problem"):
        say(printable(f"not run: {waiting['problem']}"))
    path = run_dir / f"plan-round-{waiting.get('round')}.json"
    path.write_text(json.dumps({"plan": plan}, indent=2), encoding="utf-8")
    say("to go on:")
    say(f"  sevenfold resume {run_id} --approve")
    say(f"  sevenfold resume {run_id} --plan {path}   (after editing it)")
    say(f"  sevenfold resume {run_id} --reject")


MAX_TASK_BYTES = 4 * 2**20
"""A larger task would be copied into every checkpoint and prompt; no model context holds it anyway."""


def _read_task(task: str | None, task_file: Path | None) -> str:
    """The task: the argument, `-` for standard input, or `--task-file` (exactly one of them)."""
    if (task is None) == (task_file is None):
        raise SevenfoldError("give the task once: as TASK, as - (read from standard input) or with --task-file PATH")
    if task is not None and task != "-":
        return task
    where = "standard input" if task_file is None else f"--task-file {task_file}"
    try:
        if task_file is None:
            data = sys.stdin.buffer.read(MAX_TASK_BYTES + 1)
        else:
            with task_file.open("rb") as file:
                data = file.read(MAX_TASK_BYTES + 1)
    except OSError as exc:
        raise SevenfoldError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_TASK_BYTES:
        raise SevenfoldError(f"{where}: the task is over {MAX_TASK_BYTES // 2**20} MiB; say it in fewer words")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SevenfoldError(f"{where}: the task is not UTF-8 text") from None


def _test_env(pairs: list[str] | None) -> dict[str, str] | None:
    """`--test-env NAME=VALUE` options as a dict (None when there are none)."""
    if not pairs:
        return None
    env: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise SevenfoldError(f"--test-env {pair!r}: give NAME=VALUE, NAME made of letters, digits and '_'")
        env[name] = value
    return env


ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file (also SEVENFOLD_CONFIG).")]
SandboxOption = Annotated[
    str | None,
    typer.Option(
        "--sandbox",
        help="Where the model's commands run: auto (bwrap, else landlock, else refuse), bwrap, landlock, or none "
        "(unconfined, warned on every run).",
    ),
]
EventsOption = Annotated[
    bool, typer.Option("--events", help="Print every progress event as one JSON line on stdout (for scripts).")
]


@app.command()
def run(
    task: Annotated[
        str | None, typer.Argument(help="What the team should do; - reads it from standard input.", show_default=False)
    ] = None,
    task_file: Annotated[
        Path | None, typer.Option("--task-file", help="Read the task from this file (for a long one).")
    ] = None,
    repo: Annotated[
        Path, typer.Option(help="The git repository to work on; only new branches are written to it.")
    ] = Path("."),
    slots: Annotated[int | None, typer.Option(help="Model requests in flight at once on the endpoint.")] = None,
    max_rounds: Annotated[int | None, typer.Option(help="Planner-to-verifier rounds before giving up.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server, e.g. http://gpu-box:8000/v1.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name on that server.")] = None,
    run_id: Annotated[str | None, typer.Option(help="Name the run (default: date, time and a random suffix).")] = None,
    approve_plan: Annotated[
        bool, typer.Option("--approve-plan", help="Pause after each plan until you approve it (sevenfold resume).")
    ] = False,
    test_command: Annotated[
        str | None,
        typer.Option(
            "--test-command",
            help="What runs the tests, e.g. 'PYTHONPATH=src python -m pytest' (default: the repository's "
            "pyproject.toml \\[tool.sevenfold] test_command, else python -m pytest; setting tools.test_command).",
        ),
    ] = None,
    test_env: Annotated[
        list[str] | None,
        typer.Option(
            "--test-env",
            help="NAME=VALUE set for the tests and every command the model runs, repeatable (setting sandbox.env).",
        ),
    ] = None,
    config: ConfigOption = None,
    sandbox: SandboxOption = None,
    quiet: Annotated[bool, typer.Option(help="No live view.")] = False,
    events: EventsOption = False,
) -> None:
    """Run the team on TASK in a repository until the tests pass or the rounds run out.

    Before anything is written, the tests are collected at HEAD in the sandbox: a test command that cannot
    even collect them stops the run with what to try.
    """
    from sevenfold.runs import start_run

    text = _read_task(task, task_file)
    sandbox_settings: dict[str, Any] = {"backend": sandbox} if sandbox else {}
    if env := _test_env(test_env):
        sandbox_settings["env"] = env
    settings = _settings(
        config,
        base_url=base_url,
        model=model,
        slots=slots,
        max_rounds=max_rounds,
        approve_plan=True if approve_plan else None,
        sandbox=sandbox_settings or None,
        tools={"test_command": test_command} if test_command is not None else None,
    )
    _finish(
        _with_progress(settings, quiet, lambda on_event: start_run(settings, text, repo, run_id, on_event), events),
        events,
    )


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue (see `sevenfold status`).")],
    approve: Annotated[bool, typer.Option("--approve", help="Approve the plan the run is waiting on.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject it: no workers run, the run ends.")] = False,
    plan: Annotated[
        Path | None, typer.Option("--plan", help='Run this plan instead (JSON: {"plan": {...}} or the plan itself).')
    ] = None,
    config: ConfigOption = None,
    quiet: Annotated[bool, typer.Option(help="No live view.")] = False,
    events: EventsOption = False,
) -> None:
    """Continue a run after a crash or Ctrl-C (finished work is not redone), or answer its plan approval."""
    from sevenfold.runs import resume_run, run_settings

    answer = _approval_answer(approve, reject, plan)
    settings = run_settings(_settings(config), run_id)
    _finish(
        _with_progress(settings, quiet, lambda on_event: resume_run(settings, run_id, on_event, answer), events), events
    )


def _approval_answer(approve: bool, reject: bool, plan: Path | None) -> Any:
    if approve + reject + (plan is not None) > 1:
        raise SevenfoldError("give one of --approve, --reject and --plan")
    if plan is None:
        return True if approve else False if reject else None
    try:
        data = json.loads(plan.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SevenfoldError(f"--plan {plan}: not a readable JSON file ({exc})") from None
    return data if isinstance(data, dict) and "plan" in data else {"plan": data}


@app.command()
def status(
    run_id: Annotated[str | None, typer.Argument(help="A run id; without one, list the runs.")] = None,
    config: ConfigOption = None,
) -> None:
    """List runs (newest first), or show where one stands."""
    import time

    from sevenfold.records import list_runs, run_status  # not sevenfold.runs: no graph, no model client

    settings = _settings(config)
    if run_id is None:
        runs = list_runs(settings)
        if not runs:
            print(f"no runs in {settings.run_root}")
        for record in runs:
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(record.get("created") or 0)))
            task = " ".join(str(record.get("task", "")).split())
            label = str(record["status"]).replace("_", " ")
            print(f"{record['run_id']}  {label:<17}  {started}  {record.get('repo', '')}  {task[:60]}")
        return
    info = asyncio.run(run_status(settings, run_id))
    label = str(info["status"]).replace("_", " ")
    print(f"run {run_id}: {label} (round {info['round']}, next: {', '.join(info['next']) or 'nothing'})")
    for report in info["reports"]:
        print(
            f"  round {report['round']} {report['subtask_id']}: {report['status']} ({len(report['files_changed'])} files)"
        )
    if info["report_path"]:
        print(f"report: {info['report_path']}")


@app.command()
def demo(
    base_url: Annotated[str | None, typer.Option(help="Use this server instead of starting the simulator.")] = None,
    slots: Annotated[int, typer.Option(help="Model requests in flight at once.", min=1)] = 7,
    workdir: Annotated[
        Path | None, typer.Option(help="Where to put the example repository (default: a new temp dir).")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No live view.")] = False,
    sim_log: Annotated[Path | None, typer.Option(help="Write the simulator's request log (JSON lines) here.")] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Simulator fault, KIND:RATE[:ARG], repeatable (see `sevenfold sim --help`)."),
    ] = None,
) -> None:
    """Run the whole team on the bundled example repository, against the simulator (a scripted policy, not a model)."""
    from sevenfold.demo.run import run_demo

    settings = _settings(None, slots=slots)
    _finish(
        _with_progress(
            settings,
            quiet,
            lambda on_event: run_demo(
                settings, base_url=base_url, workdir=workdir, on_event=on_event, sim_log=sim_log, faults=fault
            ),
        )
    )


@app.command()
def tour(
    base_url: Annotated[str | None, typer.Option(help="Use this server instead of starting the simulator.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name on that server.")] = None,
    slots: Annotated[int, typer.Option(help="Model requests in flight at once.", min=1)] = 7,
) -> None:
    """A quick look at the model clients: a streamed reply, a typed tool call, and the slot limiter at work."""
    from sevenfold.demo.chat_tour import run_demo

    asyncio.run(run_demo(base_url=base_url, model=model, slots=slots))


@app.command()
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
) -> None:
    """What fits: weights, KV cache per token, tokens that fit, longest context per slot, most slots.

    Exits 0 when SLOTS x CONTEXT fits, 1 when it does not (the verdict says what does).
    """
    from dataclasses import replace

    from sevenfold.serving.capacity import (
        OVERHEAD_WHAT,
        QWEN3_CODER_30B_A3B,
        KvDtype,
        default_weights,
        load_model_config,
        plan_capacity,
    )
    from sevenfold.serving.hardware import GIB, find_gpu

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
    for name, value in rows:
        print(f"{name:>32}  {value}")
    print(f"verdict: {plan.verdict()}")
    if not plan.fits:
        raise typer.Exit(1)


@app.command()
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
    port: Annotated[int, typer.Option(help="Port vLLM listens on.")] = 8000,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command instead of running it.")] = False,
) -> None:
    """Start vLLM for Qwen3-Coder, tuned for a team of agents on this hardware (each flag with its reason)."""
    import os
    import shlex
    import shutil

    from sevenfold.serving.capacity import KvDtype
    from sevenfold.serving.hardware import detect_gpus, find_gpu
    from sevenfold.serving.launch import build_serve_command

    if kv_cache_dtype not in (None, "auto", "fp8"):
        raise SevenfoldError(f"--kv-cache-dtype must be auto or fp8 (got {kv_cache_dtype!r})")
    if gpu == "auto":
        card, found = detect_gpus()
        if count is not None and count > found:
            raise SevenfoldError(f"--count {count}, but nvidia-smi lists {found} {card.name} GPU(s)")
        count = count or found
    else:
        card = find_gpu(gpu)
    dtype: KvDtype | None = None if kv_cache_dtype is None else "fp8" if kv_cache_dtype == "fp8" else "auto"
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


@app.command()
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
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every figure here as JSON.")] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of output throughput and median ITL by concurrency.")
    ] = None,
) -> None:
    """Measure a server like `vllm bench serve`: throughput, TTFT, TPOT, ITL and latency at each concurrency."""
    from rich.console import Console

    from sevenfold.errors import SettingsError
    from sevenfold.serving.bench import parse_concurrency, run_bench
    from sevenfold.serving.bench_metrics import LevelResult
    from sevenfold.serving.bench_report import bench_notes, bench_table, plot_report, require_matplotlib

    levels = parse_concurrency(concurrency)
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


def _with_progress(
    settings: Settings,
    quiet: bool,
    start: Callable[[Callable[[dict[str, Any]], None] | None], Coroutine[Any, Any, RunResult]],
    events: bool = False,
) -> RunResult:
    from sevenfold.progress import ProgressView

    if events:
        return asyncio.run(start(_json_events))
    if quiet or not sys.stderr.isatty():
        return asyncio.run(start(_plain_events))
    with ProgressView(settings) as view:
        return asyncio.run(start(view))


def _json_events(event: dict[str, Any]) -> None:
    print(json.dumps(event, default=str), flush=True)


def _plain_events(event: dict[str, Any]) -> None:
    from sevenfold.progress import describe_event

    kind = event.get("event")
    if kind in (
        "sandbox",
        "test_setup",
        "plan_ready",
        "worker_finished",
        "merged",
        "merge_conflict",
        "tests_finished",
        "report_ready",
        "dirty_checkout",
    ):
        console.print(describe_event(event, 300), highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: run the CLI, turning sevenfold's errors into one line and exit code 2."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        app()
    except SevenfoldError as exc:
        # Escaped: messages hold user text and brackets ("sevenfold[bench]") that are not rich markup.
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
