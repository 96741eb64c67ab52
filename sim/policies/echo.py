"""`echo-tools`: the smallest useful policy, for tests and the quickstart.

If the request offers tools and the last message is a user message holding a
JSON object `{"tool": NAME, "arguments": {...}}` (or a JSON list of them), the
model calls those tools. Otherwise it replies with the last message's text.
"""

from __future__ import annotations

import json
from typing import Any

from sevenfold.sim.policies.base import ChatRequest, Reply, ToolCallSpec


def _requested_calls(text: str) -> list[ToolCallSpec]:
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return []
    try:
        data: Any = json.loads(text[start:])
    except ValueError:
        return []
    items = data if isinstance(data, list) else [data]
    calls = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("tool"), str):
            arguments = item.get("arguments", {})
            calls.append(ToolCallSpec(item["tool"], arguments if isinstance(arguments, dict) else {}))
    return calls


class EchoTools:
    """Calls the tools the user spells out in JSON; otherwise echoes."""

    def reply(self, request: ChatRequest) -> Reply:
        last = request.last
        text = request.text(last)
        reasoning = f"[simulated reasoning: request {request.request_id} from {request.role or 'a client'}]"
        if request.tools and last.get("role") == "user" and request.tool_choice != "none":
            calls = [c for c in _requested_calls(text) if c.name in request.tool_names]
            if calls:
                return Reply(tool_calls=tuple(calls), reasoning=reasoning)
        return Reply(content=text, reasoning=reasoning)
