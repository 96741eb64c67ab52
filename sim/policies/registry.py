"""Finding a policy by name, file, or `module:attribute`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from sevenfold.errors import SettingsError
from sevenfold.sim.policies.base import Policy
from sevenfold.sim.policies.echo import EchoTools

_FACTORIES: dict[str, Callable[[], Policy]] = {"echo-tools": EchoTools}


def register_policy(name: str, factory: Callable[[], Policy]) -> None:
    """Make a policy available to `--policy NAME` in this process."""
    _FACTORIES[name] = factory


def known_policies() -> list[str]:
    """Names of built-in, registered and installed (entry point `sevenfold.sim_policies`) policies."""
    return sorted({*_FACTORIES, *(ep.name for ep in entry_points(group="sevenfold.sim_policies"))})


def load_policy(spec: str) -> Policy:
    """A policy from a name, a .yaml/.yml/.json script, or `package.module:factory`.

    Raises `SettingsError` listing the known names when nothing matches.
    """
    if spec in _FACTORIES:
        return _FACTORIES[spec]()
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
        f"unknown policy {spec!r} (known: {', '.join(known_policies())}; or a .yaml/.json script, or module:factory)"
    )
