"""One typed place for every setting.

Values come, highest first, from keyword overrides (the CLI's flags), `SEVENFOLD_*`
environment variables (nested with `__`, e.g. `SEVENFOLD_PLANNER__TEMPERATURE=0.2`,
`SEVENFOLD_ENDPOINTS__DEFAULT__BASE_URL=http://gpu:8000/v1`), a TOML file
(`--config` or `SEVENFOLD_CONFIG`), then the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sevenfold.errors import SettingsError, SevenfoldError
from sevenfold.qwen3_coder import MODEL_NAME

DEFAULT_MODEL = MODEL_NAME
DEFAULT_BASE_URL = "http://localhost:8000/v1"
ROLES = ("planner", "worker", "reviewer")


class EndpointSettings(BaseModel):
    """An OpenAI-compatible server (vLLM, or anything that speaks its API)."""

    model_config = {"extra": "forbid"}

    base_url: str = Field(DEFAULT_BASE_URL, description="Base URL ending in /v1.")
    api_key: SecretStr = Field(
        SecretStr("EMPTY"),
        description="Bearer token; vLLM ignores it unless started with --api-key.",
    )
    model: str = Field(DEFAULT_MODEL, description="Served model name, as listed by GET /v1/models.")
    slots: int = Field(7, ge=1, le=1024, description="Most model requests in flight at once on this endpoint.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a TCP connection.")
    vllm_extras: bool = Field(
        True,
        description="Send vLLM-only request fields (top_k, repetition_penalty); turned off automatically if the server rejects them.",
    )
    priority_scheduling: bool = Field(
        False,
        description="The server runs `--scheduling-policy priority`: workers send a stable request priority (vLLM "
        "rejects a non-zero one otherwise).",
    )
    replicas: int = Field(
        1,
        ge=1,
        le=256,
        description="Model servers behind this endpoint (a router such as vllm-router in front of them); `slots` is "
        "per replica, so the endpoint holds replicas x slots requests in flight (docs/scale-out.md).",
    )
    session_header: str = Field(
        "X-Session-ID",
        pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
        description="Header carrying the session key on every request, for a router's session affinity: "
        "X-Session-ID for vllm-router, X-SMG-Routing-Key for SGLang's router, the name given to vLLM "
        "production-stack's --session-key.",
    )
    session_scope: Literal["run", "worker", "none"] = Field(
        "run",
        description="The session key's value: run (the run id: a run's requests share one replica and its prefix "
        "cache), worker (the run id and worker key: a run's workers spread over replicas; planner and reviewer "
        "keep the run's value) or none (no header).",
    )

    @property
    def total_slots(self) -> int:
        """Requests in flight the whole endpoint holds: slots per replica x replicas (what its limiter counts)."""
        return self.slots * self.replicas

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got {value!r})")
        return value.rstrip("/")


class RoleSettings(BaseModel):
    """How one role (planner, worker, reviewer, ...) talks to its model."""

    model_config = {"extra": "forbid"}

    endpoint: str = Field("default", description="Name of an entry in `endpoints`.")
    model: str | None = Field(None, description="Model name; empty means the endpoint's model.")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature.")
    top_p: float = Field(0.8, gt=0.0, le=1.0, description="Nucleus sampling.")
    top_k: int = Field(20, ge=-1, description="vLLM extra: top-k sampling (-1 disables).")
    repetition_penalty: float = Field(1.05, gt=0.0, description="vLLM extra: repetition penalty.")
    max_tokens: int = Field(4096, ge=1, description="Most tokens generated per request.")
    timeout: float = Field(300.0, gt=0, description="Seconds one request may take, end to end.")
    max_retries: int = Field(
        3,
        ge=0,
        le=20,
        description="Retries of a failed request (5xx, timeout, dropped), with backoff.",
    )
    retry_backoff: float = Field(
        0.5,
        ge=0.0,
        le=60.0,
        description="Seconds before the first retry; doubles each time, jittered.",
    )
    thinking: bool = Field(False, description="Send chat_template_kwargs.enable_thinking=true.")
    stream: bool = Field(False, description="Stream replies (server-sent events) instead of waiting for whole ones.")


class ThinkingRoleSettings(RoleSettings):
    """A role that plans or judges (planner, reviewer): thinking on by default, a little cooler."""

    temperature: float = Field(0.6, ge=0.0, le=2.0, description="Sampling temperature.")
    thinking: bool = Field(True, description="Send chat_template_kwargs.enable_thinking=true.")


class ToolLimits(BaseModel):
    """Bounds on what the workspace tools may do."""

    model_config = {"extra": "forbid"}

    command_timeout: float = Field(120.0, gt=0, description="Seconds before a shell command's process group is killed.")
    test_timeout: float = Field(600.0, gt=0, description="Seconds before a test run is killed.")
    output_limit: int = Field(30_000, ge=1_000, description="Characters of command output kept (head and tail).")
    max_file_bytes: int = Field(
        1_000_000, ge=1_000, description="Files larger than this are refused by view and edits."
    )
    view_max_lines: int = Field(400, ge=10, description="Most lines one view call returns.")
    grep_max_matches: int = Field(200, ge=1, description="Most matching lines one grep call returns.")
    list_max_files: int = Field(1_000, ge=1, description="Most paths one list call returns.")
    test_command: str = Field(
        "python -m pytest",
        description="Command that runs the project's tests (pytest-compatible for structured results); may start "
        "with NAME=value assignments. Unset, a repository's pyproject.toml [tool.sevenfold] test_command is used. "
        "Variables for every command the tests run in go in sandbox.env (`sevenfold run --test-env`).",
    )


class ContextSettings(BaseModel):
    """How much of the model's context a worker's transcript may use, and what leaves it (see `llm/budget.py`)."""

    model_config = {"extra": "forbid"}

    manage: bool = Field(
        True,
        description="Keep each worker's prompt within the budget (big outputs to files, compaction); off sends whole "
        "transcripts every turn and a context-length 400 fails the worker (for comparisons).",
    )
    budget: int | None = Field(
        None,
        ge=1_024,
        description="Prompt tokens a worker's request may use; unset: derived from the server (max_model_len, "
        "the KV cache shared by the slots) minus the worker's max_tokens.",
    )
    high_water: float = Field(
        0.85, gt=0.0, le=1.0, description="Share of the budget at which a worker's transcript is compacted."
    )
    low_water: float = Field(0.5, gt=0.0, lt=1.0, description="Share of the budget a compaction brings it down to.")
    kv_cache_tokens: int | None = Field(
        None,
        ge=1_024,
        description="Tokens the server's KV cache holds, when the server does not say (vLLM's /metrics does).",
    )
    gpu: str | None = Field(
        None,
        description="The server's GPU (e.g. h100-80), for the capacity planner's KV figure when the server does not say.",
    )
    gpu_count: int = Field(1, ge=1, le=64, description="GPUs the server uses (tensor parallel), with `gpu`.")
    max_model_len: int = Field(
        32_768, ge=1_024, description="The server's context length, when GET /v1/models does not say."
    )
    offload_chars: int = Field(
        8_000,
        ge=1_000,
        description="Tool outputs longer than this go to a file in the run directory; the transcript keeps head, "
        "tail and a reference the worker can view.",
    )
    preview_chars: int = Field(1_500, ge=200, description="Characters kept from each end of an offloaded tool output.")

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, value: str | None) -> str | None:
        if value is not None:
            from sevenfold.serving.hardware import find_gpu

            try:
                find_gpu(value)
            except SevenfoldError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _low_below_high(self) -> ContextSettings:
        if self.low_water >= self.high_water:
            raise ValueError(f"low_water ({self.low_water}) must be below high_water ({self.high_water})")
        return self


class SandboxSettings(BaseModel):
    """Where the commands the model influences run (see docs/security.md)."""

    model_config = {"extra": "forbid"}

    backend: Literal["auto", "bwrap", "landlock", "none"] = Field(
        "auto",
        description="auto: bwrap if usable, else landlock, else refuse to run; none only when asked for by name.",
    )
    network: bool = Field(
        False, description="Let commands reach the network (e.g. for pip install); weakens the boundary."
    )
    read_paths: list[Path] = Field(
        default_factory=list,
        description="Extra paths commands may read (e.g. a virtualenv in your home folder the tests need).",
    )
    pass_env: list[str] = Field(
        default_factory=list, description="Names of environment variables passed to commands (besides PATH, LANG...)."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables set for every command.")
    hide_paths: list[Path] = Field(
        default_factory=list,
        description="More paths commands may not see (besides homes, /tmp, /run, your checkout and the run root).",
    )
    memory_mb: int = Field(8192, ge=64, description="Data memory one process of a command may allocate (MiB).")
    file_size_mb: int = Field(512, ge=1, description="Largest file a command may write (MiB).")
    cpu_seconds: int = Field(1800, ge=1, description="CPU time one process of a command may use (seconds).")
    processes: int = Field(
        1024, ge=8, description="Processes of the user at once (RLIMIT_NPROC; the kernel does not apply it to root)."
    )


def _default_endpoints() -> dict[str, EndpointSettings]:
    return {"default": EndpointSettings()}


_toml_data: ContextVar[dict[str, Any] | None] = ContextVar("_toml_data", default=None)
CONFIG_FILES_READ: set[Path] = set()
"""Every settings file this process has read: they may hold API keys, so sandboxed commands never see them."""


class _TomlSource(PydanticBaseSettingsSource):
    """Values from the TOML file `load_settings` was given."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_toml_data.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_toml_data.get() or {})


