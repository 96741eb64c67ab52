"""Recovering tool calls that arrive as text in `content`.

With the wrong `--tool-call-parser` (hermes for Qwen3-Coder), in some streaming
paths and some vLLM versions, a model's tool calls reach the client as raw text
with `finish_reason: stop` (vLLM issues 26561, 31871, 22975). This module finds
them: Qwen3-Coder's XML form and the hermes JSON form, several per turn, and
keeps the text around them as content.

It is strict where the server's parser is lenient: a block that does not follow
the grammar to the letter (unclosed, truncated, a parameter without its closing
tag) is reported as malformed, with the reason, and never turned into a call.
Values are typed by the tool's schema with vLLM's rules (`convert_value`), so a
recovered call equals the one the right server parser would have produced.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.tool import invalid_tool_call, tool_call

from sevenfold.llm.stats import CallStats
from sevenfold.qwen3_coder import convert_value, partial_tag_suffix, schema_properties

# A `<tool_call>` opens a call only when what follows it (after optional whitespace) is `<function`, `{` or the end of
# the text (a reply cut off just after the tag); anywhere else it is prose about the tag, and stays content, as on
# the server, whose parser needs a `<function=` to see a call at all. A `<function=` opens a call wherever it is.
_OPENS = r"(?=\s*(?:<function|\{|\Z))"
_CALL_START = re.compile(r"<tool_call>" + _OPENS + r"|<function=")
_BLOCK = re.compile(r"<tool_call>" + _OPENS + r"(.*?)</tool_call>", re.DOTALL)
# A function written without its <tool_call> wrapper; a stray `</tool_call>` right after it belongs to it.
_BARE_FUNCTION = re.compile(r"<function=[^>\n]+>\n.*?\n</function>(?:\s*</tool_call>)?", re.DOTALL)
_STRAY_CLOSE = re.compile(r"\s*</tool_call>\Z")
_FUNCTION = re.compile(r"\A\s*<function=([^>\n]+)>\n(?:(.*)\n)?</function>\s*\Z", re.DOTALL)
_PARAMETER_OPEN = re.compile(r"(?:\A|\n)<parameter=([^>\n]+)>\n")
_CLOSE = "\n</parameter>"
MARKERS = ("<tool_call>", "<function=")


def find_call_start(text: str, start: int = 0) -> int:
    """Where the first tool call in text begins (see the rule above), or -1."""
    match = _CALL_START.search(text, start)
    return match.start() if match else -1


@dataclass
class RecoveredCall:
    """A tool call read from text: name, typed arguments, and a fresh id."""

    name: str
    args: dict[str, Any]
    id: str = field(default_factory=lambda: f"recovered-{uuid.uuid4().hex[:12]}")


@dataclass
class Malformed:
    """Tool-call text that could not be read, and why."""

    text: str
    reason: str


@dataclass
class Recovery:
    """What was found in a reply's text."""

    content: str
    calls: list[RecoveredCall] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)


def has_tool_call_text(text: str) -> bool:
    """Whether text holds the start of a tool call (not merely prose that names the tags)."""
    return find_call_start(text) >= 0


def _parse_xml(body: str, tools: Sequence[dict[str, Any]]) -> RecoveredCall | Malformed:
    match = _FUNCTION.match(body)
    if not match:
        reason = (
            "no <function=NAME> ... </function> inside"
            if "<function=" not in body
            else "<function=...> is not closed with </function>"
        )
        return Malformed(body, reason)
    name, inner = match.group(1).strip(), match.group(2) or ""
    props = schema_properties(name, tools)
    opens = list(_PARAMETER_OPEN.finditer(inner))
    if (opens and inner[: opens[0].start()].strip()) or (not opens and inner.strip()):
        return Malformed(body, f"text inside <function={name}> that is not a <parameter=...> block")
    args: dict[str, Any] = {}
    for index, opening in enumerate(opens):
        end = opens[index + 1].start() if index + 1 < len(opens) else len(inner)
        chunk = inner[opening.end() : end]
        if not chunk.endswith(_CLOSE) and chunk != _CLOSE.lstrip("\n"):
            return Malformed(body, f"parameter {opening.group(1)!r} is not closed with </parameter>")
        raw = "" if chunk == _CLOSE.lstrip("\n") else chunk[: -len(_CLOSE)]
        key = opening.group(1).strip()
        if key in args:
            return Malformed(body, f"parameter {key!r} is given twice")
        args[key] = convert_value(raw, None if props is None else props.get(key))
    return RecoveredCall(name, args)


def _parse_json(body: str) -> RecoveredCall | Malformed:
    try:
        data = json.loads(body)
    except ValueError as exc:
        return Malformed(body, f"the JSON inside <tool_call> does not parse: {exc}")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return Malformed(body, 'the JSON inside <tool_call> needs "name" and "arguments"')
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError as exc:
            return Malformed(body, f'"arguments" is a string that is not JSON: {exc}')
    if not isinstance(arguments, dict):
        return Malformed(body, '"arguments" must be a JSON object')
    return RecoveredCall(data["name"], arguments)


