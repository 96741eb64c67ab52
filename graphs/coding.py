"""The coding graph: the whole flow on one screen.

START -> start -> planner -> approval -> (Send x N) worker -> merge -> reviewer -> verifier -> report -> END
                    ^                  |                 ^          |                       |      ^
                    |                  +-- rejected -----|----------|-----------------------|------+
                    |                                    +-- next wave / conflict           |
                    +------------------ tests fail, rounds left ----------------------------+

Every node is a module-level function of (state, runtime) plus the graph's `Resources`, bound here.
"""

from __future__ import annotations

from functools import partial

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from sevenfold.context import RunContext
from sevenfold.graphs.worker import build_worker
from sevenfold.nodes.approval import approval, route_approval
from sevenfold.nodes.dispatch import next_workers
from sevenfold.nodes.merge import merge, route_merged
from sevenfold.nodes.planner import planner
from sevenfold.nodes.report import report
from sevenfold.nodes.resources import Resources
from sevenfold.nodes.reviewer import reviewer
from sevenfold.nodes.start import start
from sevenfold.nodes.verifier import route_verdict, verifier
from sevenfold.settings import Settings
from sevenfold.state.team import TeamInput, TeamOutput, TeamState


def _after_approval(state: TeamState) -> list | str:
    return "report" if route_approval(state) else next_workers(state)


CodingGraph = CompiledStateGraph[TeamState, RunContext, TeamInput, TeamOutput]


def build_graph(settings: Settings, checkpointer: BaseCheckpointSaver | None = None) -> CodingGraph:
    """The compiled coding graph for these settings; usable alone, as a subgraph, or as a Runnable.

    Run it with `max_concurrency` (active workers) as a top-level config key;
    `sevenfold.runs` does this for you. Pass `context=RunContext(...)` to change
    a run's endpoint, slots, rounds, models or plan approval.
    """
    resources = Resources(settings)
    graph = StateGraph(TeamState, context_schema=RunContext, input_schema=TeamInput, output_schema=TeamOutput)
    graph.add_node("start", partial(start, resources=resources))
    graph.add_node("planner", partial(planner, resources=resources))
    graph.add_node("approval", partial(approval, resources=resources))
    graph.add_node("worker", build_worker(resources))
    graph.add_node("merge", partial(merge, resources=resources))
    graph.add_node("reviewer", partial(reviewer, resources=resources))
    graph.add_node("verifier", partial(verifier, resources=resources))
    graph.add_node("report", partial(report, resources=resources))
    graph.add_edge(START, "start")
    graph.add_edge("start", "planner")
    graph.add_edge("planner", "approval")
    graph.add_conditional_edges("approval", _after_approval, ["worker", "report"])
    graph.add_edge("worker", "merge")
    graph.add_conditional_edges("merge", route_merged, ["worker", "reviewer"])
    graph.add_edge("reviewer", "verifier")
    graph.add_conditional_edges("verifier", route_verdict, ["planner", "report"])
    graph.add_edge("report", END)
    return graph.compile(checkpointer=checkpointer, name="sevenfold")
