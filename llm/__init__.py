"""Talking to the model server: per-role chat models, the slot limiter, thinking text."""

from __future__ import annotations

from sevenfold.llm.chat import SevenfoldChatOpenAI
from sevenfold.llm.factory import chat_model, check_endpoint, role_models
from sevenfold.llm.limiter import SlotLimiter, limiter_for

__all__ = [
    "SevenfoldChatOpenAI",
    "SlotLimiter",
    "chat_model",
    "check_endpoint",
    "limiter_for",
    "role_models",
]
