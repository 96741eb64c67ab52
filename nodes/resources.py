"""What the nodes share that is not state: settings, model clients, sandboxes and workspaces.

`Resources` belongs to one compiled graph and holds the graph's settings. Each
node receives the run's context explicitly (`runtime: Runtime[RunContext]`)
and asks `resources.for_run(run_id, runtime.context)` for that run's
`RunResources`: the settings with the run's overrides applied, one chat model
per role, the run's workspace and sandbox. They are made once per run in this
process, kept for at most `RUNS_KEPT` runs, and released by the report node
when the run ends. Nothing here is checkpointed; all of it can be rebuilt from
settings and the state after a crash.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from sevenfold.context import RunContext, apply_context, context_overrides
from sevenfold.llm.budget import ContextBudget, worker_budget
from sevenfold.llm.chat import SevenfoldChatOpenAI
from sevenfold.llm.factory import chat_model
from sevenfold.llm.limiter import LIMITERS
from sevenfold.settings import ROLES, Settings
from sevenfold.tools.sandbox import SandboxPolicy, sandbox_policy
from sevenfold.tools.toolset import build_tools
from sevenfold.tools.workspace import Workspace

RUNS_KEPT = 16
"""Runs whose resources one process keeps at once (a run paused for approval, or cut short, keeps its own)."""
_TOOLSETS_KEPT = 256

RunContextInput = RunContext | Mapping[str, Any] | None
"""A run's context as a node receives it: a `RunContext`, the plain dict a server passes, or nothing."""


@dataclass(frozen=True)
class WorkerToolset:
    """A worker's tools (by name) and the worker model bound to them."""

    tools: dict[str, BaseTool]
    model: Runnable[LanguageModelInput, AIMessage]


@dataclass
class RunResources:
    """One run's resources: its settings (overrides applied), a chat model per role, its workspaces."""

    run_id: str
    settings: Settings
    _models: dict[str, SevenfoldChatOpenAI] = field(default_factory=dict)
    _workspaces: dict[str, Workspace] = field(default_factory=dict)
    _toolsets: OrderedDict[str, WorkerToolset] = field(default_factory=OrderedDict)
    _sandboxes: dict[str, SandboxPolicy] = field(default_factory=dict)
    _budget: ContextBudget | None = None

    def __post_init__(self) -> None:
        # Built now (in a thread, by `Resources.for_run`), not in a node: an HTTP client reads certificates.
        for role in ROLES:
            self._models[role] = chat_model(self.settings, role, self.run_id)

    def model(self, role: str) -> SevenfoldChatOpenAI:
        """The chat model of a role."""
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

    async def context_budget(self) -> ContextBudget:
        """The worker requests' context budget for this run's settings (worked out once per run)."""
        if self._budget is None:
            self._budget = await worker_budget(self.settings)
        return self._budget

    async def sandbox(self, repo: str) -> SandboxPolicy:
        """The sandbox policy for commands on `repo`'s worktrees (probed and built once, in a thread)."""
        if repo not in self._sandboxes:
            self._sandboxes[repo] = await asyncio.to_thread(sandbox_policy, self.settings, Path(repo))
        return self._sandboxes[repo]

    @property
    def run_dir(self) -> Path:
        """The directory holding the run's checkpoints, report and worktrees."""
        return self.settings.run_root / self.run_id

    async def workspace(self, repo: str) -> Workspace:
        """The run's workspace on a repository (worktrees under the run directory), opened in a thread once."""
        if repo not in self._workspaces:
            self._workspaces[repo] = await asyncio.to_thread(
                Workspace.open, Path(repo), self.run_id, self.run_dir / "worktrees"
            )
        return self._workspaces[repo]

    def slot_mark(self, role: str = "worker") -> dict[str, float | int]:
        """The slot counters of a role's endpoint now, as plain data for the state (only valid in this process)."""
        endpoint = self.settings.endpoint_for(role)
        snapshot = LIMITERS.open(endpoint.base_url, endpoint.total_slots).snapshot()
        return {"pid": os.getpid(), "time": snapshot.time, "busy": snapshot.busy_slot_seconds}


@dataclass
class Resources:
    """The graph's settings and the resources of the runs going on in this process."""

    settings: Settings
    _runs: OrderedDict[str, RunResources] = field(default_factory=OrderedDict)
    _overrides: dict[str, str] = field(default_factory=dict)

    async def for_run(self, run_id: str, context: RunContextInput) -> RunResources:
        """The run's resources, made on its first step in this process with the run's context applied.

        The context is read on every call: a run resumed with a different context gets fresh resources.
        """
        overrides = context_overrides(context)
        key = repr(sorted(overrides.items()))
        run = self._runs.get(run_id)
        if run is None or self._overrides.get(run_id) != key:
            settings = apply_context(self.settings, overrides)
            built = await asyncio.to_thread(RunResources, run_id, settings)
            run = self._runs.get(run_id)
            if run is None or self._overrides.get(run_id) != key:  # else a sibling step built it meanwhile: share it
                run = self._runs[run_id] = built
                self._overrides[run_id] = key
            while len(self._runs) > RUNS_KEPT:
                evicted, _ = self._runs.popitem(last=False)
                self._overrides.pop(evicted, None)
        self._runs.move_to_end(run_id)
        return run

    def release(self, run_id: str) -> None:
        """Forget a finished run's resources."""
        self._runs.pop(run_id, None)
        self._overrides.pop(run_id, None)

    @property
    def runs_held(self) -> list[str]:
        """Ids of the runs whose resources are held now (oldest first)."""
        return list(self._runs)
