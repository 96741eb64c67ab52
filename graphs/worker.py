"""The worker subgraph: setup -> (agent <-> act)* -> finish."""

from __future__ import annotations

from functools import partial

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from sevenfold.context import RunContext
from sevenfold.nodes import worker
from sevenfold.nodes.resources import Resources
from sevenfold.state.team import WorkerInput, WorkerOutput, WorkerState

WorkerGraph = CompiledStateGraph[WorkerState, RunContext, WorkerInput, WorkerOutput]


def build_worker(resources: Resources) -> WorkerGraph:
    """The worker loop as a subgraph, so each model turn is its own checkpointed step."""
    graph = StateGraph(WorkerState, context_schema=RunContext, input_schema=WorkerInput, output_schema=WorkerOutput)
    graph.add_node("setup", partial(worker.setup, resources=resources))
    graph.add_node("agent", partial(worker.agent, resources=resources))
    graph.add_node("act", partial(worker.act, resources=resources))
    graph.add_node("finish", partial(worker.finish, resources=resources))
    graph.add_edge(START, "setup")
    graph.add_conditional_edges("setup", worker.route_setup, ["agent", "finish"])
    graph.add_conditional_edges("agent", worker.route_worker, ["act", "finish"])
    graph.add_conditional_edges("act", worker.route_after_act, ["agent", "finish"])
    graph.add_edge("finish", END)
    return graph.compile(name="worker")
