"""Planning what the simulated model writes for one choice, before the engine releases it token by token.

The policy says what the model means to say; the plan applies what vLLM's
sampling would do to it: `tool_choice` (guided decoding), `stop` strings,
`min_tokens`/`ignore_eos`, the `length` fault, and the token limit.

`tool_choice` is enforced as vLLM enforces it, by guided decoding, so the model
writes JSON, not Qwen3-Coder XML:

- a named function: the model writes that function's arguments as a JSON
  object. They are the arguments of the reply's first call to that function; if
  the reply has none, every required parameter gets the empty value of its type
  ("" for strings, 0, false, [], {}, null).
- "required": the model writes `[{"name": ..., "parameters": {...}}, ...]`: the
  reply's calls to tools in the list; if there are none, one call to the first
  tool, built as for a named function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from sevenfold.qwen3_coder import schema_properties
from sevenfold.sim.faults import FaultDraw
from sevenfold.sim.output import CONTENT, Output
from sevenfold.sim.policies.base import Reply, ToolCallSpec
from sevenfold.sim.tokens import tokenize


@dataclass(frozen=True)
class Sampling:
    """The request's sampling fields that shape the output."""

    max_tokens: int
    stop: tuple[str, ...] = ()
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    min_tokens: int = 0

    @classmethod
    def from_body(cls, body: dict[str, Any], max_tokens: int) -> Sampling:
        """The fields of a validated request body, with the effective `max_tokens`."""
        stop = body.get("stop") or ()
        return cls(
            max_tokens=max_tokens,
            stop=(stop,) if isinstance(stop, str) else tuple(s for s in stop if s),
            include_stop_str_in_output=bool(body.get("include_stop_str_in_output")),
            ignore_eos=bool(body.get("ignore_eos")),
            min_tokens=body.get("min_tokens") or 0,
        )


@dataclass(frozen=True)
class ChoicePlan:
    """One choice's output and how generation ends."""

    output: Output
    produced: int
    """Tokens the engine generates (the output's tokens, plus the end-of-turn token when it stops by itself)."""
    finish: str
    """The engine's finish reason: "stop" or "length"."""
    stop_reason: str | None = None
    """The stop string that ended generation, as vLLM's `stop_reason`."""


def plan_choice(output: Output, sampling: Sampling, fault: FaultDraw) -> ChoicePlan:
    """Apply stop strings, forced lengths, the `length` fault and the token limit to `output`."""
    finish, stop_reason = "stop", None
    output, stop_reason = _cut_at_stop(output, sampling.stop, sampling.include_stop_str_in_output)
    produced = len(output.tokens) if stop_reason is not None else len(output.tokens) + 1  # + end-of-turn
    forced = sampling.max_tokens if sampling.ignore_eos else min(sampling.min_tokens, sampling.max_tokens)
    if stop_reason is None and forced > produced:  # vLLM's sampling extras, as `vllm bench serve` uses them
        output = output.padded(forced)
        produced = forced
        finish = "length" if sampling.ignore_eos else "stop"
    if fault.truncate and output.tokens:
        produced = max(1, int(len(output.tokens) * (0.2 + 0.6 * fault.variant)))
        finish, stop_reason = "length", None
    if produced > sampling.max_tokens:
        produced, finish, stop_reason = sampling.max_tokens, "length", None
    return ChoicePlan(output, produced, finish, stop_reason)


def _cut_at_stop(output: Output, stops: tuple[str, ...], include: bool) -> tuple[Output, str | None]:
    """The output up to the first stop string (kept if `include`), and that string; the tokens that wrote it stay."""
    text = "".join(output.tokens)
    found = min(((text.find(s), s) for s in stops if s in text), default=None)
    if found is None:
        return output, None
    start, stop = found
    end = start + len(stop)
    cut = end if include else start
    tokens: list[str] = []
    position = 0
    for token in output.tokens:
        if position >= end:
            break
        tokens.append(token[: max(0, cut - position)])
        position += len(token)
    return Output(tokens, output.segments[: len(tokens)]), stop


def guided_reply(reply: Reply, tool_choice: Any, tools: list[dict[str, Any]]) -> tuple[Reply, str]:
    """For a named or "required" `tool_choice`: the reply without calls, and the JSON the model writes instead."""
    if isinstance(tool_choice, dict):
        name = tool_choice["function"]["name"]
        call = next((c for c in reply.tool_calls if c.name == name), None) or _empty_call(name, tools)
        return replace(reply, content="", tool_calls=()), json.dumps(call.arguments, ensure_ascii=False)
    names = {t["function"]["name"] for t in tools}
    calls = [c for c in reply.tool_calls if c.name in names] or [_empty_call(tools[0]["function"]["name"], tools)]
    text = json.dumps([{"name": c.name, "parameters": c.arguments} for c in calls], ensure_ascii=False)
    return replace(reply, content="", tool_calls=()), text


def guided_output(thinking: Output, text: str) -> Output:
    """The model's thinking (if any) followed by the guided JSON."""
    pieces = tokenize(text)
    return Output([*thinking.tokens, *pieces], [*thinking.segments, *([CONTENT] * len(pieces))])


_EMPTY: dict[str, Any] = {"integer": 0, "number": 0, "boolean": False, "array": [], "object": {}, "null": None}


def _empty_call(name: str, tools: list[dict[str, Any]]) -> ToolCallSpec:
    """A call to `name` whose required parameters hold the empty value of their type."""
    props = schema_properties(name, tools) or {}
    function = next(t["function"] for t in tools if t["function"]["name"] == name)
    params = function.get("parameters") if isinstance(function.get("parameters"), dict) else {}
    required = [p for p in params.get("required", []) if isinstance(p, str)]
    args = {}
    for key in required:
        schema = props.get(key)
        kind = schema.get("type") if isinstance(schema, dict) else None
        args[key] = _EMPTY.get(kind, "") if isinstance(kind, str) else ""
    return ToolCallSpec(name, args)
