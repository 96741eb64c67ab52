"""Run-time settings: what one run may change without rebuilding the graph.

The graph is built from `Settings` once; a run can pass a `RunContext`
(`graph.ainvoke(input, context=RunContext(slots=4))`, or the form LangGraph
Studio draws from this class) to change the endpoint, slots, rounds, per-role
models and thinking, and whether the plan waits for approval. Fields left
`None` keep the graph's settings. The result is validated like any settings:
a bad value fails with one line naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from sevenfold.settings import ROLES, Settings


@dataclass(frozen=True)
class RunContext:
    """Per-run overrides of the graph's settings (Studio shows these as a form)."""

    base_url: str | None = field(
        default=None, metadata={"description": "Model server base URL ending in /v1 (the default endpoint)."}
    )
    model: str | None = field(
        default=None, metadata={"description": "Served model name of the default endpoint, as GET /v1/models lists it."}
    )
    slots: int | None = field(
        default=None, metadata={"description": "Most model requests in flight at once on the default endpoint."}
    )
    max_rounds: int | None = field(
        default=None, metadata={"description": "Planner -> verifier rounds before the team gives up."}
    )
    approve_plan: bool | None = field(
        default=None,
        metadata={
            "description": "Pause after each plan until it is approved: resume with true, false, or {'plan': {...}}."
        },
    )
    planner_model: str | None = field(default=None, metadata={"description": "Model for the planner."})
    planner_thinking: bool | None = field(default=None, metadata={"description": "Thinking mode for the planner."})
    worker_model: str | None = field(default=None, metadata={"description": "Model for the workers."})
    worker_temperature: float | None = field(default=None, metadata={"description": "Workers' sampling temperature."})
    reviewer_model: str | None = field(default=None, metadata={"description": "Model for the reviewer."})
    reviewer_thinking: bool | None = field(default=None, metadata={"description": "Thinking mode for the reviewer."})
    context_budget: int | None = field(
        default=None,
        metadata={
            "description": "Prompt tokens a worker's request may use before its transcript is compacted "
            "(unset: derived from the server's context length and KV cache)."
        },
    )

    def overrides(self) -> dict[str, Any]:
        """The fields that were set, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def context_overrides(context: RunContext | Mapping[str, Any] | None) -> dict[str, Any]:
    """The overrides a run's context carries (a `RunContext`, or the plain dict a server passes)."""
    if context is None:
        return {}
    if isinstance(context, RunContext):
        return context.overrides()
    known = {f.name for f in fields(RunContext)}
    return {k: v for k, v in dict(context).items() if k in known and v is not None}


_SETTINGS = ("base_url", "model", "slots", "max_rounds", "approve_plan")
"""Context fields that are settings of their own name (the first three the default endpoint's)."""
_SECTIONS = (*ROLES, "context")
"""`<section>_<setting>` fields change one setting of a section: `planner_thinking`, `context_budget`."""


def apply_context(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """`settings` with a run's overrides applied and validated, API keys kept; `SettingsError` naming a bad one."""
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        section, _, setting = name.partition("_")
        if name in _SETTINGS:
            changes[name] = value
        elif section in _SECTIONS and setting:
            changes.setdefault(section, {})[setting] = value
    return settings.with_overrides(**changes)
