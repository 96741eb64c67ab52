"""sevenfold: a team of coding agents on one self-hosted model server.

The public names, all importable from `sevenfold`; everything else is internal
and may move:

- `build_graph(settings, checkpointer=None)`: the compiled LangGraph graph, to run,
  stream, embed as a subgraph or use as a Runnable. Input `TeamInput`, output
  `TeamOutput`, run-time overrides `RunContext`.
- `Settings`, `load_settings(config_file=None, **overrides)`: typed settings
  (SEVENFOLD_* variables, a TOML file, keyword overrides).
- `start_run`, `resume_run`, `run_status`, `RunResult`: runs with their own
  checkpoint database, report and result branch, as the CLI makes them.
- `chat_model(settings, role)`: a role's `ChatOpenAI`, behind its endpoint's slot limiter.
- `SevenfoldError`, `SettingsError`: what sevenfold raises for bad input.

Heavy modules load on first use, so `import sevenfold` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sevenfold.errors import SettingsError, SevenfoldError
from sevenfold.settings import Settings, load_settings

if TYPE_CHECKING:
    from sevenfold.context import RunContext
    from sevenfold.graphs.coding import build_graph
    from sevenfold.llm.factory import chat_model
    from sevenfold.runs import RunResult, resume_run, run_status, start_run
    from sevenfold.state.team import TeamInput, TeamOutput

_LAZY = {
    "RunContext": "sevenfold.context",
    "build_graph": "sevenfold.graphs.coding",
    "chat_model": "sevenfold.llm.factory",
    "RunResult": "sevenfold.runs",
    "resume_run": "sevenfold.runs",
    "run_status": "sevenfold.runs",
    "start_run": "sevenfold.runs",
    "TeamInput": "sevenfold.state.team",
    "TeamOutput": "sevenfold.state.team",
}

__all__ = [
    "RunContext",
    "RunResult",
    "Settings",
    "SettingsError",
    "SevenfoldError",
    "TeamInput",
    "TeamOutput",
    "build_graph",
    "chat_model",
    "load_settings",
    "resume_run",
    "run_status",
    "start_run",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sevenfold' has no attribute {name!r}")
