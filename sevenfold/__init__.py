"""sevenfold: a team of coding agents on one self-hosted model server."""

from __future__ import annotations

from sevenfold.errors import SettingsError, SevenfoldError
from sevenfold.settings import Settings, load_settings

__all__ = ["Settings", "SettingsError", "SevenfoldError", "load_settings"]
__version__ = "0.1.0"
