"""Settings load from arguments, SEVENFOLD_* variables and TOML; bad values fail with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sevenfold.errors import SettingsError
from sevenfold.settings import load_settings


def test_defaults_match_the_design() -> None:
    settings = load_settings()
    assert (settings.planner.thinking, settings.worker.thinking, settings.reviewer.thinking) == (True, False, True)
    assert settings.model_for("worker") == "Qwen/Qwen3-Coder-30B-A3B-Instruct"
    assert settings.endpoint_for("planner").base_url == "http://localhost:8000/v1"
    assert settings.endpoint_for("planner").slots == 7


def test_partial_role_overrides_keep_the_roles_own_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEVENFOLD_PLANNER__TEMPERATURE", "0.2")
    settings = load_settings(reviewer={"max_tokens": 100})
    assert settings.planner.temperature == 0.2 and settings.planner.thinking is True
    assert settings.reviewer.max_tokens == 100 and settings.reviewer.thinking is True


def test_environment_beats_the_toml_file_and_both_merge_deeply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "sevenfold.toml"
    config.write_text(
        '[endpoints.default]\nbase_url = "http://gpu-box:8000/v1"\nslots = 3\n\n[worker]\nmodel = "other-model"\n'
    )
    monkeypatch.setenv("SEVENFOLD_ENDPOINTS__DEFAULT__SLOTS", "5")
    settings = load_settings(config)
    assert settings.endpoints["default"].base_url == "http://gpu-box:8000/v1"
    assert settings.endpoints["default"].slots == 5
    assert (
        settings.model_for("worker") == "other-model"
        and settings.model_for("planner") == "Qwen/Qwen3-Coder-30B-A3B-Instruct"
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"SEVENFOLD_PLANNER__TEMPERATURE": "5"},
            "invalid setting planner.temperature: Input should be less than or equal to 2",
        ),
        (
            {"SEVENFOLD_ENDPOINTS__DEFAULT__SLOTS": "0"},
            "invalid setting endpoints.default.slots: Input should be greater than or equal to 1",
        ),
        ({"SEVENFOLD_WORKER__ENDPOINT": "gpu2"}, "invalid setting worker.endpoint: no endpoint named 'gpu2'"),
        (
            {"SEVENFOLD_ENDPOINTS__DEFAULT__BASE_URL": "localhost:8000"},
            "invalid setting endpoints.default.base_url: must start with http",
        ),
        ({"SEVENFOLD_WORKER__THINK": "true"}, "invalid setting worker.think: Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_fail_at_load_with_one_line_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_config_file_problems_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="config file not found"):
        load_settings(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[worker\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(broken)


def test_api_key_is_a_secret_in_reprs() -> None:
    settings = load_settings(endpoints={"default": {"api_key": "sk-canary-123"}})
    assert "sk-canary-123" not in repr(settings) and "sk-canary-123" not in settings.model_dump_json()


def test_overrides_change_the_default_endpoint_and_named_keys_and_keep_every_api_key() -> None:
    settings = load_settings(
        endpoints={
            "default": {"base_url": "http://a:1/v1", "api_key": "sk-default"},
            "gpu2": {"base_url": "http://b:2/v1", "api_key": "sk-gpu2"},
        },
        tools={"test_timeout": 60},
    )
    changed = settings.with_overrides(
        base_url="http://c:3/v1", slots=3, model=None, tools={"test_command": "tox"}, planner={"thinking": False}
    )
    default, gpu2 = changed.endpoints["default"], changed.endpoints["gpu2"]
    assert (default.base_url, default.slots, default.api_key.get_secret_value()) == ("http://c:3/v1", 3, "sk-default")
    assert (gpu2.base_url, gpu2.api_key.get_secret_value()) == ("http://b:2/v1", "sk-gpu2")
    assert default.model == settings.endpoints["default"].model  # None: not given
    assert (changed.tools.test_command, changed.tools.test_timeout) == ("tox", 60)
    assert changed.planner.thinking is False and changed.planner.temperature == settings.planner.temperature
    assert settings.endpoints["default"].base_url == "http://a:1/v1"  # the original is left as it was
    assert settings.with_overrides(slots=None) is settings


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"slots": 0}, "invalid setting endpoints.default.slots: Input should be greater than or equal to 1"),
        ({"base_url": "gpu-box:8000"}, "invalid setting endpoints.default.base_url: must start with http"),
        ({"planner": {"temperature": 5}}, "invalid setting planner.temperature: Input should be less than or equal"),
        ({"worker": {"think": True}}, "invalid setting worker.think: Extra inputs are not permitted"),
    ],
)
def test_a_bad_override_is_one_line_naming_the_field(changes: dict[str, object], says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings().with_overrides(**changes)  # type: ignore[arg-type]
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_overrides_leave_what_was_not_chosen_unchosen() -> None:
    # The test setup chooses `PYTHONPATH=src` only when nobody chose a test command: an override must not choose one.
    settings = load_settings().with_overrides(slots=3, max_rounds=2)
    assert "test_command" not in settings.tools.model_fields_set
    chosen = settings.with_overrides(tools={"test_command": "tox"})
    assert "test_command" in chosen.tools.model_fields_set and chosen.endpoints["default"].slots == 3
