"""Thinking text: telling it apart from the answer, and knowing which models have it.

Hybrid Qwen3 models write `<think>...</think>` before their answer when
`enable_thinking` is on. vLLM started with `--reasoning-parser qwen3` moves that
text to `reasoning_content`; without the parser it stays in `content`. Some
chat templates open the `<think>` tag in the prompt, so the answer holds only
the closing tag. Either way, later nodes must see only the answer.
"""

from __future__ import annotations

import re
from typing import Literal

from langchain_core.messages import AIMessage, BaseMessage

from sevenfold.qwen3_coder import partial_tag_suffix

_OPEN, _CLOSE = "<think>", "</think>"
_BLOCK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)

ThinkingCapability = Literal["none", "hybrid", "always", "unknown"]


def thinking_capability(model: str) -> ThinkingCapability:
    """Whether a model name is known to have a thinking mode.

    Qwen3-Coder and the Qwen3 2507 -Instruct releases have none; the 2507
    -Thinking releases always think; the original Qwen3 releases are hybrid.
    """
    name = model.lower()
    if "coder" in name or "instruct-2507" in name:
        return "none"
    if "thinking" in name:
        return "always"
    if "qwen3" in name:
        return "hybrid"
    return "unknown"


def split_thinking(text: str) -> tuple[str, str]:
    """Split model text into (answer, thinking); both stripped of the think tags."""
    if _CLOSE in text and _OPEN not in text.split(_CLOSE, 1)[0]:
        thinking, _, text = text.partition(_CLOSE)  # the template opened <think> in the prompt
        rest_answer, rest_thinking = split_thinking(text)
        return rest_answer.lstrip("\n"), "\n".join(p for p in (thinking.strip(), rest_thinking) if p)
    if _OPEN not in text:
        return text, ""
    thoughts = [m.strip() for m in _BLOCK.findall(text)]
    answer = _BLOCK.sub("", text)
    return answer.lstrip("\n") if thoughts else answer, "\n".join(t for t in thoughts if t)


class ThinkingFilter:
    """Separates thinking from answer in a stream whose tags may be split across chunks.

    With `opened_in_prompt_possible` (thinking was asked for), the stream may
    begin inside a `<think>` the chat template opened, so text is held back
    until a tag decides it: `</think>` first means everything before it was
    thinking, `<think>` first means normal tags. If the stream ends undecided,
    or the server parses thinking itself (`server_parses()`), the held text is
    answer.
    """

    def __init__(self, opened_in_prompt_possible: bool = False) -> None:
        self._inside = False
        self._pending = ""
        self._after_close = False
        self._undecided = opened_in_prompt_possible

    def server_parses(self) -> None:
        """The server sends thinking separately (`reasoning_content`): content holds no prompt-opened block."""
        self._undecided = False

    def feed(self, chunk: str) -> tuple[str, str]:
        """Return the (answer, thinking) text this chunk completes; holds back a partial tag."""
        text = self._pending + chunk
        self._pending = ""
        if self._undecided:
            close, open_ = text.find(_CLOSE), text.find(_OPEN)
            if close < 0 and open_ < 0:
                self._pending = text
                return "", ""
            self._undecided = False
            if close >= 0 and (open_ < 0 or close < open_):
                self._inside = True  # the template opened <think>: what came so far is thinking
        answer: list[str] = []
        thinking: list[str] = []
        while text:
            tag = _CLOSE if self._inside else _OPEN
            index = text.find(tag)
            if index < 0:
                keep = partial_tag_suffix(text, tag)
                body, self._pending = text[: len(text) - keep], text[len(text) - keep :]
                (thinking if self._inside else answer).append(body)
                break
            (thinking if self._inside else answer).append(text[:index])
            text = text[index + len(tag) :]
            self._after_close = self._inside
            self._inside = not self._inside
        visible = "".join(answer)
        if self._after_close and visible:
            stripped = visible.lstrip("\n")
            if stripped:
                self._after_close = False
            visible = stripped
        return visible, "".join(thinking)

    def flush(self) -> tuple[str, str]:
        """Whatever is held back at the end of the stream."""
        rest, self._pending = self._pending, ""
        self._undecided = False
        return ("", rest) if self._inside else (rest, "")


def move_thinking(message: BaseMessage, server_reasoning: str | None = None) -> None:
    """Move thinking out of a reply's content into `additional_kwargs["reasoning_content"]` (with the server's)."""
    if not isinstance(message, AIMessage) or not isinstance(message.content, str):
        return
    answer, thinking = split_thinking(message.content)
    parts = [p for p in (server_reasoning, thinking) if p]
    message.content = answer
    if parts:
        message.additional_kwargs["reasoning_content"] = "\n".join(parts)
