"""Prompt rendering and token counting for the simulator.

The simulator has no tokenizer for Qwen3-Coder (its files are not shipped and
nothing here may download them), so it counts tokens with a fixed regular
expression that averages about four characters a token on code, close to what
BPE tokenizers give. Counts are therefore approximate; what matters for
scheduling and the prefix cache is that the same text always gives the same
tokens, and that a shared prefix gives shared leading blocks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from sevenfold.qwen3_coder import render_tool_call_xml

# A word piece of at most six characters with one leading space, one
# punctuation mark with one leading space, or a run of whitespace.
_TOKEN = re.compile(r"\s?\w{1,6}|\s?[^\w\s]|\s+")


def tokenize(text: str) -> list[str]:
    """Split text into pseudo-tokens whose concatenation is the text."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Number of pseudo-tokens in text."""
    return sum(1 for _ in _TOKEN.finditer(text))


def block_hashes(tokens: Sequence[str], block_size: int) -> list[int]:
    """Chained hashes of the full blocks of a token sequence, as vLLM's prefix cache keys them.

    Block i's hash covers every token before it, so two prompts share block i's
    hash only if they share the whole prefix up to the end of block i.
    """
    hashes: list[int] = []
    parent = 0
    for start in range(0, len(tokens) - block_size + 1, block_size):
        parent = hash((parent, tuple(tokens[start : start + block_size])))
        hashes.append(parent)
    return hashes


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def render_prompt(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> str:
    """Render a chat request the way Qwen3-Coder's chat template lays it out (ChatML).

    Tools go into the system turn first, so requests that share a system prompt
    and tool list share a long prefix, as they do on the real server.
    """
    parts: list[str] = []
    rest = list(messages)
    system = ""
    if rest and rest[0].get("role") == "system":
        system = _content_text(rest.pop(0).get("content"))
    if tools or system:
        text = system or "You are Qwen, a helpful assistant."
        if tools:
            text += "\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>"
            for tool in tools:
                text += "\n" + json.dumps(tool.get("function", tool), ensure_ascii=False, sort_keys=True)
            text += "\n</tools>"
        parts.append(f"<|im_start|>system\n{text}<|im_end|>\n")
    for message in rest:
        role = message.get("role", "user")
        content = _content_text(message.get("content"))
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                function = call.get("function", {})
                try:
                    args = json.loads(function.get("arguments") or "{}")
                except (TypeError, ValueError):
                    args = {"arguments": function.get("arguments")}
                content += "\n" + render_tool_call_xml(function.get("name", ""), args if isinstance(args, dict) else {})
            parts.append(f"<|im_start|>assistant\n{content}<|im_end|>\n")
        elif role == "tool":
            parts.append(f"<|im_start|>user\n<tool_response>\n{content}\n</tool_response><|im_end|>\n")
        else:
            parts.append(f"<|im_start|>{role}\n{content}<|im_end|>\n")
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)
