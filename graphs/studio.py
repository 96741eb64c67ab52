"""The graph LangGraph Studio loads (`langgraph.json`): default settings, no checkpointer (the server brings its own)."""

from __future__ import annotations

from sevenfold.graphs.coding import build_graph
from sevenfold.settings import load_settings

graph = build_graph(load_settings())
