"""What the simulated model says: policies.

A policy is given the request and returns a `Reply` (reasoning, content, tool
calls). The simulator turns the reply into the text Qwen3-Coder would write and
runs it through the engine and the server-side parser; the policy never
formats protocol text itself. Policies are scripts, not a model: they exist so
that orchestration can be tested against a server that behaves like vLLM.
"""

from __future__ import annotations

from sevenfold.sim.policies.base import ChatRequest, Policy, Reply, ToolCallSpec
from sevenfold.sim.policies.registry import load_policy, register_policy

__all__ = ["ChatRequest", "Policy", "Reply", "ToolCallSpec", "load_policy", "register_policy"]
