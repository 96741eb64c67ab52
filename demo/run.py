"""`sevenfold demo`: the whole team on the bundled example repository.

Unless given a server, it starts the vLLM simulator in this process with the
demo policy: a script that plays the model's part on this one example (it
reads files, edits them and runs the tests through real tool calls, and leaves
one bug in the first round so the verifier sends the team back once). The
graph, the tools, git, pytest and the HTTP traffic are all real.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from importlib.resources import as_file, files
from pathlib import Path

from sevenfold.demo.policy import demo_policy
from sevenfold.runs import EventHandler, RunResult, start_run
from sevenfold.settings import Settings
from sevenfold.sim.faults import FaultSpec
from sevenfold.sim.profiles import load_profile
from sevenfold.sim.runner import BackgroundSimulator
from sevenfold.sim.server import SimConfig
from sevenfold.tools.sandbox import SandboxUnavailableError, resolve_backend

DEMO_TASK = "Implement every stub module of the package so that the whole test suite passes."
DEMO_TIME_SCALE = 5.0
"""The simulator runs this many times faster than the modelled H100, so the demo takes seconds, not minutes."""


def make_example_repo(parent: Path) -> Path:
    """Copy the example project into `parent/example` and commit it; returns the repository path."""
    repo = parent / "example"
    with as_file(files("sevenfold.demo") / "example") as source:
        shutil.copytree(source, repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    env = {
        "GIT_AUTHOR_NAME": "demo",
        "GIT_AUTHOR_EMAIL": "demo@localhost",
        "GIT_COMMITTER_NAME": "demo",
        "GIT_COMMITTER_EMAIL": "demo@localhost",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "Example project with stub modules"],
    ):
        subprocess.run(command, cwd=repo, check=True, env=env, capture_output=True)
    return repo


def demo_simulator(slots: int, **config: object) -> BackgroundSimulator:
    """A simulator serving the demo policy on an H100 + FP8 profile (not started)."""
    options: dict = {
        "profile": load_profile("h100-fp8"),
        "max_num_seqs": max(16, slots),
        "time_scale": DEMO_TIME_SCALE,
        "policy": demo_policy(),
    } | config
    return BackgroundSimulator(SimConfig(**options))


def demo_sandbox(settings: Settings) -> str:
    """The demo's sandbox: as configured, except that with no backend available it runs unconfined and says so.

    Only the demo may fall back: its model is a script that runs nothing but the example's own tests.
    """
    if settings.sandbox.backend != "auto":
        return settings.sandbox.backend
    try:
        return resolve_backend("auto")
    except SandboxUnavailableError as exc:
        print(f"sandbox: none ({exc}); the demo's model is scripted, a real run would stop here", file=sys.stderr)
        return "none"


async def run_demo(
    settings: Settings,
    base_url: str | None = None,
    workdir: Path | None = None,
    on_event: EventHandler | None = None,
    sim_log: Path | None = None,
    faults: list[str] | None = None,
) -> RunResult:
    """Run the team on a fresh copy of the example repository; starts and stops a simulator unless `base_url` is given."""
    parent = workdir or Path(tempfile.mkdtemp(prefix="sevenfold-demo-"))
    parent.mkdir(parents=True, exist_ok=True)
    repo = make_example_repo(parent)
    simulator = None
    if base_url is None:
        fault_specs = [FaultSpec.parse(spec) for spec in faults or []]
        simulator = demo_simulator(
            settings.endpoint_for("worker").slots, request_log=sim_log, faults=fault_specs
        ).start()
        base_url = simulator.base_url
    try:
        backend = await asyncio.to_thread(demo_sandbox, settings)
        demo_settings = settings.with_overrides(base_url=base_url, sandbox={"backend": backend})
        return await start_run(demo_settings, DEMO_TASK, repo, on_event=on_event)
    finally:
        if simulator is not None:
            simulator.stop()
