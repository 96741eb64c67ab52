"""The simulator answers as vLLM 0.11's OpenAI-compatible server does, seen through the real `openai` SDK and raw HTTP.

Each test is one row of the conformance table in docs/tool-calls.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from sevenfold.sim.runner import BackgroundSimulator

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "edit",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "line": {"type": "integer"}, "force": {"type": "boolean"}},
                "required": ["path", "line"],
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "view", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}},
    },
]
USER: list[Any] = [{"role": "user", "content": "alpha beta gamma delta"}]


def _sdk(sim: BackgroundSimulator) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=sim.base_url, api_key="EMPTY", max_retries=0, timeout=30)


async def _post(sim: BackgroundSimulator, path: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
    url = sim.base_url.removesuffix("/v1") + path
    async with aiohttp.ClientSession() as session, session.post(url, json=body, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def _sse(sim: BackgroundSimulator, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    chunks = []
    async with aiohttp.ClientSession() as session, session.post(sim.base_url + path, json=body) as response:
        assert response.status == 200
        async for raw in response.content:
            line = raw.strip()
            if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
                chunks.append(json.loads(line[5:]))
            elif line == b"data: [DONE]":
                chunks.append({"done": True})
    return chunks


async def _metrics(sim: BackgroundSimulator) -> str:
    async with aiohttp.ClientSession() as session, session.get(sim.base_url.removesuffix("/v1") + "/metrics") as r:
        return await r.text()


# --- tool_choice ---------------------------------------------------------------------------------------------------


async def test_required_tool_choice_turns_a_plain_reply_into_a_call_to_the_first_tool(sim: BackgroundSimulator) -> None:
    client = _sdk(sim)
    reply = await client.chat.completions.create(model=sim.model, messages=USER, tools=TOOLS, tool_choice="required")
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == ""
    calls: list[Any] = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("edit", {"path": "", "line": 0})]


@pytest.mark.parametrize("stream", [False, True])
async def test_named_tool_choice_calls_that_function_with_the_replys_arguments(
    sim: BackgroundSimulator, stream: bool
) -> None:
    asked = [
        {"tool": "view", "arguments": {"path": "a.py"}},
        {"tool": "edit", "arguments": {"path": "b.py", "line": 3}},
    ]
    body = {"model": sim.model, "messages": [{"role": "user", "content": json.dumps(asked)}], "tools": TOOLS}
    body |= {"tool_choice": {"type": "function", "function": {"name": "edit"}}}
    if not stream:
        reply = await _sdk(sim).chat.completions.create(**body)
        calls = reply.choices[0].message.tool_calls or []
        assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.content == ""
        assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("edit", asked[1]["arguments"])]
        return
    chunks = [c async for c in await _sdk(sim).chat.completions.create(**body, stream=True)]
    deltas = [d for c in chunks for d in c.choices[0].delta.tool_calls or []]
    assert deltas[0].function and deltas[0].function.name == "edit" and deltas[0].id
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == asked[1]["arguments"]
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "delete"}}},
            "The tool specified in `tool_choice` does not match any of the specified `tools`",
        ),
        ({"tool_choice": "required"}, "When using `tool_choice`, `tools` must be set."),
        (
            {"tools": [], "tool_choice": {"type": "function", "function": {"name": "edit"}}},
            "The tool specified in `tool_choice` does not match any of the specified `tools`",
        ),
        ({"tools": TOOLS, "tool_choice": "sometimes"}, "Invalid value for `tool_choice`: sometimes!"),
    ],
)
async def test_impossible_tool_choices_are_400_with_vllms_words(
    sim: BackgroundSimulator, extra: dict[str, Any], says: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await _sdk(sim).chat.completions.create(model=sim.model, messages=USER, **extra)
    error = caught.value.body
    assert isinstance(error, dict) and says in error["message"] and error["type"] == "Bad Request"


async def test_required_with_no_tools_answers_as_none(sim: BackgroundSimulator) -> None:
    reply = await _sdk(sim).chat.completions.create(model=sim.model, messages=USER, tools=[], tool_choice="required")
    assert reply.choices[0].message.content == USER[0]["content"] and not reply.choices[0].message.tool_calls


# --- stop, logprobs, n ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("include", "content"), [(False, "alpha beta"), (True, "alpha beta gamma")])
@pytest.mark.parametrize("stream", [False, True])
async def test_stop_strings_end_the_content(
    sim: BackgroundSimulator, include: bool, content: str, stream: bool
) -> None:
    body = {"model": sim.model, "messages": USER, "stop": [" gamma", "zzz"], "include_stop_str_in_output": include}
    if stream:
        chunks = await _sse(sim, "/chat/completions", {**body, "stream": True})
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c.get("choices"))
        last = next(c["choices"][0] for c in reversed(chunks) if c.get("choices"))
    else:
        status, data = await _post(sim, "/v1/chat/completions", body)
        assert status == 200
        last = data["choices"][0]
        text = last["message"]["content"]
    assert text == content
    assert (last["finish_reason"], last["stop_reason"]) == ("stop", " gamma")


async def test_logprobs_are_well_formed_and_deterministic(sim: BackgroundSimulator) -> None:
    client = _sdk(sim)
    replies = [
        await client.chat.completions.create(model=sim.model, messages=USER, logprobs=True, top_logprobs=3)
        for _ in range(2)
    ]
    content = replies[0].choices[0].logprobs and replies[0].choices[0].logprobs.content
    assert content and "".join(t.token for t in content) == replies[0].choices[0].message.content
    for entry in content:
        assert entry.logprob <= 0 and entry.bytes == list(entry.token.encode())
        assert len(entry.top_logprobs) == 3 and entry.top_logprobs[0].token == entry.token
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob >= entry.top_logprobs[2].logprob
    assert replies[1].choices[0].logprobs == replies[0].choices[0].logprobs
    plain = await client.chat.completions.create(model=sim.model, messages=USER)
    assert plain.choices[0].logprobs is None


@pytest.mark.parametrize("stream", [False, True])
async def test_n_gives_n_choices(sim: BackgroundSimulator, stream: bool) -> None:
    client = _sdk(sim)
    one = await client.chat.completions.create(model=sim.model, messages=USER)
    if not stream:
        three = await client.chat.completions.create(model=sim.model, messages=USER, n=3)
        assert [c.index for c in three.choices] == [0, 1, 2]
        assert {c.message.content for c in three.choices} == {one.choices[0].message.content}
        assert three.usage and one.usage and three.usage.completion_tokens == 3 * one.usage.completion_tokens
        assert three.usage.prompt_tokens == one.usage.prompt_tokens
        return
    body = {"model": sim.model, "messages": USER, "n": 2, "stream": True, "stream_options": {"include_usage": True}}
    chunks = await _sse(sim, "/chat/completions", body)
    texts = {i: "" for i in (0, 1)}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            texts[choice["index"]] += choice["delta"].get("content", "")
    assert texts == {0: one.choices[0].message.content, 1: one.choices[0].message.content}
    assert one.usage and chunks[-2]["usage"]["completion_tokens"] == 2 * one.usage.completion_tokens


# --- /v1/completions, /tokenize, /detokenize, routes ---------------------------------------------------------------


async def test_completions_through_the_sdk_string_and_list_prompts(sim: BackgroundSimulator) -> None:
    client = _sdk(sim)
    one = await client.completions.create(model=sim.model, prompt="the quick brown fox", max_tokens=64)
    assert one.object == "text_completion" and one.choices[0].text == "the quick brown fox"
    assert one.choices[0].finish_reason == "stop" and one.usage and one.usage.prompt_tokens == 4
    short = await client.completions.create(model=sim.model, prompt="the quick brown fox")  # vLLM's default: 16
    assert short.usage and short.usage.completion_tokens <= 16
    two = await client.completions.create(model=sim.model, prompt=["one two", "three"], max_tokens=8, n=2)
    assert [(c.index, c.text) for c in two.choices] == [(0, "one two"), (1, "one two"), (2, "three"), (3, "three")]
    limited = await client.completions.create(model=sim.model, prompt="a b c d e f g h", max_tokens=3)
    assert limited.choices[0].finish_reason == "length" and limited.usage and limited.usage.completion_tokens == 3


async def test_completions_take_what_vllm_bench_serve_sends(sim: BackgroundSimulator) -> None:
    # The body of vllm/benchmarks/lib/endpoint_request_func.py's async_request_openai_completions.
    body = {"model": sim.model, "prompt": "hello " * 20, "repetition_penalty": 1.0, "max_tokens": 24, "logprobs": None}
    body |= {"stream": True, "stream_options": {"include_usage": True}, "ignore_eos": True, "temperature": 0.0}
    chunks = await _sse(sim, "/completions", body)
    assert chunks[-1] == {"done": True}
    text_chunks = [c for c in chunks if c.get("choices")]
    assert text_chunks and all(c["choices"][0]["text"] for c in text_chunks)  # no role-only chunk, as vLLM
    assert text_chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-2]["choices"] == [] and chunks[-2]["usage"]["completion_tokens"] == 24


async def test_tokenize_and_detokenize_round_trip(sim: BackgroundSimulator) -> None:
    status, tokens = await _post(sim, "/tokenize", {"prompt": "def f(x): return x", "return_token_strs": True})
    assert status == 200 and tokens["count"] == len(tokens["tokens"]) == len(tokens["token_strs"])
    assert "".join(tokens["token_strs"]) == "def f(x): return x" and tokens["max_model_len"] > 0
    status, text = await _post(sim, "/detokenize", {"tokens": tokens["tokens"]})
    assert (status, text) == (200, {"prompt": "def f(x): return x"})
    status, chat = await _post(sim, "/tokenize", {"messages": USER})
    reply = await _sdk(sim).chat.completions.create(model=sim.model, messages=USER)
    assert status == 200 and reply.usage and chat["count"] == reply.usage.prompt_tokens
    status, error = await _post(sim, "/detokenize", {"tokens": [12345]})
    assert status == 400 and "never produced" in error["error"]["message"]


async def test_unknown_routes_and_wrong_methods_answer_fastapis_json(sim: BackgroundSimulator) -> None:
    root = sim.base_url.removesuffix("/v1")
    async with aiohttp.ClientSession() as session:
        async with session.post(root + "/generate", json={}) as response:
            assert (response.status, await response.json()) == (404, {"detail": "Not Found"})
        async with session.get(sim.base_url + "/chat/completions") as response:
            assert (response.status, await response.json()) == (405, {"detail": "Method Not Allowed"})


# --- errors ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "kind", "says"),
    [
        ("hi", {"Content-Type": "text/plain"}, "Bad Request", "Unsupported Media Type: Only 'application/json'"),
        ({"temperature": -1}, None, "BadRequestError", "temperature must be non-negative, got -1.0."),
        ({"stream_options": {"include_usage": True}}, None, "Bad Request", "Stream options can only be defined when"),
        ({"top_logprobs": 2}, None, "Bad Request", "when using `top_logprobs`, `logprobs` must be set to true."),
        ({"max_tokens": "many"}, None, "Bad Request", "'loc': ('body', 'max_tokens'), 'msg': 'Input should be a valid"),
        ({"top_logprobs": 21, "logprobs": True}, None, "BadRequestError", "greater than max allowed: 20"),
        ({"n": 0}, None, "BadRequestError", "n must be at least 1, got 0."),
    ],
)
async def test_invalid_requests_are_400_as_vllm_words_them(
    sim: BackgroundSimulator, body: Any, headers: dict[str, str] | None, kind: str, says: str
) -> None:
    url = sim.base_url + "/chat/completions"
    payload = body if isinstance(body, str) else json.dumps({"model": sim.model, "messages": USER, **body})
    headers = headers or {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session, session.post(url, data=payload, headers=headers) as r:
        status, error = r.status, (await r.json())["error"]
    assert status == 400 and error["code"] == 400 and error["type"] == kind and error["param"] is None
    assert says in error["message"]


async def test_context_length_is_enforced_with_vllms_two_messages(
    start_sim: Callable[..., BackgroundSimulator],
) -> None:
    sim = start_sim(max_model_len=64)
    client = _sdk(sim)
    fits = await client.chat.completions.create(
        model=sim.model, messages=USER, extra_body={"ignore_eos": True}
    )  # no max_tokens: vLLM gives it the rest of the context
    assert fits.usage and fits.usage.prompt_tokens + fits.usage.completion_tokens == 64
    assert fits.choices[0].finish_reason == "length"
    prompt = fits.usage.prompt_tokens
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=sim.model, messages=USER, max_tokens=60)
    assert caught.value.body == {
        "message": f"'max_tokens' or 'max_completion_tokens' is too large: 60. This model's maximum context length "
        f"is 64 tokens and your request has {prompt} input tokens (60 > 64 - {prompt}). None",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    long: list[Any] = [{"role": "user", "content": "word " * 100}]
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=sim.model, messages=long)
    message = caught.value.body["message"]  # type: ignore[index]
    assert re.fullmatch(
        r"This model's maximum context length is 64 tokens\. However, your request has \d+ input tokens\. "
        r"Please reduce the length of the input messages\. None",
        message,
    )


# --- response shape -------------------------------------------------------------------------------------------------


async def test_response_shape_matches_vllms_dump(start_sim: Callable[..., BackgroundSimulator]) -> None:
    sim = start_sim()
    status, data = await _post(sim, "/v1/chat/completions", {"model": sim.model, "messages": USER})
    message = data["choices"][0]["message"]
    assert status == 200 and message["tool_calls"] == [] and message["reasoning_content"] is None
    assert data["usage"]["prompt_tokens_details"] is None  # vLLM without --enable-prompt-tokens-details
    chunks = await _sse(sim, "/chat/completions", {"model": sim.model, "messages": USER, "stream": True})
    assert not any("tool_calls" in c["choices"][0]["delta"] for c in chunks if c.get("choices"))
    detailed = start_sim(enable_prompt_tokens_details=True)
    long = [{"role": "system", "content": "shared prefix " * 100}, *USER]
    for _ in range(2):
        status, data = await _post(detailed, "/v1/chat/completions", {"model": detailed.model, "messages": long})
    assert data["usage"]["prompt_tokens_details"]["cached_tokens"] > 0


# --- priority -------------------------------------------------------------------------------------------------------


async def test_priority_is_refused_unless_the_server_schedules_by_priority(
    start_sim: Callable[..., BackgroundSimulator],
) -> None:
    fcfs = start_sim()
    with pytest.raises(openai.BadRequestError) as caught:
        await _sdk(fcfs).chat.completions.create(model=fcfs.model, messages=USER, extra_body={"priority": 1})
    assert caught.value.body["message"] == "Got priority 1 but Priority scheduling is not enabled."  # type: ignore[index]
    await _sdk(fcfs).chat.completions.create(model=fcfs.model, messages=USER, extra_body={"priority": 0})
    ranked = start_sim(scheduling_policy="priority")
    reply = await _sdk(ranked).chat.completions.create(model=ranked.model, messages=USER, extra_body={"priority": -3})
    assert reply.choices[0].message.content == USER[0]["content"]
    assert ranked.simulator.requests[-1]["priority"] == -3


# --- /metrics -------------------------------------------------------------------------------------------------------


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} missing from /metrics")


async def test_metrics_count_each_ending_and_observe_vllms_per_request_histograms(
    start_sim: Callable[..., BackgroundSimulator],
) -> None:
    sim = start_sim(profile="h100-fp8", time_scale=1.0)  # timed, so a stream can be left half-way
    client = _sdk(sim)
    await client.chat.completions.create(model=sim.model, messages=USER)
    await client.chat.completions.create(model=sim.model, messages=USER, max_tokens=2)
    body = {"model": sim.model, "messages": USER, "stream": True, "max_tokens": 2000, "ignore_eos": True}
    async with aiohttp.ClientSession() as session, session.post(sim.base_url + "/chat/completions", json=body) as r:
        async for raw in r.content:
            if b'"content":"alpha' in raw:
                r.close()  # leave after the first token: the server aborts the request
                break
    text = await _metrics(sim)
    for _ in range(2000):  # until the server has noticed (a write to the closed connection fails)
        if _sample(text, "vllm:request_success_total", finished_reason="abort") == 1:
            break
        text = await _metrics(sim)
    for reason, count in (("stop", 1), ("length", 1), ("abort", 1), ("error", 0)):
        assert _sample(text, "vllm:request_success_total", finished_reason=reason) == count
    assert _sample(text, "vllm:e2e_request_latency_seconds_count") == 3
    for name in ("e2e_request_latency", "request_queue_time", "request_inference_time", "request_prefill_time"):
        assert _sample(text, f"vllm:{name}_seconds_bucket", le="0.3") >= 0
        assert _sample(text, f"vllm:{name}_seconds_bucket", le="7680.0") == 3
    assert _sample(text, "vllm:request_decode_time_seconds_count") == 3
    assert _sample(text, "vllm:request_params_max_tokens_bucket", le="2.0") == 1  # the max_tokens=2 request
    assert _sample(text, "vllm:request_params_n_count") == 3
    assert _sample(text, "vllm:request_generation_tokens_sum") > 2
    assert _sample(text, "vllm:request_prompt_tokens_count") == 3
    assert _sample(text, "vllm:iteration_tokens_total_count") > 3
    assert _sample(text, "vllm:num_preemptions_total") == 0
    profile = sim.config.profile
    blocks = str(profile.kv_cache_tokens // profile.block_size)
    info = _sample(text, "vllm:cache_config_info", block_size="16", num_gpu_blocks=blocks, enable_prefix_caching="True")
    assert info == 1
