"""A fixed agent workload for the benchmarks: a small repository and a policy that plays a team on it.

Not a model: like the demo policy, it answers each request from where the
conversation stands. The planner splits the work into `subtasks` subtasks; each
worker takes `turns` model turns, each of about `words` words of output, and
between them runs tools through the real tool set: a file view, shell commands
that stand for test and build runs (`sleep`, so their duration is set here and
costs no CPU), and finally writes its module. With `tool_s` 0 every tool call is
a file view, the cheapest real tool (for timing the orchestrator itself). Tool durations differ per subtask
and per turn (a fixed pattern, no randomness), so workers finish at different
times as real ones do.

With `rounds` above 1 the run takes that many rounds: the planner plans every
subtask again each round, and until the last round each worker writes its module
with a wrong return value, so the repository's test (`make_repo(checked=...)`)
fails and the verifier sends the team back. The round is read from the prompts,
as everything else: the planner's prompt states it, and the planner writes it
into each subtask's goal, which the worker's prompt shows.

Configured by environment variables (the simulator imports the policy in its own
process): SEVENFOLD_BENCH_SUBTASKS, _TURNS, _WORDS, _TOOL_S (mean seconds of one
tool run at modelled speed), _TIME_SCALE (tools run this many times faster,
like the simulated model) and _ROUNDS.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sevenfold.sim.policies.base import ChatRequest, Reply, ToolCallSpec

_SUBTASK = re.compile(r"^## Your subtask: (\S+)", re.MULTILINE)
_PLANNER_ROUND = re.compile(r"^Round: (\d+) of at most", re.MULTILINE)
_WORKER_ROUND = re.compile(r"^Goal: Round (\d+):", re.MULTILINE)
_TOOL_PATTERN = (0.2, 1.6, 0.6, 1.6, 0.4, 1.2)
"""Tool-run lengths relative to the mean, by turn: short looks and long test runs."""
_SUBTASK_PATTERN = (1.0, 0.6, 1.4, 0.8, 1.2, 0.7, 1.3)
"""Per-subtask scale, so workers do not all finish together."""


@dataclass(frozen=True)
class Workload:
    subtasks: int = 14
    turns: int = 5
    words: int = 200
    tool_s: float = 1.5
    time_scale: float = 1.0
    rounds: int = 1
    """Rounds until the tests pass: workers write a wrong module in every round before this one."""

    @classmethod
    def from_env(cls) -> Workload:
        env = os.environ
        return cls(
            subtasks=int(env.get("SEVENFOLD_BENCH_SUBTASKS", cls.subtasks)),
            turns=int(env.get("SEVENFOLD_BENCH_TURNS", cls.turns)),
            words=int(env.get("SEVENFOLD_BENCH_WORDS", cls.words)),
            tool_s=float(env.get("SEVENFOLD_BENCH_TOOL_S", cls.tool_s)),
            time_scale=float(env.get("SEVENFOLD_BENCH_TIME_SCALE", cls.time_scale)),
            rounds=int(env.get("SEVENFOLD_BENCH_ROUNDS", cls.rounds)),
        )

    def env(self) -> dict[str, str]:
        """The variables that configure this workload in another process."""
        return {
            "SEVENFOLD_BENCH_SUBTASKS": str(self.subtasks),
            "SEVENFOLD_BENCH_TURNS": str(self.turns),
            "SEVENFOLD_BENCH_WORDS": str(self.words),
            "SEVENFOLD_BENCH_TOOL_S": str(self.tool_s),
            "SEVENFOLD_BENCH_TIME_SCALE": str(self.time_scale),
            "SEVENFOLD_BENCH_ROUNDS": str(self.rounds),
        }

    def tool_seconds(self, subtask: int, turn: int) -> float:
        """Real seconds the tool run after `turn` of `subtask` takes."""
        scale = _SUBTASK_PATTERN[subtask % len(_SUBTASK_PATTERN)] * _TOOL_PATTERN[turn % len(_TOOL_PATTERN)]
        return round(self.tool_s * scale / self.time_scale, 3)


def module(index: int) -> str:
    return f"pkg/mod_{index:02d}.py"


_PARTS_TEST = """import importlib

import pytest


