"""Qwen3-Coder's wire format, shared by the client and the simulator (neither imports the other).

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
holds vLLM's typing rules (`qwen3_coder` parser; the version and the few
deliberate differences are in docs/tool-calls.md), so that text recovered on
the client types exactly as the server would have typed it.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Sequence
from typing import Any

MODEL_NAME = "Qwen/Qwen3-Coder-30B-A3B-Instruct"
"""The model sevenfold is built for, as vLLM serves it by default (its Hugging Face id)."""


def render_tool_call_xml(name: str, arguments: dict[str, Any]) -> str:
    """One tool call in Qwen3-Coder's XML form (strings raw, everything else JSON)."""
    lines = ["<tool_call>", f"<function={name}>"]
    for key, value in arguments.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines += [f"<parameter={key}>", text, "</parameter>"]
    lines += ["</function>", "</tool_call>"]
    return "\n".join(lines)


def partial_tag_suffix(text: str, tag: str) -> int:
    """How many characters at the end of `text` could be the start of `tag` (0 if none).

    A streaming parser holds that many back until the next chunk says whether the tag was written.
    """
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def schema_properties(name: str, tools: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The `properties` of tool `name` in an OpenAI tools list; None if no such tool."""
    for tool in tools:
        function = tool.get("function", tool)
        if function.get("name") == name:
            params = function.get("parameters") or {}
            props = params.get("properties", params) if isinstance(params, dict) else {}
            return props if isinstance(props, dict) else {}
    return None


_STRING_TYPES = ("string", "str", "text", "varchar", "char", "enum")


def _schema_type(schema: object) -> tuple[str, bool]:
    """The type a value is converted to, and whether the schema admits null.

    A `type` is used as written (a list of types: its first non-null one); an `anyOf` without `type` gives its first
    non-null member's type (pydantic writes `Optional[int]` as `anyOf: [integer, null]`); anything else, a schema
    that is not an object included (`true`), is a string.
    """
    if not isinstance(schema, dict):
        return "string", False
    declared = schema.get("type")
    if isinstance(declared, list):
        kinds = [str(t).strip().lower() for t in declared]
        non_null = [k for k in kinds if k != "null"]
        return (non_null[0] if non_null else "null"), "null" in kinds
    if declared is not None:
        kind = str(declared).strip().lower()
        return kind, kind == "null"
    options = schema.get("anyOf")
    if isinstance(options, list):
        kinds = [str(o["type"]).strip().lower() for o in options if isinstance(o, dict) and "type" in o]
        non_null = [k for k in kinds if k != "null"]
        return (non_null[0] if non_null else "string"), "null" in kinds
    return "string", False


def _strict_json(value: Any, raw: str) -> Any:
    """`value` if it serialises as strict JSON (no NaN or Infinity, no sets or bytes), else the raw text."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return raw
    return value


def convert_value(value: str, schema: Any) -> Any:
    """Type a raw parameter value by its JSON schema, with the rules of vLLM's `qwen3_coder` parser.

    The rules are those of vllm/tool_parsers/qwen3coder_tool_parser.py at vLLM commit 00d0a333 (docs/tool-calls.md):
    string types keep the text as written, "null" included, unless the schema admits null; for other types
    "null" and "None" are None; integers and numbers that do not parse stay strings; booleans are true only for
    "true" (any case); objects and arrays are JSON, else Python literals. `schema=None` (a parameter the tool does
    not declare) and a schema that is not an object keep the string.

    One deliberate difference: a value that would not serialise as strict JSON (`nan`, `inf`, `1e999`, a Python set)
    stays the raw string, so the arguments are always valid JSON.
    """
    if schema is None:
        return value
    kind, nullable = _schema_type(schema)
    lowered = value.lower()
    if nullable and lowered in ("null", "none"):
        return None
    if kind in _STRING_TYPES:
        return value
    if lowered in ("null", "none"):
        return None
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
        if not math.isfinite(number):
            return value
        return int(number) if number.is_integer() else number
    if kind in ("boolean", "bool", "binary"):
        return lowered == "true"
    container = kind in ("object", "array", "arr") or kind.startswith(("dict", "list"))
    if container:
        try:
            parsed = json.loads(value)
        except ValueError:
            pass
        else:
            if isinstance(parsed, str):  # a JSON-encoded Python repr, "{'k': 'v'}"
                parsed = _literal(parsed, parsed)
            return _strict_json(parsed, value)
    parsed = _literal(value, value)
    if container and isinstance(parsed, str) and parsed is not value:
        parsed = _literal(parsed, parsed)
    return _strict_json(parsed, value)


def _literal(text: str, fallback: Any) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return fallback
