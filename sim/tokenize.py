"""`POST /tokenize` and `POST /detokenize`, as vLLM 0.11 answers them, with the simulator's own tokenizer.

`/tokenize` takes `{"prompt": str}` (no chat template) or `{"messages": [...]}`
(the chat template the simulator renders, tools included) and answers
`{"count", "max_model_len", "tokens", "token_strs"}`; the ids are the
simulator's (sevenfold.sim.logprobs), not Qwen's. `/detokenize` turns ids this
simulator handed out back into text; an id it never handed out is a 400 (vLLM
would decode any id of its vocabulary).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from sevenfold.sim.tokens import render_prompt, tokenize
from sevenfold.sim.validation import RequestError, check_fields, invalid, read_json, refused

if TYPE_CHECKING:
    from sevenfold.sim.server import Simulator

_TOKENIZE_FIELDS = {"model": "str", "prompt": "str", "messages": "list", "tools": "list", "return_token_strs": "bool"}


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        message = "Input should be a valid dictionary or object to extract fields from"
        raise invalid([{"type": "model_attributes_type", "loc": ("body",), "msg": message, "input": body}])
    return body


async def tokenize_route(sim: Simulator, request: web.Request) -> web.Response:
    """Count and list a prompt's (or a chat's) tokens."""
    try:
        body = _object(await read_json(request))
        if "prompt" not in body and "messages" not in body:
            raise invalid([{"type": "missing", "loc": ("body", "prompt"), "msg": "Field required", "input": body}])
        check_fields(body, _TOKENIZE_FIELDS, ())
        sim.served_model(body)
    except RequestError as exc:
        return exc.response()
    chat = "messages" in body
    tokens = tokenize(render_prompt(body["messages"], body.get("tools") or []) if chat else body["prompt"])
    return web.json_response(
        {
            "count": len(tokens),
            "max_model_len": sim.max_model_len,
            "tokens": sim.vocabulary.ids(tokens),
            "token_strs": tokens if body.get("return_token_strs") else None,
        }
    )


async def detokenize(sim: Simulator, request: web.Request) -> web.Response:
    """The text of token ids this simulator handed out."""
    try:
        body = _object(await read_json(request))
        tokens = body.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
            raise invalid([{"type": "list_type", "loc": ("body", "tokens"), "msg": "Input should be a valid list"}])
        sim.served_model(body)
        try:
            text = sim.vocabulary.text(tokens)
        except KeyError as exc:
            raise refused(str(exc.args[0])) from None
    except RequestError as exc:
        return exc.response()
    return web.json_response({"prompt": text})