@pytest.mark.parametrize("index", range({checked}))
def test_part(index):
    module = importlib.import_module(f"pkg.mod_{{index:02d}}")
    assert getattr(module, f"part_{{index:02d}}")() == index
"""


def make_repo(path: Path, checked: int = 0) -> Path:
    """A git repository with a package, a passing test and a README, committed.

    With `checked` > 0, also a test that modules 0 to `checked` - 1 exist and return their number: it fails until
    the workers have written them right.
    """
    (path / "pkg").mkdir(parents=True)
    (path / "tests").mkdir()
    (path / "pkg" / "__init__.py").write_text('"""Benchmark package."""\n')
    (path / "README.md").write_text("# bench\n\nA package the benchmark's workers add modules to.\n")
    (path / "tests" / "test_pkg.py").write_text("import pkg\n\n\ndef test_imports():\n    assert pkg\n")
    if checked > 0:
        (path / "tests" / "test_parts.py").write_text(_PARTS_TEST.format(checked=checked))
    (path / "pytest.ini").write_text("[pytest]\naddopts = -q -p no:cacheprovider\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench repository"]):
        subprocess.run(
            ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", *args], cwd=path, check=True
        )
    return path


def _words(count: int, seed: str) -> str:
    vocabulary = ["the", "change", "keeps", "each", "function", "small", "reads", "input", "checks", "edge", "cases"]
    start = sum(map(ord, seed))
    return " ".join(vocabulary[(start + i * 7) % len(vocabulary)] for i in range(count))


class WorkloadPolicy:
    """Plays planner, workers and reviewer for a `Workload`."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload

    def reply(self, request: ChatRequest) -> Reply:
        if request.role == "planner":
            prompt = next((request.text(m) for m in request.messages if m.get("role") == "user"), "")
            found = _PLANNER_ROUND.search(prompt)
            round_number = int(found.group(1)) if found else 1
            subtasks = [
                {
                    "id": f"part-{i:02d}",
                    "goal": f"Round {round_number}: add {module(i)} with a function part_{i:02d}() that returns {i}.",
                    "files": [module(i)],
                    "acceptance": ["python -m pytest passes"],
                    "depends_on": [],
                }
                for i in range(self.workload.subtasks)
            ]
            plan = {"summary": f"{len(subtasks)} independent modules.", "subtasks": subtasks}
            return Reply(content=f"Plan: {len(subtasks)} subtasks.", tool_calls=(ToolCallSpec("submit_plan", plan),))
        if request.role == "worker":
            return self._work(request)
        return Reply(content="Reviewed: each module is independent and small.")

    def _work(self, request: ChatRequest) -> Reply:
        task = next((request.text(m) for m in request.messages if m.get("role") == "user"), "")
        found = _SUBTASK.search(task)
        index = int(found.group(1).removeprefix("part-")) if found else 0
        found_round = _WORKER_ROUND.search(task)
        round_number = int(found_round.group(1)) if found_round else 1
        turn = sum(1 for m in request.messages if m.get("role") == "assistant")
        last_turn = self.workload.turns - 1
        text = _words(self.workload.words, f"{index}:{turn}")
        if turn >= last_turn:
            return Reply(content=f"Done: {module(index)} added. {text}")
        if self.workload.tool_s <= 0:  # no modelled tool time: the cheapest real tool, to time the orchestrator
            calls = [ToolCallSpec("view_file", {"path": "README.md"})]
        else:
            calls = [ToolCallSpec("run_command", {"command": f"sleep {self.workload.tool_seconds(index, turn)}"})]
        if turn == 0 and self.workload.tool_s > 0:
            calls.insert(0, ToolCallSpec("view_file", {"path": "README.md"}))
        if turn == last_turn - 1:
            # Wrong until the last round, and differently wrong each round, so every round's branch has a change.
            value = index if round_number >= self.workload.rounds else index + 1000 * round_number
            code = f'"""Part {index}."""\n\n\ndef part_{index:02d}() -> int:\n    return {value}\n'
            calls.insert(0, ToolCallSpec("create_file", {"path": module(index), "content": code}))
        return Reply(content=text, tool_calls=tuple(calls))


def policy() -> WorkloadPolicy:
    """Entry for `sevenfold sim --policy workload:policy` (configured from the environment)."""
    return WorkloadPolicy(Workload.from_env())
