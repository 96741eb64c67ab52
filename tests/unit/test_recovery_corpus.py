"""A fixed corpus of real-world-shaped tool-call text: each case recovered exactly, or reported malformed."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sevenfold.llm.recovery import ToolTextFilter, has_tool_call_text, recover_tool_calls

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "view_file",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "start_line": {"type": "integer"},
                    "end_line": {"type": "integer"},
                },
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "str_replace",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}},
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "run_tests", "parameters": {"type": "object", "properties": {"args": {"type": "string"}}}},
    },
    {
        "type": "function",
        "function": {
            "name": "configure",
            "parameters": {
                "type": "object",
                "properties": {
                    "options": {"type": "object"},
                    "names": {"type": "array"},
                    "ratio": {"type": "number"},
                    "force": {"type": "boolean"},
                },
            },
        },
    },
    {"type": "function", "function": {"name": "git_status", "parameters": {"type": "object", "properties": {}}}},
]


def xml(name: str, **params: str) -> str:
    body = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in params.items())
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


V = ("view_file", {"path": "src/app.py"})
OK: list[tuple[str, str, list[tuple[str, dict[str, Any]]], str]] = [
    ("one call", xml("view_file", path="src/app.py"), [V], ""),
    ("prose before", "Let me look.\n" + xml("view_file", path="src/app.py"), [V], "Let me look.\n"),
    ("prose after is kept", xml("view_file", path="src/app.py") + "\nThen I will edit.", [V], "\nThen I will edit."),
    (
        "two calls",
        xml("view_file", path="a.py") + "\n" + xml("view_file", path="b.py"),
        [("view_file", {"path": "a.py"}), ("view_file", {"path": "b.py"})],
        "\n",
    ),
    (
        "three mixed calls",
        xml("view_file", path="a.py") + xml("run_tests", args="-k x") + xml("git_status"),
        [("view_file", {"path": "a.py"}), ("run_tests", {"args": "-k x"}), ("git_status", {})],
        "",
    ),
    (
        "integers typed",
        xml("view_file", path="a.py", start_line="10", end_line="20"),
        [("view_file", {"path": "a.py", "start_line": 10, "end_line": 20})],
        "",
    ),
    (
        "integer that is not",
        xml("view_file", path="a.py", start_line="ten"),
        [("view_file", {"path": "a.py", "start_line": "ten"})],
        "",
    ),
    (
        "null is None",
        xml("view_file", path="a.py", end_line="null"),
        [("view_file", {"path": "a.py", "end_line": None})],
        "",
    ),
    (
        "object and array",
        xml("configure", options='{"a": {"b": [1, 2]}}', names='["x", "y"]'),
        [("configure", {"options": {"a": {"b": [1, 2]}}, "names": ["x", "y"]})],
        "",
    ),
    ("python-literal object", xml("configure", options="{'a': 1}"), [("configure", {"options": {"a": 1}})], ""),
    ("number, integral", xml("configure", ratio="2.0"), [("configure", {"ratio": 2})], ""),
    ("number, fractional", xml("configure", ratio="0.25"), [("configure", {"ratio": 0.25})], ""),
    ("boolean True", xml("configure", force="True"), [("configure", {"force": True})], ""),
    ("boolean other", xml("configure", force="yes"), [("configure", {"force": False})], ""),
    (
        "code with tags",
        xml("str_replace", path="t.html", old="<div>\n</div>", new="<p>x</p>"),
        [("str_replace", {"path": "t.html", "old": "<div>\n</div>", "new": "<p>x</p>"})],
        "",
    ),
    (
        "closing-tag look-alike in code",
        xml("str_replace", path="p.py", old='s = "</parameter>"', new='s = "</param>"'),
        [("str_replace", {"path": "p.py", "old": 's = "</parameter>"', "new": 's = "</param>"'})],
        "",
    ),
    (
        "function tag in code",
        xml("str_replace", path="x.md", old="write </function> here", new="ok"),
        [("str_replace", {"path": "x.md", "old": "write </function> here", "new": "ok"})],
        "",
    ),
    (
        "empty string value",
        xml("str_replace", path="a.py", old="x = 1", new=""),
        [("str_replace", {"path": "a.py", "old": "x = 1", "new": ""})],
        "",
    ),
    (
        "blank lines kept",
        xml("str_replace", path="a.py", old="\nx\n", new="y"),
        [("str_replace", {"path": "a.py", "old": "\nx\n", "new": "y"})],
        "",
    ),
    (
        "indentation kept",
        xml("str_replace", path="a.py", old="    return x", new="        return y"),
        [("str_replace", {"path": "a.py", "old": "    return x", "new": "        return y"})],
        "",
    ),
    (
        "unicode",
        xml("str_replace", path="ü.py", old="naïve → ok 💡", new="ok"),
        [("str_replace", {"path": "ü.py", "old": "naïve → ok 💡", "new": "ok"})],
        "",
    ),
    ("unknown tool still read", xml("frobnicate", x="1"), [("frobnicate", {"x": "1"})], ""),
    (
        "unknown parameter stays a string",
        xml("view_file", path="a.py", colour="12"),
        [("view_file", {"path": "a.py", "colour": "12"})],
        "",
    ),
    (
        "no <tool_call> wrapper",
        "<function=view_file>\n<parameter=path>\nsrc/app.py\n</parameter>\n</function>",
        [V],
        "",
    ),
    ("hermes JSON", '<tool_call>\n{"name": "view_file", "arguments": {"path": "src/app.py"}}\n</tool_call>', [V], ""),
    (
        "hermes JSON, arguments as a string",
        '<tool_call>\n{"name": "view_file", "arguments": "{\\"path\\": \\"src/app.py\\"}"}\n</tool_call>',
        [V],
        "",
    ),
    (
        "hermes JSON, parameters key",
        '<tool_call>{"name": "view_file", "parameters": {"path": "src/app.py"}}</tool_call>',
        [V],
        "",
    ),
    (
        "hermes JSON, two calls",
        '<tool_call>{"name": "git_status", "arguments": {}}</tool_call>\n<tool_call>{"name": "run_tests", "arguments": {"args": ""}}</tool_call>',
        [("git_status", {}), ("run_tests", {"args": ""})],
        "\n",
    ),
    (
        "XML then JSON",
        xml("git_status") + '\n<tool_call>{"name": "run_tests", "arguments": {"args": "-x"}}</tool_call>',
        [("git_status", {}), ("run_tests", {"args": "-x"})],
        "\n",
    ),
    (
        "complete call, cut before </tool_call>",
        "<tool_call>\n<function=view_file>\n<parameter=path>\nsrc/app.py\n</parameter>\n</function>\n",
        [V],
        "\n",
    ),
    (
        "no <tool_call> wrapper, stray </tool_call> after it",
        "Checking.\n<function=view_file>\n<parameter=path>\nsrc/app.py\n</parameter>\n</function>\n</tool_call>",
        [V],
        "Checking.\n",
    ),
    (
        "prose naming the tag, then a call",
        "A <tool_call> tag wraps it:\n" + xml("view_file", path="src/app.py"),
        [V],
        "A <tool_call> tag wraps it:\n",
    ),
    (
        "whitespace around the function",
        "<tool_call>\n\n<function=git_status>\n</function>\n\n</tool_call>",
        [("git_status", {})],
        "",
    ),
]

MALFORMED: list[tuple[str, str, str]] = [
    (
        "cut in a parameter",
        "I'll edit.\n<tool_call>\n<function=str_replace>\n<parameter=path>\na.py\n</parameter>\n<parameter=old>\nx = ",
        "not closed",
    ),
    ("cut after <tool_call>", "Checking.\n<tool_call>\n", "not closed"),
    ("cut after the function tag", "<tool_call>\n<function=view_file>", "not closed"),
    (
        "no </function>",
        "<tool_call>\n<function=view_file>\n<parameter=path>\na.py\n</parameter>\n</tool_call>",
        "not closed with </function>",
    ),
    (
        "no </parameter>",
        "<tool_call>\n<function=view_file>\n<parameter=path>\na.py\n</function>\n</tool_call>",
        "is not closed with </parameter>",
    ),
    (
        "function tag without '>'",
        "<tool_call>\n<function view_file>\n<parameter=path>\na.py\n</parameter>\n</function>\n</tool_call>",
        "no <function=NAME>",
    ),
    (
        "name on the next line",
        "<tool_call>\n<function=\nview_file>\n</function>\n</tool_call>",
        "not closed with </function>",
    ),
    (
        "prose inside the function",
        "<tool_call>\n<function=view_file>\nI want the path:\n<parameter=path>\na.py\n</parameter>\n</function>\n</tool_call>",
        "not a <parameter=...> block",
    ),
    (
        "prose only inside the function",
        "<tool_call>\n<function=git_status>\nplease\n</function>\n</tool_call>",
        "not a <parameter=...> block",
    ),
    (
        "a parameter twice",
        "<tool_call>\n<function=view_file>\n<parameter=path>\na\n</parameter>\n<parameter=path>\nb\n</parameter>\n</function>\n</tool_call>",
        "given twice",
    ),
    ("bad JSON", '<tool_call>\n{"name": "view_file", "arguments": {"path": \n</tool_call>', "does not parse"),
    ("JSON without a name", '<tool_call>{"arguments": {"path": "a"}}</tool_call>', 'needs "name"'),
    (
        "JSON arguments not an object",
        '<tool_call>{"name": "view_file", "arguments": ["a"]}</tool_call>',
        "must be a JSON object",
    ),
    (
        "JSON arguments string not JSON",
        '<tool_call>{"name": "view_file", "arguments": "path=a"}</tool_call>',
        "not JSON",
    ),
    ("a bare function cut off", "<function=view_file>\n<parameter=path>\na.py", "not closed"),
    (
        "cut inside the closing tags",
        "<tool_call>\n<function=view_file>\n<parameter=path>\na.py\n</parameter>\n</func",
        "not closed",
    ),
]

PLAIN: list[tuple[str, str]] = [
    ("prose", "The tests pass now. I changed two files."),
    ("talks about tool calls", "I will make a tool_call to view the file next."),
    ("other tags", "Use <tool> and <function> elements in the XML."),
    ("markdown code", "```python\ndef f():\n    return '<b>'\n```"),
    ("names the opening tag", "Wrap calls in a <tool_call> tag; then continue."),
    ("names both tags", "Put <tool_call> and </tool_call> around each call, then continue."),
    ("empty tool_call", "<tool_call></tool_call>"),
    ("prose in tool_call", "<tool_call>I would like to view a.py</tool_call>"),
    ("a closing tag alone", "The reply ended with </tool_call> and nothing else."),
]


@pytest.mark.parametrize(("label", "text", "calls", "content"), OK, ids=[c[0] for c in OK])
def test_recovered_exactly(label: str, text: str, calls: list[tuple[str, dict[str, Any]]], content: str) -> None:
    recovery = recover_tool_calls(text, TOOLS)
    assert recovery.malformed == []
    assert [(c.name, c.args) for c in recovery.calls] == calls
    assert recovery.content == content


@pytest.mark.parametrize(("label", "text", "reason"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_is_reported_never_misparsed(label: str, text: str, reason: str) -> None:
    recovery = recover_tool_calls(text, TOOLS)
    assert recovery.calls == []
    assert len(recovery.malformed) == 1 and reason in recovery.malformed[0].reason


@pytest.mark.parametrize(("label", "text"), PLAIN, ids=[c[0] for c in PLAIN])
def test_plain_text_is_left_alone(label: str, text: str) -> None:
    recovery = recover_tool_calls(text, TOOLS)
    assert (recovery.content, recovery.calls, recovery.malformed) == (text, [], [])


def test_the_corpus_has_at_least_fifty_cases_and_every_one_is_handled() -> None:
    assert len(OK) + len(MALFORMED) + len(PLAIN) >= 50
    handled = sum(
        1 for _, text, calls, _ in OK if [(c.name, c.args) for c in recover_tool_calls(text, TOOLS).calls] == calls
    )
    handled += sum(1 for _, text, _ in MALFORMED if not recover_tool_calls(text, TOOLS).calls)
    assert handled == len(OK) + len(MALFORMED)


@pytest.mark.parametrize("seed", range(5))
def test_the_stream_filter_holds_back_exactly_the_tool_call_text(seed: int) -> None:
    rng = random.Random(seed)
    for _, text, _, _ in OK + [(label, text, [], "") for label, text, _ in MALFORMED]:
        prose = "Some words first, then <b>bold</b>. "
        whole = prose + text
        cuts = sorted(rng.sample(range(1, len(whole)), min(6, len(whole) - 1)))
        pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
        stream = ToolTextFilter()
        visible = "".join(stream.feed(piece) for piece in pieces)
        held = stream.finish()
        assert visible + held == whole
        assert visible.startswith(prose.rstrip()) and not has_tool_call_text(visible)
