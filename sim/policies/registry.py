"""Finding a policy by name, file, or `module:attribute`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from sevenfold.errors import SettingsError
from sevenfold.sim.policies.base import Policy
from sevenfold.sim.policies.echo import EchoTools
from sevenfold.sim.policies.realistic import realistic_policy

_FACTORIES: dict[str, Callable[[], Policy]] = {"echo-tools": EchoTools, "realistic": realistic_policy}
_FILE_FACTORIES: dict[str, Callable[[str], Policy]] = {"realistic": realistic_policy}
"""Policies that take a settings file: `--policy NAME=FILE`."""


def register_policy(name: str, factory: Callable[[], Policy]) -> None:
    """Make a policy available to `--policy NAME` in this process."""
    _FACTORIES[name] = factory


def known_policies() -> list[str]:
    """Names of built-in, registered and installed (entry point `sevenfold.sim_policies`) policies."""
    return sorted({*_FACTORIES, *(ep.name for ep in entry_points(group="sevenfold.sim_policies"))})


def load_policy(spec: str) -> Policy:
    """A policy from a name, `NAME=FILE` (e.g. `realistic=profile.toml`), a .yaml/.yml/.json script, or
    `package.module:factory`.

    Raises `SettingsError` listing the known names when nothing matches, or naming what is wrong in a file.
    """
    if spec in _FACTORIES:
        return _FACTORIES[spec]()
    name, _, settings_file = spec.partition("=")
    if settings_file and name in _FILE_FACTORIES:
        if not Path(settings_file).is_file():
            raise SettingsError(f"policy settings not found: {settings_file}")
        return _FILE_FACTORIES[name](settings_file)
    for ep in entry_points(group="sevenfold.sim_policies"):
        if ep.name == spec:
            return ep.load()()
    path = Path(spec)
    if path.suffix in (".yaml", ".yml", ".json"):
        if not path.is_file():
            raise SettingsError(f"policy script not found: {spec}")
        from sevenfold.sim.policies.scripted import ScriptedPolicy

        return ScriptedPolicy.from_file(path)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise SettingsError(f"cannot load policy {spec!r}: {exc}") from None
        return factory()
    raise SettingsError(
        f"unknown policy {spec!r} (known: {', '.join(known_policies())}; or realistic=FILE.toml, a .yaml/.json "
        "script, or module:factory)"
    )
