"""Wiring only: which node follows which."""

from __future__ import annotations

from sevenfold.graphs.coding import build_graph

__all__ = ["build_graph"]
