"""What the nodes share that is not state: settings, model clients and workspaces.

One `Team` per compiled graph. Nothing here is checkpointed; all of it can be
rebuilt from settings and the state after a crash.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langgraph.runtime import get_runtime

from sevenfold.context import apply_context, context_overrides
from sevenfold.llm.chat import SevenfoldChatOpenAI
from sevenfold.llm.factory import chat_model
from sevenfold.settings import ROLES, Settings
from sevenfold.state.team import TeamState
from sevenfold.tools.sandbox import SandboxPolicy, sandbox_policy
from sevenfold.tools.toolset import build_tools
from sevenfold.tools.workspace import Workspace

_TOOLSETS_KEPT = 256


@dataclass(frozen=True)
class WorkerToolset:
    """A worker's tools (by name) and the worker model bound to them."""

    tools: dict[str, BaseTool]
    model: Runnable[LanguageModelInput, AIMessage]


@dataclass
class Team:
    """Resources for one graph: one chat model per role, one workspace per (repository, run)."""

    settings: Settings
    _models: dict[str, SevenfoldChatOpenAI] = field(default_factory=dict)
    _workspaces: dict[tuple[str, str], Workspace] = field(default_factory=dict)
    _toolsets: OrderedDict[str, WorkerToolset] = field(default_factory=OrderedDict)
    _sandboxes: dict[str, SandboxPolicy] = field(default_factory=dict)
    _variants: dict[str, Team] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Built now, not in a node: making an HTTP client reads certificates from disk (a blocking call).
        for role in ROLES:
            self.model(role)

    async def current(self) -> Team:
        """The team for the running graph's context: this one, or one with the run's overrides applied."""
        try:
            overrides = context_overrides(get_runtime().context)
        except (RuntimeError, KeyError, AttributeError):  # called outside a graph run
            return self
        if not overrides:
            return self
        key = json.dumps(overrides, sort_keys=True, default=str)
        if key not in self._variants:
            settings = apply_context(self.settings, overrides)
            self._variants[key] = await asyncio.to_thread(Team, settings)
        return self._variants[key]

    def model(self, role: str) -> SevenfoldChatOpenAI:
        """The chat model of a role, built on first use."""
        if role not in self._models:
            self._models[role] = chat_model(self.settings, role)
        return self._models[role]

    def toolset(self, worktree: str, sandbox: SandboxPolicy) -> WorkerToolset:
        """The tools confined to a worktree (commands run in `sandbox`) and the worker model bound to them.

        Built once per worktree, not every turn: turning ten tools into JSON schemas costs milliseconds a turn.
        """
        toolset = self._toolsets.get(worktree)
        if toolset is None:
            jail = sandbox.jail(Path(worktree))
            tools = {t.name: t for t in build_tools(Path(worktree), self.settings.tools, jail)}
            toolset = WorkerToolset(tools, self.model("worker").bind_tools(list(tools.values())))
            self._toolsets[worktree] = toolset
            if len(self._toolsets) > _TOOLSETS_KEPT:
                self._toolsets.popitem(last=False)
        self._toolsets.move_to_end(worktree)
        return toolset

    def release_toolset(self, worktree: str) -> None:
        """Forget a finished worker's tools and bound model (each holds about 0.2 MB; a long run has hundreds)."""
        self._toolsets.pop(worktree, None)

    async def sandbox(self, repo: str) -> SandboxPolicy:
        """The sandbox policy for commands on `repo`'s worktrees (probed and built once, in a thread)."""
        if repo not in self._sandboxes:
            self._sandboxes[repo] = await asyncio.to_thread(sandbox_policy, self.settings, Path(repo))
        return self._sandboxes[repo]

    def run_dir(self, run_id: str) -> Path:
        """The directory holding a run's checkpoints, report and worktrees."""
        return self.settings.run_root / run_id

    async def workspace(self, repo: str, run_id: str) -> Workspace:
        """The workspace of a run on a repository (worktrees under the run directory).

        Opened in a thread the first time: GitPython reads the repository with blocking calls.
        """
        key = (repo, run_id)
        if key not in self._workspaces:
            self._workspaces[key] = await asyncio.to_thread(
                Workspace.open, Path(repo), run_id, self.run_dir(run_id) / "worktrees"
            )
        return self._workspaces[key]


def slot_mark(team: Team, role: str = "worker") -> dict[str, float | int]:
    """The slot counters of a role's endpoint now, as plain data for the state (only valid in this process)."""
    from sevenfold.llm.limiter import limiter_for

    endpoint = team.settings.endpoint_for(role)
    snapshot = limiter_for(endpoint.base_url, endpoint.slots).snapshot()
    return {"pid": os.getpid(), "time": snapshot.time, "busy": snapshot.busy_slot_seconds}


class TeamNode(Protocol):
    """A node of the coding graph: the team's state in, a partial update out."""

    def __call__(self, state: TeamState) -> Awaitable[dict[str, Any]]: ...
