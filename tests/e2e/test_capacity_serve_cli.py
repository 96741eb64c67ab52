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


def test_serve_replicas_prints_one_vllm_per_gpu_and_the_router(
    sevenfold_cli: Callable[..., list[str]], tmp_path: Path
) -> None:
    result = _run(sevenfold_cli("serve", "--gpu", "h100", "--replicas", "3", "--slots", "8", "--dry-run"))
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0  # a script `sh` can run
    commands = [line for line in script.splitlines() if not line.startswith("#")]
    replicas = [line for line in commands if " vllm serve " in line]
    assert [line.split(" ", 1)[0] for line in replicas] == [f"CUDA_VISIBLE_DEVICES={i}" for i in range(3)]
    ports = [line.split("--port ")[1].split()[0] for line in replicas]
    assert len(set(ports)) == 3 and "8000" not in ports
    assert all("--max-num-seqs 10" in line and line.endswith(" &") for line in replicas)
    router = next(line for line in commands if line.startswith("vllm-router "))
    assert f"--worker-urls {' '.join(f'http://127.0.0.1:{p}' for p in ports)} " in router
    assert "--policy consistent_hash" in router and "--port 8000" in router and "--prometheus-port 29000" in router
    # Every flag comes with its reason, and the settings to use say slots per replica.
    assert "#   --policy consistent_hash: sevenfold sends each run's id in X-Session-ID" in script
    assert "#   --cb-failure-threshold 3: a dead replica leaves" in script
    assert "slots = 8, replicas = 3" in script


def test_serve_replicas_of_tensor_parallel_groups_from_nvidia_smi(
    sevenfold_cli: Callable[..., list[str]], run_env: dict[str, str], tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\nfor i in 0 1 2 3; do echo 'NVIDIA A100-SXM4-80GB, 81920'; done\n")
    fake.chmod(0o755)
    env = {**run_env, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = _run(sevenfold_cli("serve", "--replicas", "2", "--dry-run", "--router-policy", "round_robin"), env=env)
    assert result.returncode == 0, result.stderr
    replicas = [line for line in result.stdout.splitlines() if " vllm serve " in line]
    assert [line.split(" ", 1)[0] for line in replicas] == ["CUDA_VISIBLE_DEVICES=0,1", "CUDA_VISIBLE_DEVICES=2,3"]
    assert all("--tensor-parallel-size 2" in line for line in replicas)
    assert "--policy round_robin" in result.stdout
    too_many = _run(sevenfold_cli("serve", "--replicas", "3", "--count", "2", "--dry-run"), env=env)
    assert (
        too_many.returncode == 2 and "--replicas 3 x --count 2 needs 6 GPUs, but nvidia-smi lists 4" in too_many.stderr
    )
    clash = _run(sevenfold_cli("serve", "--gpu", "h100", "--replicas", "2", "--replica-port", "7999", "--dry-run"))
    assert clash.returncode == 2 and "must all differ" in clash.stderr


def test_capacity_per_replica_and_the_routers_total(sevenfold_cli: Callable[..., list[str]]) -> None:
    result = _run(sevenfold_cli("capacity", "--gpu", "h100", "--replicas", "3", "--slots", "8"))
    assert result.returncode == 0, result.stderr
    assert "3 x 1 GPU(s) = 3 GPUs" in result.stdout
    assert "3 x 8 = 24 (settings: slots = 8, replicas = 3)" in result.stdout
    assert "verdict: fits: 8 slots x 32,768 tokens" in result.stdout  # the verdict is one replica's