class Settings(BaseSettings):
    """Everything sevenfold can be told: endpoints, per-role models, limits."""

    model_config = SettingsConfigDict(
        env_prefix="SEVENFOLD_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    endpoints: dict[str, EndpointSettings] = Field(default_factory=_default_endpoints)
    planner: ThinkingRoleSettings = Field(default_factory=ThinkingRoleSettings)
    worker: RoleSettings = Field(default_factory=RoleSettings)
    reviewer: ThinkingRoleSettings = Field(default_factory=ThinkingRoleSettings)
    tools: ToolLimits = Field(default_factory=ToolLimits)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    context: ContextSettings = Field(default_factory=ContextSettings)
    max_rounds: int = Field(3, ge=1, le=20, description="Planner->verifier rounds before giving up.")
    max_active_workers: int = Field(
        16,
        ge=1,
        le=256,
        description="Workers running at once (more than slots, so tool time does not idle a slot).",
    )
    worker_max_steps: int = Field(
        100,
        ge=1,
        le=500,
        description="Model turns one worker may take before it must stop (Qwen3-Coder-30B-A3B averages 88 on SWE tasks).",
    )
    worker_max_tokens: int = Field(
        3_000_000,
        ge=1_000,
        description="Prompt + completion tokens one worker may spend (prompts are mostly served from the prefix cache).",
    )
    plan_attempts: int = Field(
        3, ge=1, le=10, description="Times a rejected plan is sent back to the planner before giving up."
    )
    repo_map_max_files: int = Field(
        300, ge=10, le=10_000, description="Most paths listed in the repository map shown to the model."
    )
    approve_plan: bool = Field(
        False, description="Pause after each plan until someone approves it (a LangGraph interrupt)."
    )
    keep_worktrees: bool = Field(
        False, description="Keep the workers' worktrees and branches after a run (for debugging)."
    )
    run_root: Path = Field(
        Path.home() / ".sevenfold" / "runs",
        description="Where run directories (checkpoints, reports, worktrees) go.",
    )
    checkpoint_url: SecretStr | None = Field(
        None,
        description="A postgresql:// URL: checkpoints and run records go to that shared database (needs the "
        "postgres extra) instead of a SQLite file per run. A secret: never printed with its password.",
    )

    @model_validator(mode="after")
    def _roles_name_known_endpoints(self) -> Settings:
        for role in ROLES:
            name = getattr(self, role).endpoint
            if name not in self.endpoints:
                known = ", ".join(sorted(self.endpoints)) or "none"
                raise ValueError(f"{role}.endpoint: no endpoint named {name!r} (known: {known})")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    def role(self, name: str) -> RoleSettings:
        """The settings of a role; `SettingsError` if there is no such role."""
        value = getattr(self, name, None)
        if not isinstance(value, RoleSettings):
            raise SettingsError(f"unknown role {name!r} (known: {', '.join(ROLES)})")
        return value

    def endpoint_for(self, role: str) -> EndpointSettings:
        """The endpoint a role talks to."""
        return self.endpoints[self.role(role).endpoint]

    def model_for(self, role: str) -> str:
        """The model name a role asks for."""
        return self.role(role).model or self.endpoint_for(role).model

    def with_overrides(
        self, *, base_url: str | None = None, model: str | None = None, slots: int | None = None, **changes: Any
    ) -> Settings:
        """These settings with some changed, validated again; every endpoint keeps its API key.

        `base_url`, `model` and `slots` change the default endpoint. Any other keyword names a setting; a dict
        changes only the keys it names, as a flag is laid over the config file (`tools={"test_command": "tox"}`
        keeps the other tool limits). Arguments left `None` change nothing, and with no change this is `self`.
        Raises `SettingsError` with one line naming the first bad field.
        """
        endpoint = {k: v for k, v in {"base_url": base_url, "model": model, "slots": slots}.items() if v is not None}
        changes = {k: v for k, v in changes.items() if v is not None}
        if endpoint:
            changes["endpoints"] = _merged(changes.get("endpoints") or {}, {"default": endpoint})
        if not changes:
            return self
        try:
            # model_dump() keeps the keys as SecretStr: never revealed, and changes without one keep it. Only what
            # was set is dumped, so a setting left at its default still reads as not chosen (`model_fields_set`).
            return type(self).model_validate(_merged(self.model_dump(exclude_unset=True), changes))
        except ValidationError as exc:
            raise SettingsError(_one_line(exc, None)) from None


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings from overrides, environment and an optional TOML file.

    Raises `SettingsError` with one line naming the first bad field.
    """
    path = config_file or os.environ.get("SEVENFOLD_CONFIG")
    data: dict[str, Any] = {}
    if path:
        CONFIG_FILES_READ.add(Path(path).resolve())
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"config file not found: {path}") from None
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    token = _toml_data.set(data)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc, path)) from None
    finally:
        _toml_data.reset(token)


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` laid over it, dicts merged key by key (as pydantic-settings layers its sources)."""
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        merged[key] = _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return merged


def _one_line(exc: ValidationError, path: str | Path | None) -> str:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if not field:  # a cross-field check: its message starts with the field's name
        field, _, message = message.partition(": ")
    where = f" (config file {path}, environment SEVENFOLD_*)" if path else " (environment SEVENFOLD_* or arguments)"
    more = f"; {exc.error_count() - 1} more" if exc.error_count() > 1 else ""
    got = (
        f" (got {first['input']!r})"
        if first["type"] not in ("missing", "value_error") and not isinstance(first.get("input"), dict)
        else ""
    )
    return f"invalid setting {field}: {message}{got}{where}{more}"
