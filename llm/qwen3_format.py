"""Qwen3-Coder's tool-call text, shared by the client's recovery and the simulator.

The model writes each call as

    <tool_call>
    <function=NAME>
    <parameter=ARG>
    value
    </parameter>
    </function>
    </tool_call>

with values as raw text (strings as they are, everything else as JSON), and a
server's parser types them back by the tool's JSON schema. `convert_value`
holds vLLM's typing rules (`qwen3_coder` parser), so that text recovered on
the client types exactly as the server would have typed it.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from typing import Any


def render_tool_call_xml(name: str, arguments: dict[str, Any]) -> str:
    """One tool call in Qwen3-Coder's XML form (strings raw, everything else JSON)."""
    lines = ["<tool_call>", f"<function={name}>"]
    for key, value in arguments.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines += [f"<parameter={key}>", text, "</parameter>"]
    lines += ["</function>", "</tool_call>"]
    return "\n".join(lines)


def schema_properties(name: str, tools: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The `properties` of tool `name` in an OpenAI tools list; None if no such tool."""
    for tool in tools:
        function = tool.get("function", tool)
        if function.get("name") == name:
            params = function.get("parameters") or {}
            props = params.get("properties", params) if isinstance(params, dict) else {}
            return props if isinstance(props, dict) else {}
    return None


def convert_value(value: str, schema: dict[str, Any] | None) -> Any:
    """Type a raw parameter value by its JSON schema, with vLLM's rules and fallbacks.

    "null" is None for any type; integers and numbers that do not parse, and
    objects that are not JSON (nor Python literals), stay strings; booleans are
    true only for "true" (any case). `schema=None` (an unknown parameter) keeps
    the string.
    """
    if value.lower() == "null":
        return None
    kind = str((schema or {}).get("type", "string")).strip().lower() if schema is not None else None
    if kind is None or kind in ("string", "str", "text", "varchar", "char", "enum"):
        return value
    if kind.startswith(("int", "uint", "long", "short", "unsigned")):
        try:
            return int(value)
        except ValueError:
            return value
    if kind.startswith(("num", "float")):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    if kind in ("boolean", "bool", "binary"):
        return value.lower() == "true"
    if kind in ("object", "array", "arr") or kind.startswith(("dict", "list")):
        try:
            return json.loads(value)
        except ValueError:
            pass
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return value
