"""Per-role ChatOpenAI clients: thinking flags, thinking kept out of content, slots, retries."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from sevenfold.errors import ModelNotServedError, ServerUnreachableError
from sevenfold.llm.chat import SevenfoldChatOpenAI, is_retryable
from sevenfold.llm.factory import chat_model, check_endpoint, role_models
from sevenfold.settings import Settings
from sevenfold.sim.faults import FaultSpec
from sevenfold.sim.runner import BackgroundSimulator
from tests.waiting import DEADLINE_S, await_until

SettingsFor = Callable[..., Settings]


async def test_thinking_flag_reaches_the_server_for_planner_and_reviewer_not_worker(
    sim: BackgroundSimulator, settings_for: SettingsFor
) -> None:
    models = role_models(settings_for(sim))
    for role in ("planner", "worker", "reviewer"):
        await models[role].ainvoke([HumanMessage(f"hello from the {role}")])
    sent = {r["hints"]["role"]: r["enable_thinking"] for r in sim.simulator.requests}
    assert sent == {"planner": True, "worker": False, "reviewer": True}


async def test_asking_a_coder_model_to_think_warns_once(
    sim: BackgroundSimulator, settings_for: SettingsFor, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(sim, model="Qwen/Qwen3-Coder-30B-A3B-Instruct")
    with caplog.at_level(logging.WARNING, logger="sevenfold.llm.factory"):
        chat_model(settings, "reviewer")
        chat_model(settings, "reviewer")
    warnings = [r.getMessage() for r in caplog.records if "no thinking mode" in r.getMessage()]
    assert len(warnings) <= 1  # once per process: an earlier test may already have said it
    reply = await chat_model(settings, "reviewer").ainvoke([HumanMessage("review this")])
    assert reply.content == "review this" and "reasoning_content" not in reply.additional_kwargs


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("parser", [False, True])
async def test_thinking_text_is_kept_out_of_content(
    start_sim: Callable[..., BackgroundSimulator], settings_for: SettingsFor, stream: bool, parser: bool
) -> None:
    sim = start_sim(model="Qwen/Qwen3-30B-A3B", model_kind="hybrid", reasoning_parser=parser)
    planner = chat_model(settings_for(sim), "planner")
    planner.streaming = stream
    reply = await planner.ainvoke([HumanMessage("the plan is simple")])
    assert reply.content == "the plan is simple"
    assert "<think>" not in str(reply.content)
    assert "[simulated reasoning" in reply.additional_kwargs["reasoning_content"]
    worker = chat_model(settings_for(sim), "worker")  # thinking off: nothing to strip
    plain = await worker.ainvoke([HumanMessage("just answer")])
    assert plain.content == "just answer" and "reasoning_content" not in plain.additional_kwargs


async def test_slot_limiter_keeps_server_queue_empty_and_slots_full(
    start_sim: Callable[..., BackgroundSimulator], settings_for: SettingsFor
) -> None:
    sim = start_sim(profile="h100-fp8", max_num_seqs=32, time_scale=4.0)
    worker = chat_model(settings_for(sim, slots=7), "worker")
    limiter = worker.limiter
    assert limiter is not None
    before = limiter.snapshot()
    await asyncio.gather(*(worker.ainvoke([HumanMessage(f"a modest reply number {i} " * 8)]) for i in range(21)))
    after = limiter.snapshot()
    assert after.peak_in_flight == 7 and after.granted - before.granted == 21
    assert sim.simulator.engine.peak_running == 7  # the server never saw more than the slots
    assert after.in_flight == 0 and after.waiting == 0
    # How full the slots stay is a figure of the machine's speed, not a behaviour: bench/occupancy.py measures it.


def test_sync_invoke_goes_through_the_same_slots(sim: BackgroundSimulator, settings_for: SettingsFor) -> None:
    worker = chat_model(settings_for(sim, slots=2), "worker")
    assert worker.invoke([HumanMessage("from a notebook")]).content == "from a notebook"
    assert worker.limiter is not None and worker.limiter.snapshot().granted >= 1 and worker.limiter.in_flight == 0


async def test_retries_recover_from_server_errors_and_are_counted(
    start_sim: Callable[..., BackgroundSimulator], settings_for: SettingsFor
) -> None:
    sim = start_sim(faults=[FaultSpec.parse("http5xx:0.5")], seed=3)
    worker = chat_model(settings_for(sim, worker={"max_retries": 8}), "worker")
    replies = await asyncio.gather(*(worker.ainvoke([HumanMessage(f"job {i}")]) for i in range(10)))
    assert [r.content for r in replies] == [f"job {i}" for i in range(10)]
    failed = sum(1 for r in sim.simulator.requests if r["status"] == 500)
    assert failed > 0 and worker.stats.retries == failed and worker.stats.failures == 0


async def test_retries_give_up_after_the_budget(
    start_sim: Callable[..., BackgroundSimulator], settings_for: SettingsFor
) -> None:
    sim = start_sim(faults=[FaultSpec.parse("http5xx:1")])
    worker = chat_model(settings_for(sim, worker={"max_retries": 2}), "worker")
    with pytest.raises(Exception, match="simulated server fault"):
        await worker.ainvoke([HumanMessage("doomed")])
    assert len(sim.simulator.requests) == 3 and worker.stats.failures == 1


@pytest.fixture
async def flaky_server() -> AsyncIterator[tuple[str, list[tuple[str, float]], dict[str, Any]]]:
    """An OpenAI-compatible stub: fails the first request with 503, can reject vLLM-only fields."""
    seen: list[tuple[str, float]] = []
    options: dict[str, Any] = {"fail_first": True, "strict": False}

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        text = body["messages"][-1]["content"]
        seen.append((text, time.monotonic()))
        if options["strict"] and ("top_k" in body or "chat_template_kwargs" in body):
            return web.json_response(
                {
                    "error": {
                        "message": "Unrecognized request argument supplied: top_k",
                        "type": "invalid_request_error",
                        "code": None,
                    }
                },
                status=400,
            )
        if options["fail_first"] and len(seen) == 1:
            return web.json_response(
                {"error": {"message": "busy", "type": "ServiceUnavailableError", "code": 503}}, status=503
            )
        await asyncio.sleep(0.05)
        message = {"role": "assistant", "content": text}
        return web.json_response(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", seen, options
    await runner.cleanup()


async def test_a_request_waiting_to_retry_does_not_hold_a_slot(
    flaky_server: tuple[str, list[tuple[str, float]], dict[str, Any]], settings_for: SettingsFor
) -> None:
    base_url, seen, _ = flaky_server
    # A backoff far longer than the test: "first" is still waiting to retry when "second" is done, whatever the load.
    worker = chat_model(settings_for(base_url, slots=1, worker={"retry_backoff": 60}), "worker")
    limiter = worker.limiter
    assert limiter is not None
    first = asyncio.create_task(worker.ainvoke([HumanMessage("first")]))
    try:
        await await_until(
            lambda: [text for text, _ in seen] == ["first"] and limiter.in_flight == 0,
            "the first request to be refused and to give its slot back while it waits to retry",
        )
        second = await asyncio.wait_for(worker.ainvoke([HumanMessage("second")]), DEADLINE_S)
        # With one slot, "second" was served while "first" slept before its retry.
        assert second.content == "second" and not first.done()
        assert [text for text, _ in seen] == ["first", "second"]
    finally:
        first.cancel()


async def test_vllm_only_fields_are_dropped_when_a_server_rejects_them(
    flaky_server: tuple[str, list[tuple[str, float]], dict[str, Any]],
    settings_for: SettingsFor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    base_url, seen, options = flaky_server
    options.update(strict=True, fail_first=False)
    planner = chat_model(settings_for(base_url), "planner")
    with caplog.at_level(logging.WARNING, logger="sevenfold.llm.chat"):
        reply = await planner.ainvoke([HumanMessage("works anyway")])
        again = await planner.ainvoke([HumanMessage("and again")])
    assert (reply.content, again.content) == ("works anyway", "and again")
    assert len(seen) == 3  # one rejection, then no more
    assert any("vLLM-only" in r.getMessage() for r in caplog.records)


async def test_endpoint_check_names_the_problem(sim: BackgroundSimulator, settings_for: SettingsFor) -> None:
    info = await check_endpoint(settings_for(sim).endpoints["default"])
    assert info.simulator and info.models == [sim.model]
    with pytest.raises(ModelNotServedError, match="does not serve 'no/such-model'"):
        await check_endpoint(settings_for(sim).endpoints["default"], "no/such-model")


async def test_an_unreachable_server_fails_within_the_connect_timeout(settings_for: SettingsFor) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = settings_for(f"http://127.0.0.1:{port}/v1")
    started = time.monotonic()
    with pytest.raises(ServerUnreachableError, match="no model server at"):
        await check_endpoint(settings.endpoints["default"])
    assert time.monotonic() - started < settings.endpoints["default"].connect_timeout + 1


@tool
def edit(path: str, line: int) -> str:
    """Edit a file at a line."""
    return "ok"


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_recovered_from_content_report_finish_reason_tool_calls(
    start_sim: Callable[..., BackgroundSimulator], settings_for: SettingsFor, stream: bool
) -> None:
    sim = start_sim(faults=[FaultSpec.parse("leak:1")])  # the server leaves the call in content, finish_reason "stop"
    worker = chat_model(settings_for(sim), "worker")
    worker.streaming = stream
    call = json.dumps({"tool": "edit", "arguments": {"path": "a.py", "line": 3}})
    reply = await worker.bind_tools([edit]).ainvoke([HumanMessage(call)])
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("edit", {"path": "a.py", "line": 3})]
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    assert reply.content == "" and worker.stats.tool_calls_recovered == 1


Script = list[str]
"""What the stub server does with each request, in order: "503", "ok", or "break" (one chunk, then hang up)."""


@pytest.fixture
async def scripted_server() -> AsyncIterator[tuple[str, Script, list[bool]]]:
    """An OpenAI-compatible stub that follows a script; records whether each request asked to stream."""
    script: Script = []
    seen: list[bool] = []

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
        return f"data: {json.dumps(body)}\n\n".encode()

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append(bool(body.get("stream")))
        action = script.pop(0) if script else "ok"
        if action == "503":
            return web.json_response({"error": {"message": "busy", "type": "Unavailable", "code": 503}}, status=503)
        if not body.get("stream"):
            message = {"role": "assistant", "content": "all of it"}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return web.json_response(
                {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]}
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk({"role": "assistant", "content": "all "}))
        if action == "break":
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(chunk({"content": "of it"}, "stop"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", script, seen
    await runner.cleanup()


def _read(model: SevenfoldChatOpenAI, mode: str, received: list[str]) -> str:
    """One request in `mode` (sync/async x invoke/stream); chunks that reached the caller go to `received`."""

    async def astream() -> None:
        async for piece in model.astream([HumanMessage("go")]):
            received.append(str(piece.content))

    model.streaming = "stream" in mode  # the factory sets it, and LangChain's stream() falls back to invoke on False
    if mode == "sync invoke":
        received.append(str(model.invoke([HumanMessage("go")]).content))
    elif mode == "sync stream":
        received.extend(str(piece.content) for piece in model.stream([HumanMessage("go")]))
    elif mode == "async invoke":
        received.append(str(asyncio.run(model.ainvoke([HumanMessage("go")])).content))
    else:
        asyncio.run(astream())
    return "".join(received)


MODES = ["sync invoke", "async invoke", "sync stream", "async stream"]


async def _read_on_this_loop(model: SevenfoldChatOpenAI, mode: str, received: list[str]) -> str:
    """`_read`, with the async modes on the test's own event loop (no loop torn down while a stream closes)."""
    if not mode.startswith("async"):
        return await asyncio.to_thread(_read, model, mode, received)
    model.streaming = "stream" in mode
    if mode == "async invoke":
        received.append(str((await model.ainvoke([HumanMessage("go")])).content))
    else:
        async for piece in model.astream([HumanMessage("go")]):
            received.append(str(piece.content))
    return "".join(received)


