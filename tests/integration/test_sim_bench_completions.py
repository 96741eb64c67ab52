"""`sevenfold bench` drives `/v1/completions` as `vllm bench serve`'s default backend does."""

from __future__ import annotations

from collections.abc import Callable

from sevenfold.serving.bench import run_bench
from sevenfold.serving.bench_report import bench_notes
from sevenfold.sim.runner import BackgroundSimulator
from tests.waiting import await_until


async def test_bench_measures_the_completions_api(start_sim: Callable[..., BackgroundSimulator]) -> None:
    sim = start_sim(profile="h100-fp8", max_num_seqs=4, time_scale=4)
    report = await run_bench(sim.base_url, [1, 4], input_len=48, output_len=24, num_prompts=4, backend="completions")
    assert report.backend == "completions" and report.lengths_forced
    assert any("/v1/completions" in note for note in bench_notes(report))
    for level in report.levels:
        assert (level.completed, level.failed) == (4, 0)
        assert level.total_output_tokens == 4 * 24
        assert level.ttft_ms.median > 0 and level.itl_ms.median > 0

    def nine_finished_at_length() -> bool:
        lines = sim.simulator.metrics.render().decode().splitlines()
        return any(
            'finished_reason="length"' in line and line.endswith(" 9.0")
            for line in lines
            if "request_success_total" in line
        )

    # The server counts a request after its last byte is sent, so the count may trail the client by a moment.
    await await_until(nine_finished_at_length, "request_success_total{finished_reason=length} to reach 9")