def recover_tool_calls(text: str, tools: Sequence[dict[str, Any]]) -> Recovery:
    """Find tool calls in text (Qwen3-Coder XML or hermes JSON); the rest stays content.

    `tools` is the OpenAI-format tool list of the request, for typing values.
    """
    if not has_tool_call_text(text):
        return Recovery(content=text)
    spans: list[tuple[int, int, str]] = [(m.start(), m.end(), m.group(1)) for m in _BLOCK.finditer(text)]
    covered = [(a, b) for a, b, _ in spans]
    for bare in _BARE_FUNCTION.finditer(text):  # a function written without its <tool_call> wrapper
        if not any(a <= bare.start() < b for a, b in covered):
            spans.append((bare.start(), bare.end(), _STRAY_CLOSE.sub("", bare.group(0))))
    spans.sort()
    recovery = Recovery(content="")
    cursor = 0
    for start, end, body in spans:
        before = text[cursor:start]
        if body.startswith("<function=") and start > 0:
            # A complete function whose <tool_call> was opened but never closed (cut off just before the end tag).
            before = re.sub(r"<tool_call>\s*\Z", "", before)
        recovery.content += before
        cursor = end
        stripped = body.strip()
        found = (
            _parse_json(stripped)
            if stripped.startswith("{")
            else _parse_xml(body.strip("\n") if body.startswith("\n") else body, tools)
        )
        if isinstance(found, RecoveredCall):
            recovery.calls.append(found)
        else:
            recovery.malformed.append(found)
    rest = text[cursor:]
    opened = find_call_start(rest)
    if opened >= 0:  # a call that was cut off (finish_reason "length") or never closed
        recovery.content += rest[:opened]
        recovery.malformed.append(Malformed(rest[opened:], "the tool call is not closed (was the reply cut off?)"))
    else:
        recovery.content += rest
    return recovery


class ToolTextFilter:
    """For streams: passes content through until a tool call starts, then holds the rest back for recovery.

    Also held back, until later text decides: a `<tool_call>` not yet followed by anything that says whether it opens
    a call, a partial tag at the end of a chunk, and trailing whitespace (dropped if a call follows, as the
    non-streamed path strips it).
    """

    def __init__(self) -> None:
        self.held = ""
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """The part of this chunk that is plainly content."""
        if self.held:
            self.held += chunk
            return ""
        text = self._pending + chunk
        opened = find_call_start(text)
        if opened >= 0 and not _undecided(text, opened):
            self.held = text[opened:]
            self._pending = ""
            return self._emit(text[:opened])
        keep = _undecided_from(text)
        visible = self._emit(text[:keep])
        self._pending += text[keep:]
        return visible

    def _emit(self, text: str) -> str:
        """Text to show, keeping its trailing whitespace pending."""
        body = text.rstrip()
        self._pending = text[len(body) :]
        return body

    def finish(self) -> str:
        """Everything held back: tool-call text, a partial tag or trailing whitespace, to recover at the end."""
        rest, self.held, self._pending = self._pending + self.held, "", ""
        return rest


def _undecided(text: str, index: int) -> bool:
    """Whether the `<tool_call>` at index runs to the end of text with nothing yet that decides what it is."""
    if not text.startswith("<tool_call>", index):
        return False
    after = text[index + len("<tool_call>") :].lstrip()
    return "<function".startswith(after)


def _undecided_from(text: str) -> int:
    """Where the part of text that later chunks may still turn into a call's start begins (len(text) if none)."""
    search = 0
    while (index := text.find("<tool_call>", search)) >= 0:
        if _undecided(text, index):
            return index
        search = index + 1
    keep = max((partial_tag_suffix(text, m) for m in MARKERS), default=0)
    return len(text) - keep


def recover_in_message(
    message: BaseMessage,
    tools: list[dict[str, Any]] | None,
    stats: CallStats,
    generation_info: dict[str, Any] | None = None,
) -> None:
    """Turn tool-call text left in content into tool calls (and unreadable text into invalid calls).

    Also beside calls the server parsed: a broken call next to a good one stays in content as text, and the model
    must hear that it was not run rather than have it vanish. The content left is stripped of trailing whitespace
    (the streamed path gives the same). A `finish_reason` of "stop" becomes "tool_calls" when calls were recovered,
    in `generation_info` (where langchain-openai keeps it until LangChain copies it into `response_metadata`) and in
    `response_metadata`.
    """
    if not tools or not isinstance(message, AIMessage) or not isinstance(message.content, str):
        return
    if not has_tool_call_text(message.content):
        return
    recovery = recover_tool_calls(message.content, tools)
    message.content = recovery.content.rstrip()
    message.tool_calls = [
        *message.tool_calls,
        *(tool_call(name=c.name, args=c.args, id=c.id) for c in recovery.calls),
    ]
    message.invalid_tool_calls = [
        *message.invalid_tool_calls,
        *(
            invalid_tool_call(name=None, args=m.text[:2000], id=f"malformed-{i}", error=m.reason)
            for i, m in enumerate(recovery.malformed)
        ),
    ]
    message.response_metadata["tool_calls_recovered"] = len(recovery.calls)
    message.response_metadata["tool_calls_malformed"] = len(recovery.malformed)
    stats.tool_calls_recovered += len(recovery.calls)
    stats.tool_calls_malformed += len(recovery.malformed)
    if recovery.calls:
        for where in (message.response_metadata, generation_info):
            if where is not None and where.get("finish_reason") == "stop":
                where["finish_reason"] = "tool_calls"