@pytest.mark.parametrize("mode", MODES)
async def test_every_path_retries_a_failed_request_once_and_counts_it(
    scripted_server: tuple[str, Script, list[bool]], settings_for: SettingsFor, mode: str
) -> None:
    base_url, script, seen = scripted_server
    script += ["503", "ok"]
    worker = chat_model(settings_for(base_url, worker={"retry_backoff": 0.01}), "worker")
    # Sync paths run in a thread so that this loop keeps serving the stub.
    assert await asyncio.to_thread(_read, worker, mode, []) == "all of it"
    assert len(seen) == 2 and set(seen) == {"stream" in mode}
    assert (worker.stats.requests, worker.stats.retries, worker.stats.failures) == (2, 1, 0)


@pytest.mark.parametrize("mode", ["sync stream", "async stream"])
async def test_a_stream_that_breaks_after_its_first_chunk_is_not_retried(
    scripted_server: tuple[str, Script, list[bool]], settings_for: SettingsFor, mode: str
) -> None:
    base_url, script, seen = scripted_server
    script += ["break", "ok"]
    worker = chat_model(settings_for(base_url, worker={"retry_backoff": 0.01}), "worker")
    received: list[str] = []
    with pytest.raises(Exception) as caught:
        await _read_on_this_loop(worker, mode, received)
    assert is_retryable(caught.value)  # retryable in itself, but the caller already has part of the reply
    assert "all " in received and len(seen) == 1
    assert (worker.stats.retries, worker.stats.failures) == (0, 1)


@pytest.mark.parametrize("mode", ["sync stream", "async stream"])
async def test_a_stream_that_fails_before_its_first_chunk_is_retried(
    scripted_server: tuple[str, Script, list[bool]], settings_for: SettingsFor, mode: str
) -> None:
    base_url, script, seen = scripted_server
    script += ["503", "503", "ok"]
    worker = chat_model(settings_for(base_url, worker={"retry_backoff": 0.01}), "worker")
    received: list[str] = []
    assert await asyncio.to_thread(_read, worker, mode, received) == "all of it"
    assert len(seen) == 3 and worker.stats.retries == 2
