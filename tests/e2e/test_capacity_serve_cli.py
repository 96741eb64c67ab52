"""`sevenfold capacity` and `sevenfold serve` as a user runs them: good input, and bad input in one line."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def test_capacity_prints_the_table_and_the_verdict(sevenfold_cli: Callable[..., list[str]]) -> None:
    fits = _run(sevenfold_cli("capacity", "--gpu", "h100", "--weights", "fp8"))
    assert fits.returncode == 0 and "98,304 bytes (96 KiB" in fits.stdout and "verdict: fits" in fits.stdout
    short = _run(sevenfold_cli("capacity", "--gpu", "H100-80GB", "--weights", "bf16"))
    assert short.returncode == 1 and "verdict: does not fit as asked" in short.stdout


def test_serve_dry_run_prints_a_vllm_command_with_reasons(sevenfold_cli: Callable[..., list[str]]) -> None:
    result = _run(sevenfold_cli("serve", "--gpu", "h100", "--dry-run"))
    assert result.returncode == 0, result.stderr
    assert "vllm serve Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8 " in result.stdout
    assert "--tool-call-parser qwen3_coder" in result.stdout and "# " in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["capacity", "--gpu", "tpu-v5"], "unknown GPU 'tpu-v5' (known: a100-40, a100-80"),
        (
            ["capacity", "--gpu", "h100", "--context", "500000"],
            "longer than Qwen/Qwen3-Coder-30B-A3B-Instruct's maximum",
        ),
        (["capacity", "--gpu", "h100", "--slots", "0"], "--count, --slots and --context must be at least 1"),
        (["serve", "--gpu", "auto", "--dry-run"], "nvidia-smi not found, so the GPUs cannot be detected: pass --gpu"),
        (["serve", "--gpu", "rtx4090", "--slots", "7", "--context", "65536"], "does not fit as asked"),
        (["serve", "--gpu", "h100"], "vllm is not installed here: `pip install vllm`"),
        (["serve", "--gpu", "h100", "--context", "300000", "--dry-run"], "longer than"),
        (["capacity", "--gpu", "a100-80", "--count", "3"], "--count 3: tensor parallelism needs a GPU count"),
        (["capacity", "--gpu", "a100-80", "--weights", "fp8"], "--weights fp8 needs an Ada or Hopper GPU"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    sevenfold_cli: Callable[..., list[str]], run_env: dict[str, str], tmp_path: Path, args: list[str], says: str
) -> None:
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    result = _run(sevenfold_cli(*args), env={**run_env, "PATH": str(empty_path)})  # no nvidia-smi, no vllm
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr


def test_serve_auto_uses_the_gpus_nvidia_smi_lists(
    sevenfold_cli: Callable[..., list[str]], run_env: dict[str, str], tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf 'NVIDIA A100-SXM4-80GB, 81920\\nNVIDIA A100-SXM4-80GB, 81920\\n'\n")
    fake.chmod(0o755)
    env = {**run_env, "PATH": str(bin_dir)}
    result = _run(sevenfold_cli("serve", "--gpu", "auto", "--dry-run"), env=env)
    assert result.returncode == 0, result.stderr
    command = result.stdout.strip().splitlines()[-1]
    assert command.startswith("vllm serve cpatonn/Qwen3-Coder-30B-A3B-Instruct-AWQ-4bit ")  # Ampere: no FP8
    assert "--tensor-parallel-size 2" in command and "--kv-cache-dtype" not in command
    too_many = _run(sevenfold_cli("serve", "--gpu", "auto", "--count", "4", "--dry-run"), env=env)
    assert too_many.returncode == 2 and "--count 4, but nvidia-smi lists 2 a100-80" in too_many.stderr
