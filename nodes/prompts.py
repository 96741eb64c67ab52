"""Prompt templates (Jinja, StrictUndefined): one file per prompt, beside the nodes that use them."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("sevenfold.nodes", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # prompts are plain text for a model, not HTML
    )


def _template(name: str) -> Template:
    return _environment().get_template(f"{name}.jinja")


def render(name: str, **values: Any) -> str:
    """Render prompt `name` (nodes/templates/NAME.jinja); a missing value is an error, not an empty string."""
    return _template(name).render(**values).strip() + "\n"
