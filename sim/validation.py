"""Request validation and error bodies, as vLLM 0.11's OpenAI-compatible server returns them.

vLLM answers a bad request in one of two ways (vllm/entrypoints/openai/api_server.py):

- the request does not fit its pydantic model (wrong type, a `model_validator`
  such as "Stream options can only be defined when `stream=True`.", a body that
  is not JSON or not `application/json`): HTTP 400 with type "Bad Request" and
  the message FastAPI's `RequestValidationError` prints, the list of pydantic
  errors as Python writes it (`[{'type': 'value_error', 'loc': ('body',), ...}]`);
- it fits but the server refuses it (model unknown, context too long,
  `temperature: -1`, ...): `create_error_response`, type "BadRequestError"
  (404 "NotFoundError" for the model), the exception's text as the message.

Both have the body `{"error": {"message", "type", "param", "code"}}`. Unknown
routes and wrong methods answer FastAPI's own `{"detail": "Not Found"}` (404) and
`{"detail": "Method Not Allowed"}` (405): vLLM's HTTPException handler is
registered for FastAPI's subclass, which the router's 404/405 are not.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sevenfold.sim.fields import CHAT_FIELDS, field_errors

MAX_LOGPROBS = 20
"""vLLM's default `--max-logprobs`."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestError(Exception):
    """A request vLLM refuses, with the status and error body it answers."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param

    def response(self) -> web.Response:
        """The JSON error response."""
        return error_response(self.status, self.message, self.kind, self.param)


def error_response(status: int, message: str, kind: str, param: str | None = None) -> web.Response:
    """vLLM's error body (`{"error": {"message", "type", "param", "code"}}`) with the given HTTP status."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return web.json_response(body, status=status)


def refused(message: str) -> RequestError:
    """A 400 from `create_error_response`: the request was valid but the server will not run it."""
    return RequestError(400, message, "BadRequestError")


def invalid(errors: list[Any]) -> RequestError:
    """A 400 from FastAPI's `RequestValidationError` handler: the message is the error list as Python prints it."""
    return RequestError(400, str(errors), "Bad Request")


