"""Turning a policy's reply into the text the model writes, and that text back into a response.

The reply becomes up to three segments of model output, in Qwen3 order:
thinking (`<think>...</think>`), content, then tool calls as Qwen3-Coder XML.
The engine releases the output token by token; `OutputAssembler` turns what has
been released so far into OpenAI message fields exactly as vLLM's reasoning
parser (`--reasoning-parser qwen3`) and tool parser (`qwen3_coder`) would,
both for whole responses and for streamed deltas.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sevenfold.qwen3_coder import render_tool_call_xml
from sevenfold.sim.faults import FaultDraw
from sevenfold.sim.policies.base import MalformedShape, Reply
from sevenfold.sim.tokens import tokenize
from sevenfold.sim.toolcall import ParsedCall, parse_tool_calls

THINK, CONTENT, TOOLS = 0, 1, 2


@dataclass
class Output:
    """The model's whole output for one request, as tokens tagged with their segment."""

    tokens: list[str]
    segments: list[int]

    @classmethod
    def from_reply(cls, reply: Reply, *, think: bool, tools_offered: bool, fault: FaultDraw) -> Output:
        parts: list[tuple[int, str]] = []
        if think and reply.reasoning:
            parts.append((THINK, f"<think>\n{reply.reasoning}\n</think>\n\n"))
        if reply.content:
            parts.append((CONTENT, reply.content))
        if reply.tool_calls and tools_offered:
            xml = "\n".join(render_tool_call_xml(c.name, c.arguments) for c in reply.tool_calls)
            if reply.malformed:
                xml = break_tool_xml(xml, reply.malformed)
            elif fault.malformed:
                xml = corrupt_tool_xml(xml, fault.variant)
            parts.append((TOOLS, ("\n" if reply.content else "") + xml))
        tokens: list[str] = []
        segments: list[int] = []
        for segment, text in parts:
            pieces = tokenize(text)
            tokens += pieces
            segments += [segment] * len(pieces)
        return cls(tokens, segments)

    def padded(self, total: int) -> Output:
        """This output continued with filler content up to `total` tokens (generation past end-of-turn)."""
        extra = max(0, total - len(self.tokens))
        return Output([*self.tokens, *([" more"] * extra)], [*self.segments, *([CONTENT] * extra)])


def corrupt_tool_xml(xml: str, variant: float) -> str:
    """Break tool-call XML the ways models do, chosen by `variant` in [0, 1)."""
    kind = int(variant * 4)
    if kind == 0:  # function tag never closed with '>': the parser cannot read a name
        return xml.replace("<function=", "<function ", 1)
    if kind == 1:  # hermes-style JSON inside the tags: no <function= at all
        return (
            '<tool_call>\n{"name": "'
            + xml.split("<function=", 1)[1].split(">", 1)[0]
            + '", "arguments": {"\n</tool_call>'
        )
    if kind == 2:  # a misspelt tool name
        return xml.replace("<function=", "<function=x_", 1)
    return xml.replace("<parameter=", "<parameter=_", 1)  # a misspelt parameter name


_CORRUPTION_VARIANT: dict[str, float] = {
    "unclosed_function": 0.0,
    "json_inside": 0.25,
    "misspelt_tool": 0.5,
    "misspelt_parameter": 0.75,
}


def break_tool_xml(xml: str, shape: MalformedShape) -> str:
    """Break tool-call XML in the named way a policy asked for (`sim.policies.base.MalformedShape`)."""
    if shape == "missing_open_tag":
        return xml.replace("<tool_call>\n", "", 1)
    if shape == "parameter_run_on":
        head, found, rest = xml.partition("<parameter=")
        if not found:
            return xml
        name, _, value = rest.partition(">\n")
        value_text, closed, tail = value.partition("\n</parameter>")
        return f"{head}<parameter={name}={value_text}{'</parameter>' if closed else ''}{tail}"
    return corrupt_tool_xml(xml, _CORRUPTION_VARIANT[shape])


def _call_json(index: int, call: ParsedCall) -> list[dict[str, Any]]:
    head = {
        "index": index,
        "id": f"chatcmpl-tool-{uuid.uuid4().hex[:16]}",
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }
    return [head, {"index": index, "function": {"arguments": call.arguments}}]


