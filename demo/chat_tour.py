"""`sevenfold tour`: the quickstart, against the simulator unless told otherwise.

It shows the pieces the agent team is built from, through the same
`ChatOpenAI` clients the graph uses: a streamed answer, a tool call whose
arguments arrive typed, and many concurrent requests held to the endpoint's
slots. With the simulator, the "model" is its echo-tools policy, a script that
calls the tool the user spells out in JSON: what is real is the protocol, the
scheduling and the client code.
"""

from __future__ import annotations

import asyncio
import json
import time

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from rich.console import Console
from rich.table import Table

from sevenfold.llm.factory import chat_model, check_endpoint
from sevenfold.settings import DEFAULT_MODEL, Settings, load_settings
from sevenfold.sim.profiles import load_profile
from sevenfold.sim.runner import BackgroundSimulator
from sevenfold.sim.server import SimConfig

console = Console()


@tool
def add(a: int, b: int) -> int:
    """Add two integers and return the sum."""
    return a + b


async def run_chat_tour(base_url: str | None = None, model: str | None = None, slots: int = 7) -> None:
    """Run the quickstart; starts (and stops) a simulator when no base URL is given."""
    simulator = None
    if base_url is None:
        simulator = BackgroundSimulator(
            SimConfig(profile=load_profile("h100-fp8"), max_num_seqs=slots, time_scale=4.0)
        ).start()
        base_url = simulator.base_url
        console.print(
            f"[bold]vLLM simulator[/bold] at {base_url}: H100 + FP8 profile, {slots} sequence slots, 4x time scale."
        )
        console.print(
            "[dim]Its replies come from the echo-tools policy, a script, not a model. Use --base-url for a real vLLM server.[/dim]"
        )
    try:
        endpoint = {"base_url": base_url, "slots": slots, "model": model or DEFAULT_MODEL}
        settings = load_settings(endpoints={"default": endpoint})
        info = await check_endpoint(settings.endpoints["default"])
        console.print(f"server serves {', '.join(info.models)}{' (simulator)' if info.simulator else ''}\n")
        await _streamed_chat(settings)
        await _tool_call(settings)
        await _slots(settings, requests=3 * slots)
    finally:
        if simulator is not None:
            simulator.stop()


async def _streamed_chat(settings: Settings) -> None:
    worker = chat_model(settings, "worker")
    console.print("[bold]1. A streamed reply[/bold]")
    text = ""
    async for chunk in worker.astream([HumanMessage("Hello from sevenfold: this sentence comes back token by token.")]):
        text += str(chunk.content)
    console.print(f"   {text}\n")


async def _tool_call(settings: Settings) -> None:
    worker = chat_model(settings, "worker").bind_tools([add])
    console.print("[bold]2. A tool call, typed by the tool's schema[/bold]")
    messages: list[BaseMessage] = [
        HumanMessage("Use the add tool: " + json.dumps({"tool": "add", "arguments": {"a": 2, "b": 40}}))
    ]
    reply = await worker.ainvoke(messages)
    for call in reply.tool_calls:
        result = add.invoke(call["args"])
        console.print(f"   model called {call['name']}({call['args']}) -> {result}")
        messages += [reply, ToolMessage(str(result), tool_call_id=call["id"] or "")]
    final = await worker.ainvoke(messages)
    console.print(f"   model's answer after the tool: {final.content}\n")


async def _slots(settings: Settings, requests: int) -> None:
    worker = chat_model(settings, "worker")
    limiter = worker.limiter
    assert limiter is not None
    before = limiter.snapshot()
    console.print(f"[bold]3. {requests} requests at once, {before.slots} slots[/bold]")
    started = time.monotonic()
    prompt = "Summarise the repository layout. " * 40
    await asyncio.gather(*(worker.ainvoke([HumanMessage(f"{prompt} (request {i})")]) for i in range(requests)))
    after = limiter.snapshot()
    table = Table()
    for column in ("requests", "wall time", "peak in flight", "slot occupancy", "retries"):
        table.add_column(column)
    table.add_row(
        str(requests),
        f"{time.monotonic() - started:.2f} s",
        f"{after.peak_in_flight} / {after.slots}",
        f"{after.occupancy_since(before):.0%}",
        str(worker.stats.retries),
    )
    console.print(table)