def value_error(body: Any, message: str) -> RequestError:
    """A `ValueError` raised by one of vLLM's request `model_validator`s."""
    return invalid(
        [
            {
                "type": "value_error",
                "loc": ("body",),
                "msg": f"Value error, {message}",
                "input": body,
                "ctx": {"error": ValueError(message)},
            }
        ]
    )


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; `RequestError` as FastAPI and vLLM's `validate_json_request` answer otherwise."""
    raw = await request.read()
    media_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise invalid(["Unsupported Media Type: Only 'application/json' is allowed"])
    if not raw:
        raise invalid([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
        raise invalid([{**error, "ctx": {"error": exc.msg}}]) from None
    except UnicodeDecodeError:
        raise invalid([{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error", "input": {}}]) from None


@web.middleware
async def fastapi_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer unknown routes and wrong methods with FastAPI's JSON bodies, as vLLM does, not aiohttp's text."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return web.json_response({"detail": "Not Found"}, status=404)
    except web.HTTPMethodNotAllowed as exc:
        return web.json_response(
            {"detail": "Method Not Allowed"}, status=405, headers={"Allow": ", ".join(sorted(exc.allowed_methods))}
        )


def check_fields(body: dict[str, Any], fields: dict[str, str], required: tuple[str, ...]) -> None:
    """Coerce `body`'s known fields in place as pydantic would; `RequestError` listing every field that does not fit."""
    if errors := field_errors(body, fields, required):
        raise invalid(errors)


def check_chat(body: Any) -> None:
    """`ChatCompletionRequest`'s validation: its model validators, in the order pydantic runs them, then its fields."""
    if not isinstance(body, dict):
        message = "Input should be a valid dictionary or object to extract fields from"
        raise invalid([{"type": "model_attributes_type", "loc": ("body",), "msg": message, "input": body}])
    _check_tool_usage(body)
    _check_logprobs(body)
    if body.get("stream_options") and not body.get("stream"):
        raise value_error(body, "Stream options can only be defined when `stream=True`.")
    check_fields(body, CHAT_FIELDS, ("messages",))


def _check_tool_usage(body: dict[str, Any]) -> None:
    if "tool_choice" not in body and body.get("tools"):
        body["tool_choice"] = "auto"
    choice = body.get("tool_choice")
    if choice is None or choice == "none":
        return
    if body.get("tools") is None:
        raise value_error(body, "When using `tool_choice`, `tools` must be set.")
    if choice not in ("auto", "required") and not isinstance(choice, dict):
        raise value_error(
            body,
            f'Invalid value for `tool_choice`: {choice}! Only named tools, "none", "auto" or "required" are supported.',
        )
    if choice == "required" and body["tools"] == []:
        body["tool_choice"] = "none"  # as OpenAI: nothing can be required of no tools
        del body["tools"]
        return
    if isinstance(choice, dict):
        usage = 'Correct usage: `{"type": "function", "function": {"name": "my_function"}}`'
        function = choice.get("function")
        if not isinstance(function, dict):
            raise value_error(body, f"Invalid value for `function`: `{function}` in `tool_choice`! {usage}")
        if "name" not in function:
            raise value_error(body, f"Expected field `name` in `function` in `tool_choice`! {usage}")
        name = function["name"]
        if not isinstance(name, str) or not name:
            raise value_error(body, f"Invalid `name` in `function`: `{name}` in `tool_choice`! {usage}")
        if name not in tool_names(body["tools"]):
            raise value_error(body, "The tool specified in `tool_choice` does not match any of the specified `tools`")


def tool_names(tools: Any) -> list[str]:
    """The function names in an OpenAI `tools` list, skipping entries that have none."""
    names = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def _check_logprobs(body: dict[str, Any]) -> None:
    top = body.get("top_logprobs")
    if isinstance(top, int) and not isinstance(top, bool):
        if top < 0:
            raise value_error(body, "`top_logprobs` must be a positive value.")
        if top > 0 and not body.get("logprobs"):
            raise value_error(body, "when using `top_logprobs`, `logprobs` must be set to true.")


def check_sampling(body: dict[str, Any], max_tokens: int, num_logprobs: int | None) -> None:
    """`SamplingParams`' own checks and the engine's logprobs limit: `RequestError` ("BadRequestError") with vLLM's text."""
    n = body.get("n")
    if n is not None and n < 1:
        raise refused(f"n must be at least 1, got {n}.")
    temperature = body.get("temperature")
    if temperature is not None and temperature < 0:
        raise refused(f"temperature must be non-negative, got {temperature}.")
    top_p = body.get("top_p")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise refused(f"top_p must be in (0, 1], got {top_p}.")
    if max_tokens < 1:
        raise refused(f"max_tokens must be at least 1, got {max_tokens}.")
    min_tokens = body.get("min_tokens") or 0
    if min_tokens < 0:
        raise refused(f"min_tokens must be greater than or equal to 0, got {min_tokens}.")
    if min_tokens > max_tokens:
        raise refused(f"min_tokens must be less than or equal to max_tokens={max_tokens}, got {min_tokens}.")
    if num_logprobs is not None and num_logprobs < 0:
        raise refused(f"logprobs must be non-negative, got {num_logprobs}.")
    if num_logprobs is not None and num_logprobs > MAX_LOGPROBS:
        raise refused(f"Requested sample logprobs of {num_logprobs}, which is greater than max allowed: {MAX_LOGPROBS}")


def context_error(max_model_len: int, prompt: int, asked: int | None) -> str | None:
    """vLLM's message when the prompt (and `asked` completion tokens, if set) do not fit in `max_model_len`."""
    if prompt > max_model_len or (asked is None and prompt >= max_model_len):
        return (
            f"This model's maximum context length is {max_model_len} tokens. However, your request has {prompt} "
            "input tokens. Please reduce the length of the input messages."
        )
    if asked is not None and prompt + asked > max_model_len:
        return (
            f"'max_tokens' or 'max_completion_tokens' is too large: {asked}. This model's maximum context length is "
            f"{max_model_len} tokens and your request has {prompt} input tokens "
            f"({asked} > {max_model_len} - {prompt})."
        )
    return None


def check_priority(priority: int, scheduling_policy: str) -> None:
    """vLLM's refusal of a non-zero priority when the server does not schedule by priority."""
    if priority != 0 and scheduling_policy != "priority":
        raise refused(f"Got priority {priority} but Priority scheduling is not enabled.")
