"""Choosing the sandbox: a backend that cannot run stops a run before anything is written; the run says which ran."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sevenfold.demo.run import demo_sandbox
from sevenfold.settings import load_settings
from sevenfold.tools import sandbox as sandbox_module


def test_a_sandbox_that_cannot_run_is_one_line_exit_2_and_nothing_written(
    sevenfold_cli: Callable[..., list[str]],
    example_repo: Callable[[str], Path],
    run_env: dict[str, str],
    tmp_path: Path,
) -> None:
    repo = example_repo("user")
    tools = tmp_path / "bin"  # git and python, but no bubblewrap
    tools.mkdir()
    for program in ("git", "python", "python3"):
        if found := shutil.which(program):
            (tools / program).symlink_to(found)
    run_env["PATH"] = str(tools)
    argv = sevenfold_cli(
        "run", "do it", "--repo", str(repo), "--sandbox", "bwrap", "--base-url", "http://127.0.0.1:9/v1"
    )
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=run_env)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "sandbox bwrap cannot be used" in lines[0] and "bubblewrap" in lines[0]
    assert not Path(run_env["SEVENFOLD_RUN_ROOT"]).exists() or not any(Path(run_env["SEVENFOLD_RUN_ROOT"]).iterdir())


def test_the_demo_alone_falls_back_to_no_sandbox_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sandbox_module, "bwrap_works", lambda: "bubblewrap (bwrap) is not installed")
    monkeypatch.setattr(sandbox_module, "landlock_abi", lambda: 0)
    assert demo_sandbox(load_settings()) == "none"
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("sandbox: none") and "install bubblewrap" in said[0]
    # A run asked for by name is not second-guessed.
    assert demo_sandbox(load_settings(sandbox={"backend": "bwrap"})) == "bwrap"


def test_every_run_names_its_sandbox_first_and_none_is_warned(
    sevenfold_cli: Callable[..., list[str]],
    sim_process: Callable[..., tuple[subprocess.Popen[str], str]],
    example_repo: Callable[[str], Path],
    run_env: dict[str, str],
) -> None:
    _, base_url = sim_process("--profile", "instant")
    repo = example_repo("user")
    argv = [*sevenfold_cli("run", "look around", "--repo", str(repo), "--base-url", base_url), "--max-rounds", "1"]
    result = subprocess.run(
        [*argv, "--sandbox", "none", "--events"], capture_output=True, text=True, timeout=300, env=run_env
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert events[0]["event"] == "sandbox" and events[0]["backend"] == "none"
    assert any("NOT confined" in warning for warning in events[0]["warnings"])
    run_dir = next(Path(run_env["SEVENFOLD_RUN_ROOT"]).iterdir())
    report = (run_dir / "report.md").read_text()
    assert "Sandbox: none" in report and "WARNING" in report
    assert json.loads((run_dir / "report.json").read_text())["sandbox"]["backend"] == "none"
