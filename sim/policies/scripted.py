"""Scripted scenarios: replies chosen by rules in a YAML or JSON file.

File format (every key optional except `rules`)::

    rules:
      - match:                    # every given condition must hold
          role: worker            # X-Sevenfold-Role request header
          system: "regex"         # searched in the system prompt
          last: "regex"           # searched in the last message's text
          last_role: tool         # role of the last message (user, tool, assistant)
          any: "regex"            # searched in every message's text
          tools: view_file        # the request offers this tool
          thinking: true          # chat_template_kwargs.enable_thinking
        times: 1                  # use this rule at most N times (default: unlimited)
        reply:
          content: "text"
          reasoning: "thinking text"
          tool_calls:
            - name: view_file
              arguments: {path: src/app.py}
    default:                      # when no rule matches
      content: "Nothing scripted for this."

Rules are tried in order; the first that matches (and has uses left) answers.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import yaml

from sevenfold.errors import SettingsError
from sevenfold.sim.policies.base import ChatRequest, Reply, ToolCallSpec

_MATCH_KEYS = {"role", "system", "last", "last_role", "any", "tools", "thinking"}


def _reply(data: dict[str, Any], where: str) -> Reply:
    unknown = set(data) - {"content", "reasoning", "tool_calls"}
    if unknown:
        raise SettingsError(f"{where}: unknown reply keys {sorted(unknown)}")
    calls = []
    for call in data.get("tool_calls") or []:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise SettingsError(f"{where}: each tool call needs a name")
        calls.append(ToolCallSpec(call["name"], dict(call.get("arguments") or {})))
    return Reply(
        content=str(data.get("content", "")),
        reasoning=str(data.get("reasoning", "")),
        tool_calls=tuple(calls),
    )


class _Rule:
    def __init__(self, data: dict[str, Any], where: str) -> None:
        match = data.get("match") or {}
        if not isinstance(match, dict) or set(match) - _MATCH_KEYS:
            raise SettingsError(f"{where}: match keys must be among {sorted(_MATCH_KEYS)}")
        self.match = match
        try:
            self.patterns = {k: re.compile(v, re.DOTALL) for k, v in match.items() if k in ("system", "last", "any")}
        except re.error as exc:
            raise SettingsError(f"{where}: bad regular expression: {exc}") from None
        self.times: int | None = data.get("times")
        self.reply = _reply(data.get("reply") or {}, where)
        self.used = 0

    def matches(self, request: ChatRequest) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        m = self.match
        if "role" in m and request.role != m["role"]:
            return False
        if "last_role" in m and request.last.get("role") != m["last_role"]:
            return False
        if "tools" in m and m["tools"] not in request.tool_names:
            return False
        if "thinking" in m and bool(request.enable_thinking) != bool(m["thinking"]):
            return False
        if "system" in self.patterns and not self.patterns["system"].search(request.system):
            return False
        if "last" in self.patterns and not self.patterns["last"].search(request.text(request.last)):
            return False
        return not (
            "any" in self.patterns
            and not any(self.patterns["any"].search(request.text(msg)) for msg in request.messages)
        )


class ScriptedPolicy:
    """Answers from a list of rules loaded from a file."""

    def __init__(self, script: dict[str, Any], source: str = "script") -> None:
        rules = script.get("rules")
        if not isinstance(rules, list):
            raise SettingsError(f"{source}: a script needs a list under 'rules'")
        self.rules = [_Rule(rule, f"{source} rule {i + 1}") for i, rule in enumerate(rules)]
        default = script.get("default")
        self.default = _reply(default, f"{source} default") if default else Reply(content="Nothing scripted for this.")
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path) -> ScriptedPolicy:
        """Load a script; `SettingsError` with the file name if it cannot be read."""
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise SettingsError(f"cannot read policy script {path}: {exc}".splitlines()[0]) from None
        if not isinstance(data, dict):
            raise SettingsError(f"policy script {path}: expected a mapping at the top")
        return cls(data, str(path))

    def reply(self, request: ChatRequest) -> Reply:
        with self._lock:
            for rule in self.rules:
                if rule.matches(request):
                    rule.used += 1
                    return rule.reply
        return self.default
