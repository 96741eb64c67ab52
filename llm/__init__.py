"""Talking to the model server: per-role chat models, the slot limiter, thinking text."""

from __future__ import annotations

from sevenfold.llm.chat import SevenfoldChatOpenAI
from sevenfold.llm.factory import chat_model, check_endpoint, role_models
from sevenfold.llm.limiter import LIMITERS, Limiters, RunCap, SlotLimiter

__all__ = [
    "LIMITERS",
    "Limiters",
    "RunCap",
    "SevenfoldChatOpenAI",
    "SlotLimiter",
    "chat_model",
    "check_endpoint",
    "role_models",
]
