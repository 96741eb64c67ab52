"""`sevenfold bench` as a user runs it: a table, the files asked for, and bad input in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def test_bench_prints_a_table_and_writes_json_and_a_png(
    sevenfold_cli: Callable[..., list[str]],
    sim_process: Callable[..., tuple[subprocess.Popen[str], str]],
    tmp_path: Path,
) -> None:
    _, base_url = sim_process("--profile", "instant")
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    args = ["--base-url", base_url, "--concurrency", "1,2", "--num-prompts", "4", "--output-len", "16"]
    result = subprocess.run(
        sevenfold_cli("bench", *args, "--input-len", "100", "--json", str(out), "--plot", str(png)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "TTFT" in result.stdout and "scaling" in result.stdout
    report = json.loads(out.read_text())
    assert (report["input_len"], report["output_len"], report["lengths_forced"]) == (100, 16, True)
    assert [lv["concurrency"] for lv in report["levels"]] == [1, 2]
    for level in report["levels"]:
        assert level["completed"] == 4 and level["total_output_tokens"] == 4 * 16
        assert set(level["itl_ms"]) == {"mean", "median", "p99"} and level["output_throughput"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("unreachable", "no model server at"),
        ("bad-list", "--concurrency must be positive integers"),
        ("zero", "--concurrency must be positive integers"),
        ("model", "does not serve 'no/such-model' (it serves: Qwen/Qwen3-Coder-30B-A3B-Instruct)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    sevenfold_cli: Callable[..., list[str]],
    sim_process: Callable[..., tuple[subprocess.Popen[str], str]],
    free_port: Callable[[], int],
    case: str,
    says: str,
) -> None:
    base_url = sim_process("--profile", "instant")[1] if case == "model" else f"http://127.0.0.1:{free_port()}/v1"
    concurrency = {"bad-list": "1,x", "zero": "0"}.get(case, "1")
    args = ["--base-url", base_url, "--concurrency", concurrency, "--num-prompts", "1"]
    if case == "model":
        args += ["--model", "no/such-model"]
    result = subprocess.run(sevenfold_cli("bench", *args), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr


def test_plot_without_matplotlib_says_what_to_install_before_running(free_port: Callable[[], int]) -> None:
    hide_matplotlib = "import sys; sys.modules['matplotlib'] = None; from sevenfold.cli import main; main()"
    args = ["bench", "--base-url", f"http://127.0.0.1:{free_port()}/v1", "--plot", "out.png"]
    result = subprocess.run([sys.executable, "-c", hide_matplotlib, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --plot needs matplotlib: pip install 'sevenfold[bench]'"
