"""Writing a chat completion, whole or as server-sent events, the way vLLM 0.11's `serving_chat.py` does."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from sevenfold.sim.exchange import Choice, Exchange, usage
from sevenfold.sim.logprobs import chat_logprobs
from sevenfold.sim.output import dumps


def _logprobs(exchange: Exchange, choice: Choice, upto: int) -> dict[str, Any] | None:
    if exchange.top_logprobs is None:
        return None
    start, tokens = choice.unsent_tokens(upto)
    return {"content": chat_logprobs(tokens, start, exchange.top_logprobs)}


async def complete_chat(request: web.Request, exchange: Exchange, prompt_tokens_details: bool) -> web.StreamResponse:
    """The whole response once every choice has finished."""
    if exchange.fault.stall_s:
        await asyncio.sleep(exchange.fault.stall_s)
    await exchange.wait_all()
    if exchange.fault.drop:
        exchange.drop(request)
        return web.Response(status=500)
    choices = []
    for choice in exchange.choices:
        choice.assembler.feed(choice.released)
        choice.assembler.finish()
        choices.append(
            {
                "index": choice.index,
                "message": choice.assembler.message(),
                "logprobs": _logprobs(exchange, choice, choice.released),
                "finish_reason": choice.finish_reason,
                "stop_reason": choice.plan.stop_reason,
                "token_ids": None,
            }
        )
    data = {
        "id": exchange.request_id,
        "object": "chat.completion",
        "created": exchange.created,
        "model": exchange.model,
        "choices": choices,
        "service_tier": None,
        "system_fingerprint": None,
        "usage": usage(exchange, prompt_tokens_details, stream=False),
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "kv_transfer_params": None,
    }
    return web.Response(text=dumps(data), content_type="application/json")


async def stream_chat(request: web.Request, exchange: Exchange, prompt_tokens_details: bool) -> web.StreamResponse:
    """Server-sent events: a role chunk per choice, deltas as the engine releases tokens, usage, `[DONE]`."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    base = {"id": exchange.request_id, "object": "chat.completion.chunk", "created": exchange.created}
    base["model"] = exchange.model

    async def send(choice: Choice, delta: dict[str, Any], upto: int, last: bool = False) -> None:
        data: dict[str, Any] = {"index": choice.index, "delta": delta, "logprobs": _logprobs(exchange, choice, upto)}
        data["finish_reason"] = choice.finish_reason if last else None
        if last:
            data["stop_reason"] = choice.plan.stop_reason
        await response.write(f"data: {dumps({**base, 'choices': [data]})}\n\n".encode())

    drop_at = exchange.drop_at
    try:
        for choice in exchange.choices:
            await send(choice, {"role": "assistant", "content": ""}, 0)
        if exchange.fault.stall_s:
            await asyncio.sleep(exchange.fault.stall_s)
        pending = list(exchange.choices)
        while pending:
            await exchange.wait_any(pending)
            for choice in list(pending):
                upto = choice.released
                if drop_at is not None and choice.index == 0 and upto >= drop_at:
                    if delta := choice.assembler.feed(drop_at):
                        await send(choice, delta, drop_at)
                    exchange.drop(request)
                    return response
                if delta := choice.assembler.feed(upto):
                    await send(choice, delta, upto)
                if choice.seq.done:
                    await send(choice, choice.assembler.finish() or {"content": ""}, upto, last=True)
                    pending.remove(choice)
        if exchange.include_usage:
            chunk = {**base, "choices": [], "usage": usage(exchange, prompt_tokens_details, stream=True)}
            await response.write(f"data: {dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the client went away; the server aborts the sequences
    return response
