"""Per-run resources: one set per run, shared by its concurrent steps, bounded, released with the run."""

from __future__ import annotations

import asyncio

from sevenfold.context import RunContext
from sevenfold.nodes import resources as resources_module
from sevenfold.nodes.resources import Resources
from sevenfold.settings import load_settings


async def test_steps_of_one_run_starting_together_share_one_set_of_resources() -> None:
    resources = Resources(load_settings())
    runs = await asyncio.gather(*(resources.for_run("r", None) for _ in range(7)))  # seven workers after a resume
    assert all(run is runs[0] for run in runs)
    assert resources.runs_held == ["r"]


async def test_a_runs_context_applies_to_its_own_resources_only() -> None:
    resources = Resources(load_settings())
    plain = await resources.for_run("a", None)
    narrow = await resources.for_run("b", RunContext(slots=2, max_rounds=1))
    assert plain.settings is resources.settings
    assert (narrow.settings.endpoints["default"].slots, narrow.settings.max_rounds) == (2, 1)
    assert await resources.for_run("b", {"slots": 2, "max_rounds": 1}) is narrow  # the dict a server passes
    assert await resources.for_run("b", RunContext(slots=3)) is not narrow  # resumed with another context


async def test_runs_are_bounded_and_released() -> None:
    resources = Resources(load_settings())
    for index in range(resources_module.RUNS_KEPT + 3):
        await resources.for_run(f"r{index}", None)
    assert len(resources.runs_held) == resources_module.RUNS_KEPT and "r0" not in resources.runs_held
    resources.release("r5")
    assert "r5" not in resources.runs_held
