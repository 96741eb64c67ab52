"""The worker subgraph: setup -> (agent <-> act)* -> finish."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from sevenfold.nodes.team import Team
from sevenfold.nodes.worker import make_worker_nodes, route_after_act, route_setup, route_worker
from sevenfold.state.team import WorkerInput, WorkerOutput, WorkerState


def build_worker(team: Team) -> CompiledStateGraph:
    """The worker loop as a subgraph, so each model turn is its own checkpointed step."""
    setup, agent, act, finish = make_worker_nodes(team)
    graph = StateGraph(WorkerState, input_schema=WorkerInput, output_schema=WorkerOutput)
    graph.add_node("setup", setup)
    graph.add_node("agent", agent)
    graph.add_node("act", act)
    graph.add_node("finish", finish)
    graph.add_edge(START, "setup")
    graph.add_conditional_edges("setup", route_setup, ["agent", "finish"])
    graph.add_conditional_edges("agent", route_worker, ["act", "finish"])
    graph.add_conditional_edges("act", route_after_act, ["agent", "finish"])
    graph.add_edge("finish", END)
    return graph.compile(name="worker")
