"""The checkpointer `langgraph dev` and LangGraph Studio use (`langgraph.json` "checkpointer"): the shared PostgreSQL
database named by `SEVENFOLD_CHECKPOINT_URL` (or the TOML setting `checkpoint_url`), so Studio's threads are
checkpointed where the CLI's runs are; without one, in memory for the server's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from sevenfold.checkpoints import studio_saver
from sevenfold.settings import load_settings


@asynccontextmanager
async def factory() -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The server enters this once and keeps the saver (and its connection pool) until it stops."""
    async with studio_saver(load_settings()) as saver:
        yield saver
