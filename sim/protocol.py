"""Request validation and error bodies, as vLLM's OpenAI-compatible server returns them."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def error_response(status: int, message: str, kind: str, param: str | None = None) -> web.Response:
    """An OpenAI-style error body (`{"error": {...}}`) with the given HTTP status."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return web.json_response(body, status=status)


class BadRequest(Exception):
    """A request vLLM would answer with 400."""


def parse_chat_request(raw: bytes) -> dict[str, Any]:
    """The JSON body of a chat-completions request; `BadRequest` with vLLM's kind of message if malformed."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    messages = body.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)
    ):
        raise BadRequest("messages: a non-empty list of objects with a 'role' is required")
    if not isinstance(body.get("model"), str):
        raise BadRequest("model: field required")
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name") for t in tools
    ):
        raise BadRequest("tools: each tool must be {'type': 'function', 'function': {'name': ...}}")
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise BadRequest(f"{key} must be a positive integer")
    min_tokens = body.get("min_tokens", 0)
    if not isinstance(min_tokens, int) or isinstance(min_tokens, bool) or min_tokens < 0:
        raise BadRequest("min_tokens must be a non-negative integer")
    if not isinstance(body.get("ignore_eos", False), bool):
        raise BadRequest("ignore_eos must be a boolean")
    if body.get("n", 1) != 1:
        raise BadRequest("n: only n=1 is supported")
    return body
