"""`POST /v1/completions`, as vLLM 0.11's `serving_completion.py` answers it (the default backend of `vllm bench serve`).

The prompt is a string, a list of strings, a list of token ids or a list of
lists of them, and is counted with the simulator's tokenizer, no chat template
added. What the "model" writes is the policy's reply to the prompt as one user
message (its text only: no thinking, no tool calls). As in vLLM, `max_tokens`
defaults to 16, each prompt gets `n` choices (index = prompt x n + choice), and
a refused request's message carries no trailing " None" (that is chat's).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sevenfold.sim.exchange import Choice, Exchange
from sevenfold.sim.faults import FaultDraw
from sevenfold.sim.fields import COMPLETION_FIELDS
from sevenfold.sim.logprobs import completion_logprobs
from sevenfold.sim.output import CONTENT, Output, OutputAssembler, dumps
from sevenfold.sim.plan import Sampling, plan_choice
from sevenfold.sim.policies import ChatRequest
from sevenfold.sim.tokens import tokenize
from sevenfold.sim.validation import (
    RequestError,
    check_fields,
    check_priority,
    check_sampling,
    context_error,
    invalid,
    read_json,
    refused,
    value_error,
)

if TYPE_CHECKING:
    from sevenfold.sim.server import Simulator

DEFAULT_MAX_TOKENS = 16
"""`CompletionRequest.max_tokens`' default in vLLM (chat's is the rest of the context)."""


def _prompts(sim: Simulator, body: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Each prompt's text and tokens; token ids count one token each (their text if this simulator made them)."""
    prompt = body.get("prompt")
    if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt)):
        prompt = [prompt]
    if not isinstance(prompt, list) or not prompt:
        raise value_error(body, "Either prompt or prompt_embeds must be provided and non-empty.")
    out = []
    for item in prompt:
        if isinstance(item, str):
            out.append((item, tokenize(item)))
        elif isinstance(item, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in item):
            try:
                text = sim.vocabulary.text(item)
            except KeyError:
                text = ""
            out.append((text, [f"<id:{i}>" for i in item]))
        else:
            message = "Input should be a valid string"
            raise invalid([{"type": "string_type", "loc": ("body", "prompt", "str"), "msg": message, "input": item}])
    return out


async def completions(sim: Simulator, request: web.Request) -> web.StreamResponse:
    """Answer one `/v1/completions` request."""
    try:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise invalid([{"type": "model_attributes_type", "loc": ("body",), "msg": "Input should be an object"}])
        if body.get("stream_options") and not body.get("stream"):
            raise value_error(body, "Stream options can only be defined when `stream=True`.")
        check_fields(body, COMPLETION_FIELDS, ())
        model = sim.served_model(body)
        prompts = _prompts(sim, body)
        asked = body.get("max_tokens", DEFAULT_MAX_TOKENS)
        for _, tokens in prompts:
            if message := context_error(sim.max_model_len, len(tokens), asked):
                raise refused(message)
        longest = max(len(tokens) for _, tokens in prompts)
        max_tokens = min(sim.max_model_len - longest, sim.max_model_len if asked is None else asked)
        check_sampling(body, max_tokens, body.get("logprobs"))
        check_priority(body.get("priority") or 0, sim.config.scheduling_policy)
        fault = sim.faults.draw(body)
        sim.refuse_if_http_fault(fault)
        exchange = Exchange(f"cmpl-{uuid.uuid4().hex}", model, body, fault, max_tokens, body.get("logprobs"))
        outputs = [(_write(sim, exchange, text), tokens) for text, tokens in prompts]
    except RequestError as exc:
        return exc.response()
    sampling = Sampling.from_body(body, max_tokens)
    for output, tokens in outputs:
        plans = []
        for _ in range(body.get("n") or 1):
            plan = plan_choice(output, sampling, fault)
            plans.append((plan, OutputAssembler(plan.output, [], False, False)))
        sim.start(exchange, tokens, plans)
    prompt_texts = [text for text, _ in prompts for _ in range(body.get("n") or 1)]
    try:
        if exchange.stream:
            return await _stream(request, exchange, prompt_texts)
        return await _complete(request, exchange, prompt_texts)
    finally:
        sim.end(exchange)


