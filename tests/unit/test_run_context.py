"""A run's context changes its settings, validated like any settings."""

from __future__ import annotations

import pytest

from sevenfold.context import RunContext, apply_context, context_overrides
from sevenfold.errors import SettingsError
from sevenfold.settings import load_settings


def test_context_overrides_endpoint_limits_and_roles_and_keeps_the_rest() -> None:
    base = load_settings(endpoints={"default": {"base_url": "http://a:1/v1", "api_key": "k-123"}}, max_rounds=3)
    context = RunContext(
        base_url="http://b:2/v1", slots=3, max_rounds=1, planner_thinking=False, worker_temperature=0.2
    )
    settings = apply_context(base, context.overrides())
    endpoint = settings.endpoints["default"]
    assert (endpoint.base_url, endpoint.slots, endpoint.api_key.get_secret_value()) == ("http://b:2/v1", 3, "k-123")
    assert settings.max_rounds == 1 and settings.planner.thinking is False and settings.worker.temperature == 0.2
    assert settings.reviewer.thinking is True and settings.worker.max_tokens == base.worker.max_tokens
    assert apply_context(base, {}) is base


def test_a_server_passes_the_context_as_a_dict_and_unknown_or_empty_keys_are_ignored() -> None:
    assert context_overrides({"slots": 2, "approve_plan": None, "colour": "red"}) == {"slots": 2}
    assert context_overrides(None) == {}


def test_a_bad_context_value_is_one_line_naming_the_field() -> None:
    with pytest.raises(
        SettingsError, match=r"^invalid setting endpoints\.default\.slots: .*greater than or equal to 1"
    ):
        apply_context(load_settings(), {"slots": 0})


def test_a_context_field_named_after_a_section_changes_that_setting() -> None:
    settings = apply_context(load_settings(), RunContext(context_budget=4096, reviewer_model="other").overrides())
    assert settings.context.budget == 4096 and settings.model_for("reviewer") == "other"
