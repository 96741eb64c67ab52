"""What the worker's client puts on the wire: the same bytes through `extra_body`, a priority, context-length 400s.

A local aiohttp server records the raw request bodies, so the comparison is byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from aiohttp import web
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from sevenfold.errors import ContextTooLongError
from sevenfold.llm.chat import SevenfoldChatOpenAI
from sevenfold.llm.retry import context_too_long
from sevenfold.sim.runner import free_port

LIMIT_ONLY = (
    "This model's maximum context length is 32768 tokens. However, your request has 33001 input tokens. "
    "Please reduce the length of the input messages."
)
WITH_MAX_TOKENS = (
    "'max_tokens' or 'max_completion_tokens' is too large: 4096. This model's maximum context length is 32768 "
    "tokens and your request has 30000 input tokens (4096 > 32768 - 30000)."
)


@dataclass
class Capture:
    base_url: str
    bodies: list[bytes] = field(default_factory=list)
    refuse_with: str | None = None


def _reply() -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


@pytest.fixture
async def capture() -> AsyncIterator[Capture]:
    port = free_port()
    state = Capture(f"http://127.0.0.1:{port}/v1")

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.bodies.append(body)
        if state.refuse_with is not None:
            error = {"object": "error", "message": state.refuse_with, "type": "BadRequestError", "code": 400}
            return web.json_response(error, status=400)
        if json.loads(body).get("stream"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            chunk = {**_reply(), "object": "chat.completion.chunk", "usage": None}
            chunk["choices"] = [{"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]
            await response.write(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode())
            return response
        return web.json_response(_reply())

    app = web.Application()
    app.add_routes([web.post("/v1/chat/completions", chat)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield state
    await runner.cleanup()


@tool
def view_file(path: str, start_line: int | None = None, end_line: int | None = None) -> str:
    """Show a file with line numbers."""
    return path


def _client(cls: type[ChatOpenAI], capture: Capture, stream: bool) -> ChatOpenAI:
    return cls(
        model="m",
        base_url=capture.base_url,
        api_key="EMPTY",
        temperature=0.7,
        top_p=0.8,
        max_completion_tokens=256,
        max_retries=0,
        streaming=stream,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}, "top_k": 20, "repetition_penalty": 1.05},
    )


def _transcript() -> list[AnyMessage]:
    """A worker's first turns, each message with an id (as the worker's are)."""
    call = {"name": "view_file", "args": {"path": "app.py", "start_line": 3}, "id": "c1"}
    return [
        SystemMessage('You are a worker. Ünïcode, "quotes", tabs\t and <tags>.', id="s"),
        HumanMessage("Fix app.py", id="h"),
        AIMessage("", tool_calls=[call], id="a"),
        ToolMessage("1\tx = 1\n2\ty = [1, 2]\n", tool_call_id="c1", name="view_file", id="t"),
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_the_transcript_sent_through_extra_body_is_byte_identical(capture: Capture, stream: bool) -> None:
    transcript = _transcript()
    longer = [*transcript, AIMessage("done", id="a2"), HumanMessage("and now?", id="h2")]
    for cls in (ChatOpenAI, SevenfoldChatOpenAI):
        client = _client(cls, capture, stream).bind_tools([view_file])
        await client.ainvoke(transcript)
        await client.ainvoke(longer)  # the next turn: earlier messages' request form comes from the client's cache
    plain, plain_next, ours, ours_next = capture.bodies
    assert ours == plain and ours_next == plain_next
    assert json.loads(ours)["messages"][3]["content"] == "1\tx = 1\n2\ty = [1, 2]\n"


async def test_a_priority_goes_out_as_vllms_request_field_beside_the_other_extras(capture: Capture) -> None:
    client = _client(SevenfoldChatOpenAI, capture, False)
    await client.ainvoke(_transcript(), priority=3)
    await client.ainvoke(_transcript())
    with_priority, without = (json.loads(b) for b in capture.bodies)
    assert with_priority["priority"] == 3 and with_priority["top_k"] == 20
    assert "priority" not in without
    assert client.extra_body is not None and "priority" not in client.extra_body  # the client is not changed


async def test_structured_output_requests_keep_the_typed_fields(capture: Capture) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        value: int

    client = _client(SevenfoldChatOpenAI, capture, False)
    with pytest.raises(Exception):  # noqa: B017 - the canned reply is not JSON; only the request matters here
        await client.with_structured_output(Answer).ainvoke([HumanMessage("give 1")])
    body = json.loads(capture.bodies[0])
    assert body["messages"] == [{"content": "give 1", "role": "user"}] and "response_format" in body


@pytest.mark.parametrize("message", [LIMIT_ONLY, WITH_MAX_TOKENS, LIMIT_ONLY + " None", WITH_MAX_TOKENS + " None"])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_context_length_400_is_raised_typed_and_never_retried(
    capture: Capture, message: str, stream: bool
) -> None:
    capture.refuse_with = message
    client = _client(SevenfoldChatOpenAI, capture, stream)
    client.retry_attempts = 3
    with pytest.raises(ContextTooLongError) as raised:
        await client.ainvoke(_transcript())
    assert len(capture.bodies) == 1
    assert raised.value.limit == 32768
    assert raised.value.input_tokens in (33001, 30000)
    assert client.stats.retries == 0 and client.stats.failures == 1


def test_other_bad_requests_are_not_taken_for_context_overflows() -> None:
    response = _fake_response(400)
    other = openai.BadRequestError(
        "Error code: 400 - {'message': 'top_k must be positive'}", response=response, body=None
    )
    assert context_too_long(other) is None
    overflow = openai.BadRequestError(
        f"Error code: 400 - {{'message': \"{LIMIT_ONLY}\"}}", response=response, body=None
    )
    assert context_too_long(overflow) is not None


def _fake_response(status: int) -> Any:
    import httpx

    return httpx.Response(status, request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))
