"""Calls are checked against their tool's schema before they run; the model is told what was wrong."""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import AIMessage

from sevenfold.nodes.tool_calls import check_call, count_repairs, describe_schema
from sevenfold.settings import ToolLimits
from sevenfold.tools.sandbox import unconfined
from sevenfold.tools.toolset import build_tools

TOOLS = {t.name: t for t in build_tools(Path("."), ToolLimits(), unconfined(Path(".")))}


def test_a_valid_call_passes() -> None:
    assert check_call("view_file", {"path": "a.py", "start_line": 3}, TOOLS) is None


def test_an_unknown_tool_lists_the_available_ones() -> None:
    message = check_call("x_view_file", {"path": "a.py"}, TOOLS)
    assert message and "no tool named 'x_view_file'" in message and "view_file" in message


def test_bad_arguments_say_what_is_wrong_and_what_the_tool_expects() -> None:
    message = check_call("view_file", {"start_line": "ten"}, TOOLS)
    assert message is not None
    assert "path: Field required" in message and "start_line: Input should be a valid integer" in message
    assert "Expected: view_file(path: string, start_line?: integer | null, end_line?: integer | null)" in message


def test_an_unknown_parameter_is_refused() -> None:
    message = check_call("view_file", {"path": "a.py", "_path": "b.py"}, TOOLS)
    assert message and "has no parameter '_path'" in message


def test_describe_schema_marks_optional_parameters() -> None:
    assert (
        describe_schema(TOOLS["grep"])
        == "grep(pattern: string, path?: string, glob?: string | null, ignore_case?: boolean)"
    )


def test_rejections_count_as_repaired_once_a_later_turn_gets_a_call_through() -> None:
    recovered = AIMessage(
        content="", tool_calls=[{"name": "view_file", "args": {}, "id": "recovered-1", "type": "tool_call"}]
    )
    plain = AIMessage(content="", tool_calls=[{"name": "view_file", "args": {}, "id": "call-1", "type": "tool_call"}])
    state: dict[str, int] = {}
    state |= count_repairs(state, accepted=0, rejected=2, reply=plain)
    assert state["rejected_turns"] == 1 and state["tool_calls_unrepaired"] == 2
    state |= count_repairs(state, accepted=1, rejected=0, reply=recovered)
    assert (
        state["tool_calls_repaired"],
        state["tool_calls_unrepaired"],
        state["rejected_turns"],
        state["tool_calls_recovered"],
    ) == (2, 0, 0, 1)
