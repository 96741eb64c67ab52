"""Rewrite the README's Mermaid block from the real graph: `.venv/bin/python scripts/readme_graph.py`."""

from __future__ import annotations

from pathlib import Path

from sevenfold.graphs.studio import graph

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    text = README.read_text(encoding="utf-8")
    head, rest = text.split("```mermaid\n", 1)
    tail = rest.split("```", 1)[1]
    README.write_text(
        f"{head}```mermaid\n{graph.get_graph(xray=1).draw_mermaid().strip()}\n```{tail}", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