def _write(sim: Simulator, exchange: Exchange, prompt: str) -> Output:
    """What the model writes after `prompt`: the text of the policy's reply to it as a user message."""
    chat = ChatRequest(exchange.request_id, exchange.model, [{"role": "user", "content": prompt}], [], "none", None, {})
    reply = sim.ask_policy(chat)
    pieces = tokenize(reply.content)
    return Output(pieces, [CONTENT] * len(pieces))


def _usage(exchange: Exchange, n: int) -> dict[str, Any]:
    prompt = sum(c.seq.prompt_tokens for c in exchange.choices if c.index % n == 0)
    completion = sum(c.seq.generated for c in exchange.choices)
    return {"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion}


def _text(choice: Choice, upto: int, echo: str) -> str:
    delta = choice.assembler.feed(upto)
    return echo + delta.get("content", "")


def _logprobs(exchange: Exchange, choice: Choice, upto: int, offset: int) -> dict[str, Any] | None:
    if exchange.top_logprobs is None:
        return None
    start, tokens = choice.unsent_tokens(upto)
    return completion_logprobs(tokens, start, exchange.top_logprobs, offset)


async def _complete(request: web.Request, exchange: Exchange, prompts: list[str]) -> web.StreamResponse:
    await _stall(exchange.fault)
    await exchange.wait_all()
    if exchange.fault.drop:
        exchange.drop(request)
        return web.Response(status=500)
    echo = bool(exchange.body.get("echo"))
    choices = []
    for choice in exchange.choices:
        prefix = prompts[choice.index] if echo else ""
        text = _text(choice, choice.released, prefix)
        logprobs = _logprobs(exchange, choice, choice.released, len(prefix))
        choices.append({"index": choice.index, "text": text, "logprobs": logprobs, "finish_reason": choice.plan.finish})
        choices[-1] |= {"stop_reason": choice.plan.stop_reason, "prompt_logprobs": None}
    n = exchange.body.get("n") or 1
    data = {"id": exchange.request_id, "object": "text_completion", "created": exchange.created}
    data |= {"model": exchange.model, "choices": choices, "service_tier": None, "system_fingerprint": None}
    data |= {"usage": {**_usage(exchange, n), "prompt_tokens_details": None}, "kv_transfer_params": None}
    return web.Response(text=dumps(data), content_type="application/json")


async def _stream(request: web.Request, exchange: Exchange, prompts: list[str]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    base = {"id": exchange.request_id, "object": "text_completion", "created": exchange.created}
    base["model"] = exchange.model
    echo = bool(exchange.body.get("echo"))
    offsets = [len(prompts[c.index]) if echo else 0 for c in exchange.choices]
    echoed: set[int] = set()

    async def send(choice: Choice, upto: int, finish: str | None = None) -> None:
        prefix = prompts[choice.index] if echo and choice.index not in echoed else ""
        echoed.add(choice.index)
        text = _text(choice, upto, prefix)
        if not text and finish is None:
            return
        logprobs = _logprobs(exchange, choice, upto, offsets[choice.index])
        offsets[choice.index] += len(text) - len(prefix)
        stop_reason = choice.plan.stop_reason if finish else None
        data = {"index": choice.index, "text": text, "logprobs": logprobs, "finish_reason": finish}
        chunk = {**base, "choices": [{**data, "stop_reason": stop_reason}], "usage": None}
        await response.write(f"data: {dumps(chunk)}\n\n".encode())

    drop_at = exchange.drop_at
    try:
        await _stall(exchange.fault)
        pending = list(exchange.choices)
        while pending:
            await exchange.wait_any(pending)
            for choice in list(pending):
                if drop_at is not None and choice.index == 0 and choice.released >= drop_at:
                    await send(choice, drop_at)
                    exchange.drop(request)
                    return response
                if choice.seq.done:
                    await send(choice, choice.released, choice.plan.finish)
                    pending.remove(choice)
                else:
                    await send(choice, choice.released)
        if exchange.include_usage:
            chunk = {**base, "choices": [], "usage": _usage(exchange, exchange.body.get("n") or 1)}
            await response.write(f"data: {dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the client went away; the server aborts the sequences
    return response


async def _stall(fault: FaultDraw) -> None:
    if fault.stall_s:
        await asyncio.sleep(fault.stall_s)
