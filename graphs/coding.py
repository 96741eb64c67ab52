"""The coding graph: the whole flow on one screen.

START -> start -> planner -> approval -> (Send x N) worker -> reviewer -> verifier -> report -> END
                    ^                  |                 ^            |            |   ^
                    |                  +-- rejected -----|------------|------------|---+
                    |                                    +-- next wave / conflict  |
                    +------------------ tests fail, rounds left -------------------+
"""

from __future__ import annotations

from functools import partial

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from sevenfold.context import RunContext
from sevenfold.graphs.worker import build_worker
from sevenfold.nodes.approval import make_approval, route_approval
from sevenfold.nodes.dispatch import next_workers
from sevenfold.nodes.planner import make_planner
from sevenfold.nodes.report import make_report
from sevenfold.nodes.reviewer import make_reviewer
from sevenfold.nodes.start import make_start
from sevenfold.nodes.team import Team
from sevenfold.nodes.verifier import make_verifier, route_verdict
from sevenfold.settings import Settings
from sevenfold.state.team import TeamInput, TeamOutput, TeamState


def _after_review(state: TeamState) -> list | str:
    return next_workers(state) or "verifier"


def _after_approval(state: TeamState) -> list | str:
    return "report" if route_approval(state) else next_workers(state)


CodingGraph = CompiledStateGraph[TeamState, RunContext, TeamInput, TeamOutput]


def build_graph(settings: Settings, checkpointer: BaseCheckpointSaver | None = None) -> CodingGraph:
    """The compiled coding graph for these settings; usable alone, as a subgraph, or as a Runnable.

    Run it with `max_concurrency` (active workers) as a top-level config key;
    `sevenfold.runs` does this for you. Pass `context=RunContext(...)` to change
    a run's endpoint, slots, rounds, models or plan approval.
    """
    team = Team(settings)
    graph = StateGraph(TeamState, context_schema=RunContext, input_schema=TeamInput, output_schema=TeamOutput)
    graph.add_node("start", make_start(team))
    graph.add_node("planner", make_planner(team))
    graph.add_node("approval", make_approval(team))
    graph.add_node("worker", build_worker(team))
    graph.add_node("reviewer", make_reviewer(team))
    graph.add_node("verifier", make_verifier(team))
    graph.add_node("report", make_report(team))
    graph.add_edge(START, "start")
    graph.add_edge("start", "planner")
    graph.add_edge("planner", "approval")
    graph.add_conditional_edges("approval", _after_approval, ["worker", "report"])
    graph.add_edge("worker", "reviewer")
    graph.add_conditional_edges("reviewer", _after_review, ["worker", "verifier"])
    graph.add_conditional_edges(
        "verifier", partial(route_verdict, max_rounds=settings.max_rounds), ["planner", "report"]
    )
    graph.add_edge("report", END)
    return graph.compile(checkpointer=checkpointer, name="sevenfold")
