"""Checking a worker's tool calls before they run, and counting what needed repair.

Every call, whether the server parsed it or the client recovered it from text,
is checked against its tool's schema first. A call to an unknown tool, with
arguments that do not fit, or that could not be read at all is not run: the
model gets a message saying exactly what was wrong and what the tool expects,
and tries again on its next turn (a repair). Too many turns in a row with
nothing but rejected calls end the worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ValidationError

from sevenfold.nodes.events import emit

MAX_REJECTED_TURNS = 4
"""Turns in a row whose every call was rejected before the worker gives up."""


def describe_schema(tool: BaseTool) -> str:
    """What a tool expects, in one line: `name(arg: type, opt?: type)`."""
    schema = (
        tool.args_schema.model_json_schema()
        if isinstance(tool.args_schema, type) and issubclass(tool.args_schema, BaseModel)
        else (tool.args_schema or {})
    )
    props: dict[str, Any] = schema.get("properties", {}) if isinstance(schema, dict) else {}
    required = set(schema.get("required", [])) if isinstance(schema, dict) else set()
    parts = []
    for name, spec in props.items():
        kinds = [s.get("type", "any") for s in spec.get("anyOf", [spec])]
        parts.append(f"{name}{'' if name in required else '?'}: {' | '.join(kinds)}")
    return f"{tool.name}({', '.join(parts)})"


def check_call(name: str, args: Any, tools: Mapping[str, BaseTool]) -> str | None:
    """Why this call cannot run (a message for the model), or None if it can."""
    tool = tools.get(name)
    if tool is None:
        return f"Error: there is no tool named {name!r}. Available tools: {', '.join(sorted(tools))}."
    if not isinstance(args, dict):
        return f"Error: the arguments of {name} must be a JSON object. Expected: {describe_schema(tool)}"
    schema = tool.args_schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        unknown = sorted(set(args) - set(schema.model_fields))
        try:
            schema.model_validate(args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()[:8]
            )
            return f"Error: invalid arguments for {name}: {problems}. Expected: {describe_schema(tool)}"
        if unknown:
            return f"Error: {name} has no parameter {', '.join(map(repr, unknown))}. Expected: {describe_schema(tool)}"
    return None


def count_repairs(state: Mapping[str, Any], accepted: int, rejected: int, reply: AIMessage) -> dict[str, Any]:
    """The worker's tool-call counters after a turn with `accepted` and `rejected` calls.

    A turn that follows rejections and gets at least one call accepted repairs
    the rejections before it; rejections never repaired count as failed when
    the worker finishes.
    """
    pending = state.get("tool_calls_unrepaired", 0)
    recovered = sum(1 for c in reply.tool_calls if str(c.get("id") or "").startswith("recovered-"))
    update: dict[str, Any] = {
        "tool_calls_recovered": state.get("tool_calls_recovered", 0) + recovered,
        "tool_calls_rejected": state.get("tool_calls_rejected", 0) + rejected,
        "rejected_turns": state.get("rejected_turns", 0) + 1 if rejected and not accepted else 0,
    }
    if accepted and pending:
        update["tool_calls_repaired"] = state.get("tool_calls_repaired", 0) + pending
        pending = 0
    update["tool_calls_unrepaired"] = pending + rejected
    return update


def split_calls(reply: AIMessage, tools: dict[str, BaseTool]) -> tuple[list[dict[str, Any]], list[ToolMessage]]:
    """The calls that can run, and an error message for each call that cannot (explained to the model)."""
    runnable, refused = [], []
    for tool_call in reply.tool_calls:
        problem = check_call(tool_call["name"], tool_call["args"], tools)
        if problem is None:
            runnable.append(dict(tool_call))
        else:
            refused.append(
                ToolMessage(problem, tool_call_id=tool_call["id"] or "", name=tool_call["name"], status="error")
            )
    for bad in reply.invalid_tool_calls:
        detail = bad.get("error") or f"the arguments are not valid JSON: {str(bad.get('args'))[:500]}"
        refused.append(
            ToolMessage(
                f"Error: a tool call could not be read ({detail}). Write each call in the tool-call format, with arguments that fit the tool's schema.",
                tool_call_id=bad.get("id") or "",
                status="error",
            )
        )
    return runnable, refused


async def run_call(tools: dict[str, BaseTool], tool_call: dict[str, Any], key: str) -> ToolMessage:
    """Run one checked call; a tool that raises becomes an error message the model can read and act on."""
    name, call_id = tool_call["name"], tool_call["id"] or ""
    emit("tool", subtask=key, tool=name)
    try:
        result = await tools[name].ainvoke(tool_call["args"])
    except Exception as exc:  # a tool bug: the model can read it and adjust
        return ToolMessage(
            f"Error: {type(exc).__name__}: {exc}"[:4000], tool_call_id=call_id, name=name, status="error"
        )
    return ToolMessage(str(result), tool_call_id=call_id, name=name)