@dataclass
class OutputAssembler:
    """Builds message fields from released tokens; `feed` for streaming, `finish` for the rest."""

    output: Output
    tools: list[dict[str, Any]]
    reasoning_parser: bool
    leak: bool
    guided: str | None = None
    """None (tool calls are parsed from XML, "auto"); "required" (the output is a JSON list of calls); or the name of
    the function a named `tool_choice` forces (the output is its arguments as JSON)."""
    sent: int = 0
    _tool_buffer: str = ""
    _think_buffer: str = ""
    calls: list[ParsedCall] = field(default_factory=list)
    content: str = ""
    reasoning: str = ""

    @property
    def parse_tools(self) -> bool:
        """Whether Qwen3-Coder tool-call XML is parsed into calls (tools offered, no leak fault)."""
        return bool(self.tools) and not self.leak

    def feed(self, upto: int) -> dict[str, Any]:
        """The delta for tokens [sent, upto): content, reasoning_content and tool_calls keys as present."""
        content, reasoning = "", ""
        tool_deltas: list[dict[str, Any]] = []
        for token, segment in zip(
            self.output.tokens[self.sent : upto],
            self.output.segments[self.sent : upto],
            strict=True,
        ):
            if segment == THINK and self.reasoning_parser:
                self._think_buffer += token
            elif segment != THINK and self.guided == "required":
                self._tool_buffer += token
            elif segment != THINK and self.guided:
                tool_deltas += self._named_delta(token)
            elif segment == TOOLS and self.parse_tools:
                self._tool_buffer += token
                while "</tool_call>" in self._tool_buffer:
                    block, _, self._tool_buffer = self._tool_buffer.partition("</tool_call>")
                    text, deltas = self._parse_block(block + "</tool_call>")
                    content += text
                    tool_deltas += deltas
            else:
                content += token
        self.sent = max(self.sent, upto)
        if self._think_buffer and ("</think>" in self._think_buffer or self.sent >= len(self.output.tokens)):
            reasoning = self._think_buffer.replace("<think>", "").split("</think>")[0].strip("\n")
            self._think_buffer = ""
        return self._delta(content, reasoning, tool_deltas)

    def finish(self) -> dict[str, Any]:
        """The delta for whatever is still held back once generation has ended."""
        content, tool_deltas = "", list[dict[str, Any]]()
        if self._tool_buffer and self.guided == "required":
            content, tool_deltas = self._parse_required(self._tool_buffer)
            self._tool_buffer = ""
        elif self._tool_buffer:
            content, tool_deltas = self._parse_block(self._tool_buffer)
            self._tool_buffer = ""
        reasoning = ""
        if self._think_buffer:  # cut off inside <think>: vLLM's qwen3 parser returns it as content
            content = self._think_buffer + content
            self._think_buffer = ""
        return self._delta(content, reasoning, tool_deltas)

    def _named_delta(self, token: str) -> list[dict[str, Any]]:
        """vLLM streams a named call's arguments as they are written; the first delta names the function."""
        if not token:
            return []
        if not self.calls:
            self.calls.append(ParsedCall(str(self.guided), token))
            head = _call_json(0, self.calls[0])[0]
            return [{**head, "function": {"name": self.guided, "arguments": token}}]
        self.calls[0] = ParsedCall(self.calls[0].name, self.calls[0].arguments + token)
        return [{"index": 0, "function": {"arguments": token}}]

    def _parse_required(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        """The calls of a "required" `tool_choice`'s JSON list; a list cut short yields none (its text is content)."""
        try:
            items = json.loads(text)
            parsed = [ParsedCall(i["name"], json.dumps(i.get("parameters", {}), ensure_ascii=False)) for i in items]
        except (ValueError, TypeError, KeyError):
            return text, []
        deltas = []
        for call in parsed:
            deltas += _call_json(len(self.calls), call)
            self.calls.append(call)
        return "", deltas

    def _parse_block(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        parsed = parse_tool_calls(text, self.tools)
        if not parsed.calls:
            return text, []
        deltas = []
        for call in parsed.calls:
            deltas += _call_json(len(self.calls), call)
            self.calls.append(call)
        return parsed.content or "", deltas

    def _delta(self, content: str, reasoning: str, tool_deltas: list[dict[str, Any]]) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if reasoning:
            self.reasoning += reasoning
            delta["reasoning_content"] = reasoning
        if content:
            self.content += content
            delta["content"] = content
        if tool_deltas:
            delta["tool_calls"] = tool_deltas
        return delta

    def message(self) -> dict[str, Any]:
        """The whole assistant message, for a non-streaming response (after feed and finish)."""
        guided_calls = self.guided is not None and bool(self.calls)  # vLLM sends content "" with forced calls
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "" if guided_calls else self.content or None,
            "refusal": None,
            "annotations": None,
            "audio": None,
            "function_call": None,
            "tool_calls": [],
        }
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": f"chatcmpl-tool-{uuid.uuid4().hex[:16]}",
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.calls
            ]
        message["reasoning_content"] = self.reasoning or None
        return message


def dumps(data: dict[str, Any]) -> str:
    """Compact JSON, as the server writes it."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
