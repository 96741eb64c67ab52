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

_FACTORIES: dict[str, Callable[[], Policy]] = {"echo-tools": EchoTools}
_DRAWING_FACTORIES: dict[str, Callable[[str | None, int | None], Policy]] = {"realistic": realistic_policy}
"""Policies that draw at random: called with a settings file (`--policy NAME=FILE`, or None) and the seed."""


def register_policy(name: str, factory: Callable[[], Policy]) -> None:
    """Make a policy available to `--policy NAME` in this process."""
    _FACTORIES[name] = factory


def known_policies() -> list[str]:
    """Names of built-in, registered and installed (entry point `sevenfold.sim_policies`) policies."""
    installed = (ep.name for ep in entry_points(group="sevenfold.sim_policies"))
    return sorted({*_FACTORIES, *_DRAWING_FACTORIES, *installed})


def load_policy(spec: str, seed: int | None = None) -> Policy:
    """A policy from a name, `NAME=FILE` (e.g. `realistic=profile.toml`), a .yaml/.yml/.json script, or
    `package.module:factory`. `seed` seeds a policy that draws at random (None: its settings' own seed).

    Raises `SettingsError` listing the known names when nothing matches, or naming what is wrong in a file.
    """
    if spec in _FACTORIES:
        return _FACTORIES[spec]()
    name, _, settings_file = spec.partition("=")
    if name in _DRAWING_FACTORIES and (settings_file or name == spec):
        if settings_file and not Path(settings_file).is_file():
            raise SettingsError(f"policy settings not found: {settings_file}")
        return _DRAWING_FACTORIES[name](settings_file or None, seed)
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
