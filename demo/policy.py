"""The demo policy: a script that plays the model's part on the bundled example, and nothing else.

It is not a model. It reads the conversation only to know where it is (which
role, which subtask, which turn) and answers with the moves a good model would
make on this one project: the planner splits the work one module per worker;
each worker views its module and test, writes the module, runs its test and
reports; the reviewer writes a note. The first round leaves one bug (see
`demo/solutions.py`) that only the integration test catches, so the verifier
sends the team back for a second round, which fixes it. Every action goes
through real tool calls that the graph really executes.
"""

from __future__ import annotations

import re

from sevenfold.demo.solutions import BUG, BUGGY_MODULE, SOLUTIONS, first_round
from sevenfold.sim.policies.base import ChatRequest, Reply, ToolCallSpec

_SUBTASK = re.compile(r"^## Your subtask: (\S+)", re.MULTILINE)
_MAX_TURNS = 14


def _module_name(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".py")


def _test_path(path: str) -> str:
    return f"tests/test_{_module_name(path)}.py"


def _first_round_plan() -> dict[str, object]:
    subtasks = [
        {
            "id": f"impl-{_module_name(path)}",
            "goal": f"Implement {path} as its docstrings describe.",
            "files": [path],
            "acceptance": [f"python -m pytest {_test_path(path)} passes"],
            "depends_on": [],
        }
        for path in SOLUTIONS
    ]
    return {"summary": "One worker per stub module; the modules do not depend on each other.", "subtasks": subtasks}


def _fix_plan() -> dict[str, object]:
    return {
        "summary": "The integration test shows a wrong mean: fix stats.mean.",
        "subtasks": [
            {
                "id": "fix-stats",
                "goal": "mean() floors its result; make it return the true arithmetic mean.",
                "files": [BUGGY_MODULE],
                "acceptance": ["python -m pytest passes"],
                "depends_on": [],
            }
        ],
    }


def _successful_turns(request: ChatRequest) -> int:
    """Assistant turns whose tool calls all got a result that is not an error."""
    count, results = 0, None
    for message in [*request.messages, {"role": "end"}]:
        if message.get("role") == "tool":
            results = [*(results or []), request.text(message)]
            continue
        if results is not None:
            count += all(not text.startswith("Error") for text in results)
            results = None
        if message.get("role") == "assistant" and message.get("tool_calls"):
            results = []
    return count


class DemoPolicy:
    """Plays planner, workers and reviewer on the example project."""

    def reply(self, request: ChatRequest) -> Reply:
        if request.role == "planner":
            return self._plan(request)
        if request.role == "worker":
            return self._work(request)
        if request.role == "reviewer":
            return Reply(
                content="Reviewed the merged modules: each matches its docstring and the imports line up.",
                reasoning="Check that every module exists and the integration test's imports resolve.",
            )
        return Reply(content="The demo policy has nothing scripted for this request.")

    def _plan(self, request: ChatRequest) -> Reply:
        first_user = next((request.text(m) for m in request.messages if m.get("role") == "user"), "")
        plan = _fix_plan() if "## Failing tests" in first_user else _first_round_plan()
        count = len(plan["subtasks"])  # type: ignore[arg-type]
        return Reply(
            content=f"Plan: {count} subtask(s).",
            reasoning="Split by module; nothing is shared between modules.",
            tool_calls=(ToolCallSpec("submit_plan", plan),),
        )

    def _work(self, request: ChatRequest) -> Reply:
        task = next((request.text(m) for m in request.messages if m.get("role") == "user"), "")
        found = _SUBTASK.search(task)
        subtask = found.group(1) if found else ""
        path = (
            BUGGY_MODULE
            if subtask == "fix-stats"
            else next((p for p in SOLUTIONS if subtask == f"impl-{_module_name(p)}"), None)
        )
        if path is None:
            return Reply(content="I cannot find that subtask.")
        turns = sum(1 for m in request.messages if m.get("role") == "assistant")
        step = _successful_turns(request) + 1  # a turn whose calls were refused is repeated, as a model would
        last = request.text(request.last) if request.last.get("role") == "tool" else ""
        if turns + 1 >= _MAX_TURNS:
            return Reply(content=f"Stopping on {path}: out of turns.")
        if step == 1:
            return Reply(
                tool_calls=(
                    ToolCallSpec("view_file", {"path": path}),
                    ToolCallSpec("view_file", {"path": _test_path(path)}),
                )
            )
        if step == 2:
            if subtask == "fix-stats":
                return Reply(
                    content="mean() uses floor division.",
                    tool_calls=(ToolCallSpec("str_replace", {"path": path, "old": BUG[1], "new": BUG[0]}),),
                )
            return Reply(tool_calls=(ToolCallSpec("create_file", {"path": path, "content": first_round(path)}),))
        if step == 3:
            args = [] if subtask == "fix-stats" else [_test_path(path)]
            return Reply(tool_calls=(ToolCallSpec("run_tests", {"args": args}),))
        verdict = last.splitlines()[0] if last else "tests run"
        return Reply(content=f"Implemented {path}; {verdict}.")


def demo_policy() -> DemoPolicy:
    """The demo policy (entry point `sevenfold.sim_policies: demo`)."""
    return DemoPolicy()
