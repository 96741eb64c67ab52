"""The planner node, with a fake chat model: a bad plan goes back with the reason."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import Runnable
from langgraph.runtime import Runtime
from pydantic import Field

from sevenfold.nodes.planner import planner
from sevenfold.nodes.resources import Resources
from sevenfold.settings import load_settings


class ToolFakeChat(FakeMessagesListChatModel):
    """LangChain's fake chat model, plus `bind_tools` (which it lacks) and a record of what it was sent."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, BaseMessage]:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def _call(args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": "submit_plan", "args": args, "id": call_id, "type": "tool_call"}])


def _repo(tmp_path: Path) -> tuple[str, str]:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "PATH": "/usr/bin:/bin",
    }
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("x = 1\n")
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "i"]):
        subprocess.run(command, cwd=tmp_path, check=True, env=env)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    return str(tmp_path), head


async def test_a_cyclic_plan_is_sent_back_with_the_reason_then_the_fixed_plan_is_used(tmp_path: Path) -> None:
    cyclic = {
        "summary": "s",
        "subtasks": [{"id": "a", "goal": "g", "depends_on": ["b"]}, {"id": "b", "goal": "g", "depends_on": ["a"]}],
    }
    fixed = {"summary": "s", "subtasks": [{"id": "a", "goal": "g"}, {"id": "b", "goal": "g", "depends_on": ["a"]}]}
    model = ToolFakeChat(responses=[_call(cyclic, "c1"), _call(fixed, "c2")])
    resources = Resources(load_settings())
    (await resources.for_run("r", None))._models["planner"] = model  # type: ignore[assignment]
    repo, head = _repo(tmp_path)
    state = {"task": "build it", "repo": repo, "run_id": "r", "base_commit": head}
    update = await planner(state, Runtime(context=None), resources=resources)  # type: ignore[arg-type]
    assert [s["id"] for s in update["plan"]["subtasks"]] == ["a", "b"] and update["round"] == 1
    second_prompt = model.seen[1]
    rejection = second_prompt[-1]
    assert isinstance(rejection, ToolMessage) and rejection.tool_call_id == "c1"
    assert "## Plan rejected" in str(rejection.content) and "dependencies form a cycle: a -> b -> a" in str(
        rejection.content
    )
    assert "src/app.py" in str(model.seen[0][1].content)  # the repository map


async def test_a_planner_that_never_plans_leaves_one_worker_with_the_whole_task(tmp_path: Path) -> None:
    model = ToolFakeChat(responses=[AIMessage(content="I am not sure.")] * 3)
    resources = Resources(load_settings(plan_attempts=3))
    (await resources.for_run("r", None))._models["planner"] = model  # type: ignore[assignment]
    repo, head = _repo(tmp_path)
    state = {"task": "build it", "repo": repo, "run_id": "r", "base_commit": head}
    update = await planner(state, Runtime(context=None), resources=resources)  # type: ignore[arg-type]
    assert [s["id"] for s in update["plan"]["subtasks"]] == ["whole-task"]
    assert "did not call submit_plan" in update["plan"]["summary"] and len(model.seen) == 3
