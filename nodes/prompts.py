"""Prompt templates (Jinja, StrictUndefined): one file per prompt, beside the nodes that use them.

The templates are read once, when this module is imported, so rendering a
prompt inside a node never touches the disk (no blocking call on the event loop).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined

_TEMPLATES = {
    entry.name.removesuffix(".jinja"): entry.read_text(encoding="utf-8")
    for entry in files("sevenfold.nodes").joinpath("templates").iterdir()
    if entry.name.endswith(".jinja")
}
_ENVIRONMENT = Environment(
    loader=DictLoader(_TEMPLATES),
    undefined=StrictUndefined,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # prompts are plain text for a model, not HTML
)


def render(name: str, **values: Any) -> str:
    """Render prompt `name` (nodes/templates/NAME.jinja); a missing value is an error, not an empty string."""
    return _ENVIRONMENT.get_template(name).render(**values).strip() + "\n"
