"""What one role's model did (requests, retries, errors, tokens, recovered calls), for the run report."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CallStats:
    """What one role's model did, for the run report."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    slot_wait_s: float = 0.0
    tool_calls_recovered: int = 0
    """Tool calls found as text in content and turned into real calls."""
    tool_calls_malformed: int = 0
    """Tool-call text that could not be read; reported to the model as invalid calls."""

    def record_error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1
