"""Run-time settings: what one run may change without rebuilding the graph.

The graph is built from `Settings` once; a run can pass a `RunContext`
(`graph.ainvoke(input, context=RunContext(slots=4))`, or the form LangGraph
Studio draws from this class) to change the endpoint, slots, rounds, per-role
models and thinking, and whether the plan waits for approval. Fields left
`None` keep the graph's settings. The result is validated like any settings:
a bad value fails with one line naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from sevenfold.settings import Settings, load_settings


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

    def overrides(self) -> dict[str, Any]:
        """The fields that were set, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def context_overrides(context: RunContext | dict[str, Any] | None) -> dict[str, Any]:
    """The overrides a run's context carries (a `RunContext`, or the plain dict a server passes)."""
    if context is None:
        return {}
    if isinstance(context, RunContext):
        return context.overrides()
    known = {f.name for f in fields(RunContext)}
    return {k: v for k, v in dict(context).items() if k in known and v is not None}


def apply_context(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """`settings` with a run's overrides applied and validated; `SettingsError` naming a bad one."""
    if not overrides:
        return settings
    data = settings.model_dump()
    endpoint = data["endpoints"].setdefault("default", {})
    for key in ("base_url", "model", "slots"):
        if key in overrides:
            endpoint[key] = overrides[key]
    for key in ("max_rounds", "approve_plan"):
        if key in overrides:
            data[key] = overrides[key]
    for name, value in overrides.items():
        role, _, setting = name.partition("_")
        if role in ("planner", "worker", "reviewer") and setting:
            data[role][setting] = value
    data["endpoints"] = {
        name: {**values, "api_key": settings.endpoints[name].api_key.get_secret_value()}
        if name in settings.endpoints
        else values
        for name, values in data["endpoints"].items()
    }
    return load_settings(**data)
