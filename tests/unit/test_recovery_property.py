"""Any call that fits its schema survives being written as Qwen3-Coder XML and recovered from text."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sevenfold.llm.recovery import recover_tool_calls
from sevenfold.qwen3_coder import render_tool_call_xml

NAME = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
# Text a model writes in code: newlines, angle brackets, closing-tag look-alikes, unicode. Excluded: the few
# sequences that make the format itself ambiguous (a line that opens a parameter, "</tool_call>"), and the value
# "null", which vLLM's rules read as None for every type.
CODE_BITS = st.sampled_from(
    [
        "<",
        ">",
        "</parameter>",
        "</param>",
        "</function>",
        "<div>",
        "a < b > c",
        "\n",
        "\t",
        "  ",
        "é",
        "→",
        "💡",
        '"',
        "'",
        "{",
        "}",
        "\\n",
    ]
)
TEXT = (
    st.lists(st.one_of(st.text(min_size=0, max_size=12), CODE_BITS), max_size=8)
    .map("".join)
    .filter(
        lambda s: (
            "</tool_call>" not in s
            and "\n<parameter=" not in s
            and not s.startswith("<parameter=")
            and s.lower() != "null"
        )
    )
)
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    TEXT,
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(NAME, inner, max_size=4)),
    max_leaves=10,
)
KINDS: dict[str, tuple[dict[str, Any], st.SearchStrategy[Any]]] = {
    "string": ({"type": "string"}, TEXT),
    "integer": ({"type": "integer"}, st.integers(-(10**12), 10**12)),
    "number": ({"type": "number"}, st.floats(allow_nan=False, allow_infinity=False)),
    "boolean": ({"type": "boolean"}, st.booleans()),
    "object": ({"type": "object"}, st.dictionaries(NAME, JSON_VALUE, max_size=4)),
    "array": ({"type": "array"}, st.lists(JSON_VALUE, max_size=4)),
}


@st.composite
def calls(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
    """A tools list and one to three calls that fit it."""
    tools, made = [], []
    for name in draw(st.lists(NAME, min_size=1, max_size=3, unique=True)):
        kinds = draw(st.dictionaries(NAME, st.sampled_from(sorted(KINDS)), max_size=5))
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "parameters": {"type": "object", "properties": {k: KINDS[v][0] for k, v in kinds.items()}},
                },
            }
        )
        made.append((name, {k: draw(KINDS[v][1]) for k, v in kinds.items()}))
    return tools, made


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls(), TEXT.filter(lambda s: "<tool_call>" not in s and "<function=" not in s))
def test_rendered_calls_are_recovered_exactly(
    case: tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]], prose: str
) -> None:
    tools, made = case
    text = prose + "\n" + "\n".join(render_tool_call_xml(name, args) for name, args in made)
    recovery = recover_tool_calls(text, tools)
    assert recovery.malformed == []
    got = [(c.name, c.args) for c in recovery.calls]
    # Compare through JSON: 3.0 and 3 are the same number, as on the wire.
    assert json.dumps(got, sort_keys=True) == json.dumps(made, sort_keys=True) or got == made
    assert recovery.content == prose + "\n" * len(made)  # the text around the calls stays, the calls go
