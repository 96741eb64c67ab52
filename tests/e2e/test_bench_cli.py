"""`sevenfold bench` as a user runs it: a table, the files asked for, and bad input in one line.

Against the simulator, figures are in modelled time and say "simulated: PROFILE at scale K". Scale 10 puts
h100-fp8's tokens 0.585 ms apart, below the 1 ms the simulator paces honestly (`sim/clock.py`, `bench/README.md`),
and is refused in one line. That scale 1 and scale 5 give the same modelled throughput and ITL is a figure of the
machine's load, measured by `bench/sim_pacing.py`; the conversion from wall-clock to modelled time is tested on
hand-made timings in `tests/unit/test_bench_simulated.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image


def test_bench_prints_a_table_and_writes_json_and_a_png(
    sevenfold_cli: Callable[..., list[str]],
    sim_process: Callable[..., tuple[subprocess.Popen[str], str]],
    tmp_path: Path,
) -> None:
    _, base_url = sim_process("--profile", "h100-fp8", "--time-scale", "5")
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
    assert "simulated: h100-fp8 at scale 5 (Qwen/Qwen3-Coder-30B-A3B-Instruct)" in result.stdout
    assert "modelled time: wall-clock times × 5, rates ÷ 5" in result.stdout
    report = json.loads(out.read_text())
    assert (report["source"], report["time_basis"]) == (
        "simulated: h100-fp8 at scale 5 (Qwen/Qwen3-Coder-30B-A3B-Instruct)",
        "modelled",
    )
    assert (report["simulated"]["profile"], report["simulated"]["time_scale"]) == ("h100-fp8", 5)
    assert (report["input_len"], report["output_len"], report["lengths_forced"]) == (100, 16, True)
    assert [lv["concurrency"] for lv in report["levels"]] == [1, 2]
    for level in report["levels"]:
        assert level["completed"] == 4 and level["total_output_tokens"] == 4 * 16
        assert set(level["itl_ms"]) == {"mean", "median", "p99"} and level["output_throughput"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(png).info["Title"].startswith("simulated: h100-fp8 at scale 5, in modelled time; ")


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("unreachable", "no model server at"),
        ("bad-list", "--concurrency must be positive integers"),
        ("zero", "--concurrency must be positive integers"),
        ("model", "does not serve 'no/such-model' (it serves: Qwen/Qwen3-Coder-30B-A3B-Instruct)"),
        (
            "unpaced",
            "(simulated: h100-fp8 at scale 10) would stream a token every 0.58 ms of wall time, below the 1 ms it "
            "paces honestly (so ITL would measure the event loop, not the model); restart it with --time-scale 5.8 "
            "or less",
        ),
        ("instant", "runs profile instant, which models no time between tokens"),
        ("backend", "--backend must be chat or completions (got 'grpc')"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    sevenfold_cli: Callable[..., list[str]],
    sim_process: Callable[..., tuple[subprocess.Popen[str], str]],
    free_port: Callable[[], int],
    case: str,
    says: str,
) -> None:
    sims = {
        "model": ("--profile", "instant"),
        "unpaced": ("--profile", "h100-fp8", "--time-scale", "10"),
        "instant": ("--profile", "instant"),
    }
    base_url = sim_process(*sims[case])[1] if case in sims else f"http://127.0.0.1:{free_port()}/v1"
    concurrency = {"bad-list": "1,x", "zero": "0"}.get(case, "1")
    args = ["--base-url", base_url, "--concurrency", concurrency, "--num-prompts", "1"]
    if case == "model":
        args += ["--model", "no/such-model"]
    if case == "backend":
        args += ["--backend", "grpc"]
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
