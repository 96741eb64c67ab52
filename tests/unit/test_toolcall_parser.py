"""The simulator's server-side parser follows vLLM's qwen3_coder rules exactly."""

from __future__ import annotations

import json

import pytest

from sevenfold.qwen3_coder import render_tool_call_xml
from sevenfold.sim.toolcall import convert_value, parse_tool_calls

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "edit",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "line": {"type": "integer"},
                    "ratio": {"type": "number"},
                    "force": {"type": "boolean"},
                    "options": {"type": "object"},
                    "names": {"type": "array"},
                },
            },
        },
    }
]


def test_typed_arguments_round_trip_through_xml() -> None:
    args = {
        "path": "src/a.py",
        "line": 12,
        "ratio": 0.5,
        "force": True,
        "options": {"k": [1, "x"]},
        "names": ["a", "b"],
    }
    parsed = parse_tool_calls(render_tool_call_xml("edit", args), TOOLS)
    assert parsed.content is None
    assert [(c.name, json.loads(c.arguments)) for c in parsed.calls] == [("edit", args)]


def test_code_with_angle_brackets_and_newlines_stays_a_string() -> None:
    code = "if a < b and c > d:\n    return '<tag>'\n"
    parsed = parse_tool_calls(render_tool_call_xml("edit", {"path": code}), TOOLS)
    assert json.loads(parsed.calls[0].arguments) == {"path": code}


def test_text_before_calls_is_content_and_several_calls_are_kept_in_order() -> None:
    text = (
        "Let me look.\n" + render_tool_call_xml("edit", {"line": 1}) + "\n" + render_tool_call_xml("other", {"x": "1"})
    )
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.content == "Let me look.\n"
    assert [c.name for c in parsed.calls] == ["edit", "other"]
    assert json.loads(parsed.calls[1].arguments) == {"x": "1"}  # unknown tool: values stay strings


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        ("null", {"type": "integer"}, None),
        ("12", {"type": "integer"}, 12),
        ("twelve", {"type": "integer"}, "twelve"),
        ("3.0", {"type": "number"}, 3),
        ("3.5", {"type": "number"}, 3.5),
        ("True", {"type": "boolean"}, True),
        ("yes", {"type": "boolean"}, False),
        ('{"a": 1}', {"type": "object"}, {"a": 1}),
        ("{'a': 1}", {"type": "object"}, {"a": 1}),
        ("not json", {"type": "object"}, "not json"),
        ("12", {}, "12"),
        ("12", None, "12"),
    ],
)
def test_values_convert_with_vllm_rules_and_fallbacks(value: str, schema: dict | None, expected: object) -> None:
    assert convert_value(value, schema) == expected


def test_unclosed_tags_are_read_to_the_end_like_vllm() -> None:
    parsed = parse_tool_calls("<tool_call>\n<function=edit>\n<parameter=line>\n7", TOOLS)
    assert [(c.name, json.loads(c.arguments)) for c in parsed.calls] == [("edit", {"line": 7})]


def test_text_without_a_function_tag_is_plain_content() -> None:
    text = '<tool_call>\n{"name": "edit", "arguments": {}}\n</tool_call>'
    parsed = parse_tool_calls(text, TOOLS)
    assert parsed.calls == [] and parsed.content == text
