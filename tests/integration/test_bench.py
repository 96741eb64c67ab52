"""The serving benchmark against the simulator: every figure, and throughput that stops rising at max_num_seqs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sevenfold.errors import SevenfoldError
from sevenfold.serving.bench import RequestResult, parse_concurrency, run_bench, summarize
from sevenfold.sim.runner import BackgroundSimulator


def test_figures_follow_vllm_definitions_on_hand_made_timings() -> None:
    requests = [
        RequestResult(ok=True, ttft_s=0.1, e2e_s=1.1, itl_s=[0.25] * 4, prompt_tokens=10, output_tokens=5),
        RequestResult(ok=True, ttft_s=0.3, e2e_s=2.3, itl_s=[0.5] * 4, prompt_tokens=10, output_tokens=5),
        RequestResult(ok=False, error="HTTP 500"),
    ]
    level = summarize(2, requests, duration_s=2.5)
    assert (level.completed, level.failed) == (2, 1)
    assert level.request_throughput == 0.8 and level.output_throughput == 4.0 and level.total_token_throughput == 12.0
    assert level.ttft_ms == {"mean": 200.0, "median": 200.0, "p99": 300.0}
    assert level.tpot_ms["mean"] == 375.0  # (1.0 / 4 + 2.0 / 4) / 2, first token excluded
    assert level.itl_ms["median"] == 375.0 and level.e2el_ms["p99"] == 2300.0


def test_bad_concurrency_lists_are_refused() -> None:
    assert parse_concurrency("1, 2,4") == [1, 2, 4]
    for text in ("1,x", "0", ""):
        with pytest.raises(SevenfoldError, match="--concurrency must be positive integers"):
            parse_concurrency(text)


async def test_throughput_rises_with_concurrency_up_to_max_num_seqs(
    start_sim: Callable[..., BackgroundSimulator],
) -> None:
    sim = start_sim(profile="h100-fp8", max_num_seqs=4, time_scale=10)
    report = await run_bench(sim.base_url, [1, 2, 4, 8], input_len=64, output_len=40, num_prompts=8)
    levels = {lv["concurrency"]: lv for lv in report["levels"]}
    assert report["lengths_forced"] and all(lv["failed"] == 0 and lv["completed"] == 8 for lv in levels.values())
    for lv in levels.values():
        assert lv["output_throughput"] > 0 and lv["ttft_ms"]["p99"] > 0 and lv["tpot_ms"]["median"] > 0
        assert lv["output_throughput"] == pytest.approx(lv["request_throughput"] * 40, rel=0.01)  # 40 tokens each
    throughput = {c: lv["request_throughput"] for c, lv in levels.items()}
    assert throughput[1] < throughput[2] < throughput[4]
    assert throughput[8] < 1.3 * throughput[4]  # only 4 sequences run at once; the rest queue
    assert levels[8]["ttft_ms"]["median"] > levels[4]["ttft_ms"]["median"]
    assert levels[1]["scaling_efficiency"] == 1.0 and levels[8]["scaling_efficiency"] < 0.7
