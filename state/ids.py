"""Run ids: sortable by when the run started, unique enough for one machine."""

from __future__ import annotations

import secrets
import time


def new_run_id() -> str:
    """A sortable, unique run id: date, time and a random suffix."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
