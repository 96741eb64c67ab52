"""Thinking text is separated from answers; scripted policies answer by their rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from sevenfold.errors import SettingsError
from sevenfold.llm.thinking import ThinkingFilter, split_thinking, thinking_capability
from sevenfold.sim.policies import ChatRequest, load_policy


@pytest.mark.parametrize(
    ("text", "answer", "thinking"),
    [
        ("<think>\nweigh options\n</think>\n\nThe answer.", "The answer.", "weigh options"),
        ("opened in the prompt</think>\n\nThe answer.", "The answer.", "opened in the prompt"),
        ("No thinking at all.", "No thinking at all.", ""),
        ("<think>cut off mid-thought", "", "cut off mid-thought"),
    ],
)
def test_split_thinking(text: str, answer: str, thinking: str) -> None:
    assert split_thinking(text) == (answer, thinking)


def test_stream_filter_handles_tags_split_across_chunks() -> None:
    stream = ["<th", "ink>\nstep one", " step two</thi", "nk>\n", "\nDone <b>", "bold</b>"]
    filt = ThinkingFilter()
    parts = [filt.feed(chunk) for chunk in stream] + [filt.flush()]
    assert "".join(a for a, _ in parts) == "Done <b>bold</b>"
    assert "".join(t for _, t in parts) == "\nstep one step two"


@pytest.mark.parametrize(
    ("chunks", "answer", "thinking"),
    [
        (["Let me ", "see.</th", "ink>\n\nThe ", "answer."], "The answer.", "Let me see."),
        (["<think>plan", "</think>\nDone."], "Done.", "plan"),
        (["No tags ", "at all."], "No tags at all.", ""),
        (["An answer that mentions <think> tags"], "An answer that mentions ", " tags"),
    ],
)
def test_stream_filter_handles_a_think_tag_opened_by_the_template(
    chunks: list[str], answer: str, thinking: str
) -> None:
    filt = ThinkingFilter(opened_in_prompt_possible=True)
    parts = [filt.feed(c) for c in chunks] + [filt.flush()]
    assert "".join(a for a, _ in parts) == answer
    assert "".join(t for _, t in parts) == thinking
    assert split_thinking("".join(chunks)) == (answer, thinking.strip())  # the same as a whole reply


def test_stream_filter_lets_go_when_the_server_parses_thinking() -> None:
    filt = ThinkingFilter(opened_in_prompt_possible=True)
    assert filt.feed("Held ") == ("", "")
    filt.server_parses()
    assert filt.feed("then streamed.") == ("Held then streamed.", "")


def test_which_models_can_think() -> None:
    assert thinking_capability("Qwen/Qwen3-Coder-30B-A3B-Instruct") == "none"
    assert thinking_capability("Qwen/Qwen3-30B-A3B-Instruct-2507") == "none"
    assert thinking_capability("Qwen/Qwen3-30B-A3B-Thinking-2507") == "always"
    assert thinking_capability("Qwen/Qwen3-30B-A3B") == "hybrid"


def _request(*messages: dict[str, str], role: str = "worker", tools: tuple[str, ...] = ()) -> ChatRequest:
    tool_list = [{"type": "function", "function": {"name": name}} for name in tools]
    return ChatRequest("r", "m", list(messages), tool_list, "auto", None, {"role": role})


def test_scripted_policy_matches_rules_in_order_with_use_limits(tmp_path: Path) -> None:
    script = tmp_path / "scenario.yaml"
    script.write_text(
        """
rules:
  - match: {role: planner, last: "add .* feature"}
    reply: {content: "PLAN", reasoning: "think first"}
  - match: {role: worker, last_role: user, tools: view_file}
    times: 1
    reply:
      tool_calls: [{name: view_file, arguments: {path: app.py, start_line: 1}}]
  - match: {role: worker, last_role: tool}
    reply: {content: "DONE"}
default: {content: "??"}
"""
    )
    policy = load_policy(str(script))
    assert policy.reply(_request({"role": "user", "content": "add the 2FA feature"}, role="planner")).content == "PLAN"
    first = policy.reply(_request({"role": "user", "content": "go"}, tools=("view_file",)))
    assert first.tool_calls[0].name == "view_file" and first.tool_calls[0].arguments == {
        "path": "app.py",
        "start_line": 1,
    }
    assert policy.reply(_request({"role": "user", "content": "go"}, tools=("view_file",))).content == "??"  # used up
    assert policy.reply(_request({"role": "tool", "content": "file text"})).content == "DONE"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rules: 3", "needs a list under 'rules'"),
        ("rules:\n  - match: {colour: red}", "match keys must be among"),
        ("rules:\n  - reply: {text: x}", "unknown reply keys"),
    ],
)
def test_bad_scripts_are_refused_with_the_file_and_rule(tmp_path: Path, text: str, says: str) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text(text)
    with pytest.raises(SettingsError, match=says):
        load_policy(str(script))


def test_unknown_policy_names_list_the_known_ones() -> None:
    with pytest.raises(SettingsError, match=r"known: .*echo-tools"):
        load_policy("no-such-policy")
