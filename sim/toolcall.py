"""Qwen3-Coder tool-call text, parsed the way vLLM's `qwen3_coder` parser does.

The model writes

    <tool_call>
    <function=NAME>
    <parameter=ARG>
    value
    </parameter>
    </function>
    </tool_call>

and the server turns it into OpenAI `tool_calls`, typing each value from the
tool's JSON schema. This module reproduces that parser's rules, including its
leniency (unclosed tags are read up to the end of the text) and its fallbacks
(a value that does not convert stays a string), because clients must cope with
exactly what vLLM sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sevenfold.qwen3_coder import convert_value, schema_properties

__all__ = ["ParsedCall", "ParsedOutput", "convert_value", "parse_tool_calls"]

_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*?)$", re.DOTALL)
_FUNCTION = re.compile(r"<function=(.*?)</function>|<function=(.*)$", re.DOTALL)
_PARAMETER = re.compile(r"<parameter=(.*?)(?:</parameter>|(?=<parameter=)|(?=</function>)|$)", re.DOTALL)


@dataclass(frozen=True)
class ParsedCall:
    """A tool call as the server reports it: a name and JSON-encoded arguments."""

    name: str
    arguments: str


@dataclass(frozen=True)
class ParsedOutput:
    """What the parser made of a completion's text."""

    content: str | None
    calls: list[ParsedCall]


def _parse_function(text: str, tools: Sequence[dict[str, Any]]) -> ParsedCall:
    end = text.index(">")
    name = text[:end]
    props = schema_properties(name, tools) or {}
    args: dict[str, Any] = {}
    for match in _PARAMETER.findall(text[end + 1 :]):
        cut = match.index(">")
        key, value = match[:cut], match[cut + 1 :]
        value = value.removeprefix("\n").removesuffix("\n")
        args[key] = convert_value(value, props.get(key) if key in props else None)
    return ParsedCall(name=name, arguments=json.dumps(args, ensure_ascii=False))


def parse_tool_calls(text: str, tools: Sequence[dict[str, Any]]) -> ParsedOutput:
    """Parse a completion's text into content and tool calls, as vLLM's qwen3_coder parser does.

    Content is the text before the first tool call (None if empty). When the
    text cannot be parsed, everything is returned as content with no calls,
    which is how the failure reaches clients.
    """
    if "<function=" not in text:
        return ParsedOutput(content=text, calls=[])
    try:
        blocks = [a or b for a, b in _TOOL_CALL.findall(text)] or [text]
        functions = [a or b for block in blocks for a, b in _FUNCTION.findall(block)]
        if not functions:
            return ParsedOutput(content=text, calls=[])
        calls = [_parse_function(function, tools) for function in functions]
    except ValueError:  # a function tag with no closing '>'
        return ParsedOutput(content=text, calls=[])
    start = text.find("<tool_call>")
    start = start if start >= 0 else text.find("<function=")
    return ParsedOutput(content=text[:start] or None, calls=calls)
