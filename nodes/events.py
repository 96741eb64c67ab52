"""Progress events: what a UI in front of the graph sees while it runs (stream mode "custom")."""

from __future__ import annotations

import time
from typing import Any

from langgraph.config import get_stream_writer


def emit(event: str, **data: Any) -> None:
    """Send one progress event (`{"event": ..., "time": ..., **data}`) to whoever streams the run."""
    try:
        writer = get_stream_writer()
    except RuntimeError:  # called outside a graph run (a unit test of a helper)
        return
    writer({"event": event, "time": time.time(), **data})
