"""The conformance table: vLLM's own `qwen3_coder` parser test cases, and the cases of issue 14, as data.

Sources: vllm-project/vllm tests/tool_parsers/test_qwen3coder_tool_parser.py at commit
049d8df27dda4fd0caffa289ea12bfe5a47ac794 (its `extract_tool_calls` cases), for the parser at
vllm/tool_parsers/qwen3coder_tool_parser.py commit 00d0a333ba9b8e40eb35fc0b54b4ae96114f30b3.
Each case gives vLLM's result; `ours` is set only where sevenfold differs on purpose, with the reason
(docs/tool-calls.md lists the same differences).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VLLM_TESTS = "vllm tests/tool_parsers/test_qwen3coder_tool_parser.py @ 049d8df2"
ISSUE = "issue 14"


def _tool(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": properties}}}


TOOLS = [
    _tool(
        "get_current_weather",
        {"city": {"type": "string"}, "state": {"type": "string"}, "unit": {"type": "string", "enum": ["f", "c"]}},
    ),
    _tool(
        "calculate_area",
        {"shape": {"type": "string"}, "dimensions": {"type": "object"}, "precision": {"type": "integer"}},
    ),
    _tool(
        "test_types",
        {
            "int_param": {"type": "integer"},
            "float_param": {"type": "float"},
            "bool_param": {"type": "boolean"},
            "str_param": {"type": "string"},
            "obj_param": {"type": "object"},
        },
    ),
    _tool(
        "test_anyof",
        {
            "anyof_int": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 5},
            "anyof_str": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "anyof_array": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
            "anyof_obj": {"anyOf": [{"type": "object"}, {"type": "null"}]},
            "type_as_array": {"type": ["integer", "null"]},
            "multi_non_null": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
        },
    ),
    _tool("loose", {"x": True, "n": {"type": "number"}, "s": {"type": "string"}}),
]

Call = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Outcome:
    calls: list[Call]
    content: str
    """The message content, "" where vLLM says None."""
    malformed: int = 0


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    text: str
    vllm: Outcome
    ours: Outcome | None = None
    """Set only for a deliberate difference."""
    reason: str = ""


def xml(name: str, **params: str) -> str:
    body = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in params.items())
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


DALLAS = ("get_current_weather", {"city": "Dallas", "state": "TX", "unit": "fahrenheit"})
DALLAS_XML = xml("get_current_weather", city="Dallas", state="TX", unit="fahrenheit")
CIRCLE = ("calculate_area", {"shape": "circle", "dimensions": {"radius": 15.5}, "precision": 3})
STRICT = "strict grammar: a block that does not follow the format to the letter is reported to the model, not guessed"

CASES = [
    Case(
        "no_tools",
        VLLM_TESTS,
        "This is a test response without any tool calls",
        Outcome([], "This is a test response without any tool calls"),
    ),
    Case("single_tool", VLLM_TESTS, DALLAS_XML, Outcome([DALLAS], "")),
    Case(
        "single_tool_with_content",
        VLLM_TESTS,
        "Sure! Let me check the weather for you." + DALLAS_XML,
        Outcome([DALLAS], "Sure! Let me check the weather for you."),
    ),
    Case(
        "single_tool_multiline_param",
        VLLM_TESTS,
        xml("calculate_area", shape="rectangle", dimensions='{"width": 10, \n "height": 20}', precision="2"),
        Outcome(
            [("calculate_area", {"shape": "rectangle", "dimensions": {"width": 10, "height": 20}, "precision": 2})], ""
        ),
    ),
    Case(
        "parallel_tools",
        VLLM_TESTS,
        DALLAS_XML + "\n" + xml("get_current_weather", city="Orlando", state="FL", unit="fahrenheit"),
        Outcome([DALLAS, ("get_current_weather", {"city": "Orlando", "state": "FL", "unit": "fahrenheit"})], ""),
    ),
    Case(
        "tool_with_typed_params",
        VLLM_TESTS,
        "Let me calculate that area for you."
        + xml("calculate_area", shape="circle", dimensions='{"radius": 15.5}', precision="3"),
        Outcome([CIRCLE], "Let me calculate that area for you."),
    ),
    Case(
        "fallback_no_tags",
        VLLM_TESTS,
        "<function=get_current_weather>\n<parameter=city>\nDallas\n</parameter>\n<parameter=state>\nTX\n</parameter>\n</function>",
        Outcome([("get_current_weather", {"city": "Dallas", "state": "TX"})], ""),
    ),
    Case(
        "type_conversion",
        VLLM_TESTS,
        xml(
            "test_types",
            int_param="42",
            float_param="3.14",
            bool_param="true",
            str_param="hello world",
            obj_param='{"key": "value"}',
        ),
        Outcome(
            [
                (
                    "test_types",
                    {
                        "int_param": 42,
                        "float_param": 3.14,
                        "bool_param": True,
                        "str_param": "hello world",
                        "obj_param": {"key": "value"},
                    },
                )
            ],
            "",
        ),
    ),
    Case(
        "anyof_type_conversion",
        VLLM_TESTS,
        xml(
            "test_anyof",
            anyof_int="5",
            anyof_str="hello",
            anyof_array='["a", "b", "c"]',
            anyof_obj='{"key": "value"}',
            type_as_array="42",
            multi_non_null="some text",
        ),
        Outcome(
            [
                (
                    "test_anyof",
                    {
                        "anyof_int": 5,
                        "anyof_str": "hello",
                        "anyof_array": ["a", "b", "c"],
                        "anyof_obj": {"key": "value"},
                        "type_as_array": 42,
                        "multi_non_null": "some text",
                    },
                )
            ],
            "",
        ),
    ),
    Case(
        "anyof_null",
        ISSUE,
        xml("test_anyof", anyof_int="null", anyof_str="None", multi_non_null="null"),
        Outcome([("test_anyof", {"anyof_int": None, "anyof_str": None, "multi_non_null": None})], ""),
    ),
    Case(
        "missing_closing_parameter_tag",
        VLLM_TESTS,
        "Let me check the weather for you:\n<tool_call>\n<function=get_current_weather>\n<parameter=city>\nDallas\n"
        "<parameter=state>\nTX\n</parameter>\n<parameter=unit>\nfahrenheit\n</parameter>\n</function>\n</tool_call>",
        Outcome([DALLAS], "Let me check the weather for you:\n"),
        Outcome([], "Let me check the weather for you:", malformed=1),
        STRICT,
    ),
    Case(
        "missing_opening_tag",
        VLLM_TESTS,
        "I'll check the weather for you.\n\n" + DALLAS_XML.removeprefix("<tool_call>\n"),
        Outcome([DALLAS], "I'll check the weather for you.\n\n"),
        Outcome([DALLAS], "I'll check the weather for you."),
        "content is stripped of trailing whitespace, and the stray </tool_call> goes with its call",
    ),
    Case(
        "malformed_xml_no_gt_delimiter",
        VLLM_TESTS,
        "<tool_call>\n<function=get_current_weather\n<parameter=city>Dallas</parameter>\n</function>\n</tool_call>",
        Outcome([], ""),
        Outcome([], "", malformed=1),
        "vLLM drops the text and makes no call; the model is told its call could not be read",
    ),
    Case(
        "none_tool_calls_filtered",
        VLLM_TESTS,
        "<tool_call>\n<function=bad_func_no_gt\n</function>\n</tool_call>\n<tool_call>\n<function=get_current_weather>\n"
        "<parameter=city>Dallas</parameter>\n<parameter=state>TX</parameter>\n</function>\n</tool_call>",
        Outcome([("get_current_weather", {"city": "Dallas", "state": "TX"})], ""),
        Outcome([], "", malformed=2),
        STRICT + " (here: values on the tag's line; Qwen3-Coder writes them on their own lines)",
    ),
    Case(
        "prose_names_the_tag",
        ISSUE,
        "Wrap calls in a <tool_call> tag; then continue.",
        Outcome([], "Wrap calls in a <tool_call> tag; then continue."),
    ),
    Case(
        "boolean_sub_schema",
        ISSUE,
        xml("loose", x="[1, 2]"),
        Outcome([("loose", {"x": "[1, 2]"})], ""),
    ),
    Case("nan_number", ISSUE, xml("loose", n="nan"), Outcome([("loose", {"n": "nan"})], "")),
    Case(
        "inf_number",
        ISSUE,
        xml("loose", n="inf"),
        Outcome([], xml("loose", n="inf")),
        Outcome([("loose", {"n": "inf"})], ""),
        "vLLM's int(inf) raises OverflowError and the whole turn falls back to content; kept as a string, as nan is",
    ),
    Case("null_for_a_string", ISSUE, xml("loose", s="null"), Outcome([("loose", {"s": "null"})], "")),
    Case(
        "stray_closing_tag",
        ISSUE,
        "Checking.\n" + DALLAS_XML.removeprefix("<tool_call>\n"),
        Outcome([DALLAS], "Checking.\n"),
        Outcome([DALLAS], "Checking."),
        "content is stripped of trailing whitespace",
    ),
    Case(
        "text_after_calls",
        ISSUE,
        DALLAS_XML + "\nThen I will compare.",
        Outcome([DALLAS], ""),
        Outcome([DALLAS], "\nThen I will compare."),
        "text after the calls is kept: the model wrote it, and dropping it loses what it said",
    ),
    Case(
        "hermes_json",
        ISSUE,
        '<tool_call>\n{"name": "get_current_weather", "arguments": {"city": "Dallas"}}\n</tool_call>',
        Outcome([], '<tool_call>\n{"name": "get_current_weather", "arguments": {"city": "Dallas"}}\n</tool_call>'),
        Outcome([("get_current_weather", {"city": "Dallas"})], ""),
        "hermes JSON is recovered too: a model served with the wrong parser writes it",
    ),
]
