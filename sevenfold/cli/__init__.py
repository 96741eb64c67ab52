"""The `sevenfold` command line: one Typer app, its commands grouped by what users do.

- `sevenfold.cli.runs`: `run`, `resume` (and plan approval), `status`
- `sevenfold.cli.simulator`: `sim`, `demo`, `tour`
- `sevenfold.cli.serving`: `capacity`, `serve`, `bench`

`common` holds the options several commands share and the one-line errors; `run_output` what a run shows.
"""

from __future__ import annotations

import typer

from sevenfold.cli import runs, serving, simulator
from sevenfold.cli.common import run_app

# The name tests/unit/test_report_and_live_view.py imports (from before the package): sevenfold.cli.run_output.show_plan.
from sevenfold.cli.run_output import show_plan as _show_plan  # noqa: F401

app = typer.Typer(
    name="sevenfold",
    help="A team of coding agents on one self-hosted model server (vLLM + Qwen3-Coder).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (
    simulator.sim,
    runs.run,
    runs.resume,
    runs.status,
    simulator.demo,
    simulator.tour,
    serving.capacity,
    serving.serve,
    serving.bench,
):
    app.command()(command)


def main() -> None:
    """Entry point: run the CLI, turning sevenfold's errors into one line and exit code 2."""
    run_app(app)


__all__ = ["app", "main"]
