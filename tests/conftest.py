"""Fixtures shared by every test: simulators on 127.0.0.1, settings pointing at them, real git repositories."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sevenfold.settings import Settings, load_settings
from sevenfold.sim.profiles import load_profile
from sevenfold.sim.runner import BackgroundSimulator, wait_until_serving
from sevenfold.sim.runner import free_port as free_port_on_localhost
from sevenfold.sim.server import SimConfig
from tests.gitutil import git
from tests.postgres import postgres_server, postgres_url  # noqa: F401  (fixtures; reads its variable first)

# Tests must never see a user's real endpoint configuration.
for _name in list(os.environ):
    if _name.startswith("SEVENFOLD_"):
        del os.environ[_name]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every end-to-end test `slow`: `pytest -m "not slow"` is the developers' fast tier (unit and integration)."""
    for item in items:
        if "e2e" in item.path.relative_to(Path(__file__).parent).parts:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def start_sim() -> Iterator[Callable[..., BackgroundSimulator]]:
    """Start simulators in this process (stopped at teardown): `start_sim(profile="instant", ...)`."""
    running: list[BackgroundSimulator] = []

    def start(
        profile: str = "instant",
        kv_cache_tokens: int | None = None,
        max_num_batched_tokens: int | None = None,
        **config: Any,
    ) -> BackgroundSimulator:
        sim_config = SimConfig(
            profile=load_profile(
                profile, kv_cache_tokens=kv_cache_tokens, max_num_batched_tokens=max_num_batched_tokens
            ),
            **config,
        )
        sim = BackgroundSimulator(sim_config).start()
        running.append(sim)
        return sim

    yield start
    for sim in running:
        sim.stop()


@pytest.fixture
def sim(start_sim: Callable[..., BackgroundSimulator]) -> BackgroundSimulator:
    """A simulator with no modelled latency and the echo-tools policy."""
    return start_sim()


def _settings_for(sim: BackgroundSimulator | str, slots: int = 7, **overrides: Any) -> Settings:
    fast = {"max_retries": 3, "retry_backoff": 0.01, "timeout": 30}
    roles = {role: {**fast, **overrides.pop(role, {})} for role in ("planner", "worker", "reviewer")}
    base_url = sim if isinstance(sim, str) else sim.base_url
    model = overrides.pop("model", None) or (
        sim.model if not isinstance(sim, str) else "Qwen/Qwen3-Coder-30B-A3B-Instruct"
    )
    return load_settings(
        endpoints={"default": {"base_url": base_url, "slots": slots, "model": model}}, **roles, **overrides
    )


@pytest.fixture
def settings_for() -> Callable[..., Settings]:
    """`settings_for(sim, slots=7, worker={...})`: settings whose only endpoint is `sim`, with fast retries."""
    return _settings_for


@pytest.fixture
def free_port() -> Callable[[], int]:
    """`free_port()`: a 127.0.0.1 port nothing listens on (for a server to start on, or to find no server at)."""
    return free_port_on_localhost


def _sevenfold_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from sevenfold.cli import main; main()", *args]


@pytest.fixture
def sevenfold_cli() -> Callable[..., list[str]]:
    """`sevenfold_cli("sim", "--port", "0")`: the argv that runs this environment's CLI."""
    return _sevenfold_command


@pytest.fixture
def sim_process(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    """Start `sevenfold sim` as a real process on a free port; killed at teardown."""
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], str]:
        port = free_port_on_localhost()
        log = open(tmp_path / f"sim-{port}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            _sevenfold_command("sim", "--port", str(port), *args), stdout=log, stderr=subprocess.STDOUT, text=True
        )
        processes.append(process)
        try:
            return process, wait_until_serving(port, process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {(tmp_path / f'sim-{port}.log').read_text()}") from None

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """`make_repo({"a.py": "x = 1\\n"})`: a git repository with these files committed on `main`."""

    def make(files: dict[str, str], name: str = "repo") -> Path:
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        for path, content in files.items():
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(content)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "initial")
        return repo

    return make


def snapshot(repo: Path) -> dict[str, str]:
    """Every file's hash (outside .git), the status, HEAD and the current branch: the user's checkout as it is."""
    state = {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    state["<status>"] = git(repo, "status", "--porcelain", "--untracked-files=all")
    state["<head>"] = git(repo, "rev-parse", "HEAD")
    state["<branch>"] = git(repo, "branch", "--show-current")
    state["<index>"] = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
    return state


@pytest.fixture
def checkout_snapshot() -> Callable[[Path], dict[str, str]]:
    """Snapshot a user's checkout, to prove later it was not touched."""
    return snapshot
