"""The `sevenfold` command as a user runs it: `sim` and `demo` in real processes."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from sevenfold.llm.factory import chat_model
from sevenfold.settings import Settings

SimProcess = Callable[..., tuple[subprocess.Popen[str], str]]


async def test_sim_command_serves_chat_openai_and_stops_cleanly_on_sigterm(
    sim_process: SimProcess, settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    log = tmp_path / "requests.jsonl"
    process, base_url = sim_process("--profile", "instant", "--max-num-seqs", "4", "--request-log", str(log))
    worker = chat_model(settings_for(base_url), "worker")
    reply = await worker.ainvoke([HumanMessage("over a real socket")])
    assert reply.content == "over a real socket"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    assert '"role":"worker"' in log.read_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--fault", "meltdown:1"], "bad --fault 'meltdown:1'"),
        (["--profile", "a100-imaginary"], "unknown profile 'a100-imaginary' (known: h100-fp8, rtx4090-awq, instant"),
        (["--policy", "missing.yaml"], "policy script not found: missing.yaml"),
        (["--model-kind", "wizard"], "--model-kind must be coder or hybrid"),
    ],
)
def test_sim_command_refuses_bad_options_with_one_line(
    sevenfold_cli: Callable[..., list[str]], args: list[str], says: str
) -> None:
    result = subprocess.run(sevenfold_cli("sim", "--port", "0", *args), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr


def test_tour_runs_a_tool_call_and_fills_the_slots(sevenfold_cli: Callable[..., list[str]]) -> None:
    result = subprocess.run(
        sevenfold_cli("tour"),
        capture_output=True,
        text=True,
        timeout=180,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "model called add({'a': 2, 'b': 40}) -> 42" in result.stdout
    assert "7 / 7" in result.stdout
    assert "not a model" in result.stdout
