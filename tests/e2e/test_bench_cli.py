"""`sevenfold bench` as a user runs it: files written, and bad input in one line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


def test_bench_writes_json_and_a_png(
    sevenfold_cli: Callable[..., list[str]],
    sim_process: Callable[..., tuple[subprocess.Popen[str], str]],
    tmp_path: Path,
) -> None:
    _, base_url = sim_process("--profile", "instant")
    args = ["--base-url", base_url, "--concurrency", "1,2", "--num-prompts", "4", "--output-len", "16"]
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    result = subprocess.run(
        sevenfold_cli("bench", *args, "--json", str(out), "--plot", str(png)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert [lv["concurrency"] for lv in json.loads(out.read_text())["levels"]] == [1, 2]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("unreachable", "no model server at"),
        ("bad-list", "--concurrency must be positive"),
        ("model", "does not serve"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    sevenfold_cli: Callable[..., list[str]],
    sim_process: Callable[..., tuple[subprocess.Popen[str], str]],
    free_port: Callable[[], int],
    case: str,
    says: str,
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1" if case == "unreachable" else sim_process("--profile", "instant")[1]
    args = ["--base-url", base_url, "--concurrency", "1,x" if case == "bad-list" else "1", "--num-prompts", "1"]
    if case == "model":
        args += ["--model", "no/such-model"]
    result = subprocess.run(sevenfold_cli("bench", *args), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
