"""Building each role's chat model from settings, and checking the server first."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from sevenfold.errors import ModelNotServedError, ServerError, ServerUnreachableError
from sevenfold.llm.chat import SevenfoldChatOpenAI
from sevenfold.llm.limiter import LIMITERS
from sevenfold.llm.thinking import thinking_capability
from sevenfold.settings import ROLES, EndpointSettings, Settings

log = logging.getLogger(__name__)
_warned: set[tuple[str, str]] = set()


def session_headers(endpoint: EndpointSettings, run_id: str | None, worker: str | None = None) -> dict[str, str]:
    """The headers that tell a router which session a request belongs to (docs/scale-out.md).

    `X-Sevenfold-Run` names the run for the simulator's request log and any proxy's; the endpoint's
    `session_header` carries the session key by `session_scope`: the run id, or (for a worker's requests, when
    the scope is `worker`) the run id and the worker's key. No run id, or scope `none`: no session header.
    """
    if run_id is None:
        return {}
    headers = {"X-Sevenfold-Run": run_id}
    if endpoint.session_scope == "run" or (endpoint.session_scope == "worker" and worker is None):
        headers[endpoint.session_header] = run_id
    elif endpoint.session_scope == "worker":
        headers[endpoint.session_header] = f"{run_id}/{worker}"
    return headers


def chat_model(settings: Settings, role: str, run_id: str | None = None) -> SevenfoldChatOpenAI:
    """The chat model for `role`, wired to its endpoint's slot limiter (replicas x slots).

    With a `run_id`, every request carries the run's session headers (`session_headers`); a worker's requests
    may replace the session key with its own (`nodes/worker.py`).

    Thinking is requested with `chat_template_kwargs.enable_thinking` from the
    role's settings. When the role asks for thinking from a model that has no
    thinking mode (Qwen3-Coder), the flag is still sent (the template ignores
    it) and a warning says so once, so nobody believes the model is thinking.
    """
    role_settings = settings.role(role)
    endpoint = settings.endpoint_for(role)
    model = settings.model_for(role)
    if role_settings.thinking and thinking_capability(model) == "none" and (role, model) not in _warned:
        _warned.add((role, model))
        log.warning(
            "%s asks for thinking, but %s has no thinking mode; it will answer directly",
            role,
            model,
        )
    extra_body: dict[str, Any] = {"chat_template_kwargs": {"enable_thinking": role_settings.thinking}}
    if endpoint.vllm_extras:
        extra_body |= {
            "top_k": role_settings.top_k,
            "repetition_penalty": role_settings.repetition_penalty,
        }
    client = SevenfoldChatOpenAI(
        role=role,
        model=model,
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        temperature=role_settings.temperature,
        top_p=role_settings.top_p,
        max_completion_tokens=role_settings.max_tokens,
        timeout=role_settings.timeout,
        stream_chunk_timeout=role_settings.timeout,
        max_retries=0,
        retry_attempts=role_settings.max_retries,
        retry_backoff=role_settings.retry_backoff,
        extra_body=extra_body,
        default_headers={"X-Sevenfold-Role": role, **session_headers(endpoint, run_id)},
        stream_usage=True,
        streaming=role_settings.stream,
    )
    return client.with_limiter(LIMITERS.for_run(endpoint.base_url, endpoint.total_slots))


def role_models(settings: Settings) -> dict[str, SevenfoldChatOpenAI]:
    """One chat model per role (planner, worker, reviewer)."""
    return {role: chat_model(settings, role) for role in ROLES}


@dataclass(frozen=True)
class EndpointInfo:
    """What an endpoint said about itself."""

    base_url: str
    models: list[str]
    max_model_len: int | None
    simulator: bool


async def check_endpoint(endpoint: EndpointSettings, model: str | None = None) -> EndpointInfo:
    """Ask the server which models it serves, within the connect timeout.

    Raises `ServerUnreachableError` if nothing answers, `ModelNotServedError`
    if `model` (default: the endpoint's) is not among the served models.
    """
    wanted = model or endpoint.model
    timeout = aiohttp.ClientTimeout(total=endpoint.connect_timeout * 2, connect=endpoint.connect_timeout)
    headers = {"Authorization": f"Bearer {endpoint.api_key.get_secret_value()}"}
    root = endpoint.base_url.removesuffix("/v1")
    try:
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            async with session.get(f"{endpoint.base_url}/models") as response:
                if response.status != 200:
                    raise ServerError(
                        f"{endpoint.base_url}/models answered HTTP {response.status}; is this an OpenAI-compatible server?"
                    )
                body = await response.json(content_type=None)
            simulator = False
            try:
                async with session.get(f"{root}/version") as response:
                    simulator = response.status == 200 and "sevenfold-sim" in (await response.text())
            except aiohttp.ClientError:
                pass
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise ServerUnreachableError(
            f"no model server at {endpoint.base_url} ({type(exc).__name__}: {exc or 'timed out'}); start vLLM or `sevenfold sim`, or set the base URL"
        ) from None
    cards = body.get("data") if isinstance(body, dict) else None
    if not isinstance(cards, list):
        raise ServerError(f"{endpoint.base_url}/models did not return a model list")
    names = [str(card.get("id")) for card in cards if isinstance(card, dict)]
    if wanted not in names:
        raise ModelNotServedError(
            f"the server at {endpoint.base_url} does not serve {wanted!r} (it serves: {', '.join(names) or 'nothing'})"
        )
    card = next(c for c in cards if c.get("id") == wanted)
    return EndpointInfo(endpoint.base_url, names, card.get("max_model_len"), simulator)
