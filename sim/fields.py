"""Request fields as vLLM's pydantic request models read them (lax mode: "5" is an int, "true" a bool).

Only the fields the simulator uses are checked; the rest are accepted and
ignored, as vLLM ignores unknown fields (with a warning in its log).
"""

from __future__ import annotations

from typing import Any

# Field kinds, as the pydantic request models declare them (None allowed unless `required`).
_INT, _FLOAT, _BOOL, _STR, _LIST, _DICT, _STOP = "int", "float", "bool", "str", "list", "dict", "stop"
_COMMON = {
    "model": _STR,
    "max_tokens": _INT,
    "n": _INT,
    "temperature": _FLOAT,
    "top_p": _FLOAT,
    "stream": _BOOL,
    "stream_options": _DICT,
    "stop": _STOP,
    "seed": _INT,
    "ignore_eos": _BOOL,
    "min_tokens": _INT,
    "include_stop_str_in_output": _BOOL,
    "priority": _INT,
}
CHAT_FIELDS = {
    **_COMMON,
    "messages": _LIST,
    "max_completion_tokens": _INT,
    "logprobs": _BOOL,
    "top_logprobs": _INT,
    "tools": _LIST,
    "chat_template_kwargs": _DICT,
}
COMPLETION_FIELDS = {**_COMMON, "logprobs": _INT, "echo": _BOOL}
_MESSAGES = {
    _INT: ("int_type", "Input should be a valid integer"),
    _FLOAT: ("float_type", "Input should be a valid number"),
    _BOOL: ("bool_type", "Input should be a valid boolean"),
    _STR: ("string_type", "Input should be a valid string"),
    _LIST: ("list_type", "Input should be a valid list"),
    _DICT: ("dict_type", "Input should be a valid dictionary"),
    _STOP: ("string_type", "Input should be a valid string"),
}
_CONTAINERS: dict[str, type | tuple[type, ...]] = {_STR: str, _LIST: list, _DICT: dict, _STOP: str}
_TRUE, _FALSE = {"true", "1", "yes", "on", "t", "y"}, {"false", "0", "no", "off", "f", "n"}


def _coerce(kind: str, value: Any) -> tuple[Any, tuple[str, str] | None]:
    """`value` as pydantic's lax mode reads it for a field of `kind`, or the (type, msg) of its error."""
    if kind == _INT:
        if isinstance(value, int):
            return int(value), None
        if isinstance(value, float):
            ok = value.is_integer()
            return (int(value), None) if ok else (value, ("int_from_float", _FRACTION))
        if isinstance(value, str):
            try:
                return int(value.strip()), None
            except ValueError:
                return value, ("int_parsing", "Input should be a valid integer, unable to parse string as an integer")
    elif kind == _FLOAT:
        if isinstance(value, int | float):
            return float(value), None
        if isinstance(value, str):
            try:
                return float(value), None
            except ValueError:
                return value, ("float_parsing", "Input should be a valid number, unable to parse string as a number")
    elif kind == _BOOL:
        if isinstance(value, bool):
            return value, None
        if isinstance(value, int) and value in (0, 1):
            return bool(value), None
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE, None
        if isinstance(value, str):
            return value, ("bool_parsing", "Input should be a valid boolean, unable to interpret input")
    elif isinstance(value, _CONTAINERS.get(kind, ())) or _is_stop_list(kind, value):
        return value, None
    return value, _MESSAGES[kind]


_FRACTION = "Input should be a valid integer, got a number with a fractional part"


def _is_stop_list(kind: str, value: Any) -> bool:
    return kind == _STOP and isinstance(value, list) and all(isinstance(s, str) for s in value)


def field_errors(body: dict[str, Any], fields: dict[str, str], required: tuple[str, ...]) -> list[dict[str, Any]]:
    """Coerce `body`'s known fields in place as pydantic would; the pydantic errors of those that do not fit."""
    errors: list[dict[str, Any]] = []
    for name in required:
        if name not in body:
            errors.append({"type": "missing", "loc": ("body", name), "msg": "Field required", "input": body})
    for name, kind in fields.items():
        if body.get(name) is None:
            continue
        value, error = _coerce(kind, body[name])
        if error:
            errors.append({"type": error[0], "loc": ("body", name), "msg": error[1], "input": body[name]})
        else:
            body[name] = value
    for index, message in enumerate(body.get("messages") or []):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            loc: tuple[str | int, ...] = ("body", "messages", index, "role")
            errors.append({"type": "missing", "loc": loc, "msg": "Field required", "input": message})
    for index, tool in enumerate(body.get("tools") or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            loc = ("body", "tools", index, "function", "name")
            errors.append({"type": "missing", "loc": loc, "msg": "Field required", "input": tool})
    return errors
