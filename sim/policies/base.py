"""The policy protocol and the request/reply types it works with."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class ToolCallSpec:
    """A tool call the policy wants the model to make."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


MalformedShape = Literal[
    "missing_open_tag",
    "parameter_run_on",
    "unclosed_function",
    "json_inside",
    "misspelt_tool",
    "misspelt_parameter",
]
"""Ways a model writes a tool call broken (DESIGN section 11; the last four are `sim/output.corrupt_tool_xml`'s):

- `missing_open_tag`: the opening `<tool_call>` is left out; the rest is intact.
- `parameter_run_on`: the first parameter's name runs into its value, `<parameter=command=create</parameter>`
  (`>` and the newline after the name become `=`, and the newline before `</parameter>` is gone).
- `unclosed_function`: `<function NAME>` instead of `<function=NAME>`: no name can be read.
- `json_inside`: hermes-style JSON between the tags, cut off: `{"name": "NAME", "arguments": {`.
- `misspelt_tool`: the function name gets an `x_` prefix (an unknown tool).
- `misspelt_parameter`: the first parameter name gets a `_` prefix (an unknown argument).
"""

MALFORMED_SHAPES: tuple[MalformedShape, ...] = (
    "missing_open_tag",
    "parameter_run_on",
    "unclosed_function",
    "json_inside",
    "misspelt_tool",
    "misspelt_parameter",
)


@dataclass(frozen=True)
class Reply:
    """What the model says in one turn."""

    content: str = ""
    tool_calls: tuple[ToolCallSpec, ...] = ()
    reasoning: str = ""
    """Thinking text; emitted only when the served model can think and thinking is on."""
    malformed: MalformedShape | None = None
    """Write the tool calls' XML broken in this way (the server renders it; a policy never writes protocol
    text). None: well-formed, unless the server's own `--fault malformed` draw breaks it."""


@dataclass(frozen=True)
class ChatRequest:
    """A chat-completions request as a policy sees it."""

    request_id: str
    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_choice: Any
    enable_thinking: bool | None
    hints: dict[str, str]
    """`X-Sevenfold-*` request headers, lower-cased without the prefix (e.g. {"role": "worker"})."""

    @property
    def role(self) -> str | None:
        """The orchestrator role that sent the request, if it said."""
        return self.hints.get("role")

    @property
    def tool_names(self) -> list[str]:
        return [t.get("function", {}).get("name", "") for t in self.tools]

    def text(self, message: dict[str, Any]) -> str:
        """A message's content as plain text."""
        content = message.get("content")
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return content or ""

    @property
    def system(self) -> str:
        return "\n".join(self.text(m) for m in self.messages if m.get("role") == "system")

    @property
    def last(self) -> dict[str, Any]:
        return self.messages[-1] if self.messages else {}


class Policy(Protocol):
    """Decides what the simulated model replies."""

    def reply(self, request: ChatRequest) -> Reply:
        """The reply to one request. Must be quick: it runs on the server's event loop."""
        ...


def request_digest(value: Any) -> str:
    """A digest of a request (or part of one) that ignores the tool-call ids a server makes up (they differ from
    run to run): the same conversation gets the same digest, so draws keyed by it repeat."""

    def clean(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: clean(v) for k, v in item.items() if k not in ("id", "tool_call_id")}
        if isinstance(item, list):
            return [clean(v) for v in item]
        return item

    text = json.dumps(clean(value), sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
