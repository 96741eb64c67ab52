"""The README shows the real graph."""

from __future__ import annotations

from pathlib import Path

from sevenfold.graphs.studio import graph

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_mermaid_is_generated_from_the_real_graph() -> None:
    text = README.read_text(encoding="utf-8")
    block = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block.strip() == graph.get_graph(xray=1).draw_mermaid().strip(), (
        "run scripts/readme_graph.py to regenerate the README's Mermaid block"
    )


def test_the_graph_has_the_named_nodes_and_the_worker_loop_as_a_subgraph() -> None:
    nodes = set(graph.get_graph(xray=1).nodes)
    assert {"start", "planner", "reviewer", "verifier", "report"} <= nodes
    assert {"worker:setup", "worker:agent", "worker:act", "worker:finish"} <= nodes
