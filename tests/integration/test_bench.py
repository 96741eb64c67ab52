"""`sevenfold bench` against real HTTP servers: vLLM's figures, every concurrency level measured, figures from the
simulator labelled as simulated, and a real server's left as they are."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from sevenfold.serving.bench import run_bench
from sevenfold.serving.bench_metrics import RequestResult, percentile, set_scaling_efficiency, summarize
from sevenfold.serving.bench_report import bench_notes, bench_table, plot_title
from sevenfold.sim.runner import BackgroundSimulator


def test_figures_follow_vllm_definitions_on_hand_made_timings() -> None:
    requests = [
        RequestResult(ok=True, ttft_s=0.1, e2e_s=1.1, itl_s=[0.2, 0.3, 0.2, 0.3], prompt_tokens=10, output_tokens=5),
        RequestResult(ok=True, ttft_s=0.3, e2e_s=2.3, itl_s=[0.5] * 4, prompt_tokens=10, output_tokens=5),
        RequestResult(ok=True, ttft_s=0.2, e2e_s=0.2, prompt_tokens=10, output_tokens=1),
        RequestResult(ok=False, error="HTTP 500: busy"),
    ]
    level = summarize(2, requests, duration_s=2.5)
    assert (level.completed, level.failed, level.first_error) == (3, 1, "HTTP 500: busy")
    assert (level.total_input_tokens, level.total_output_tokens) == (30, 11)
    assert level.request_throughput == pytest.approx(3 / 2.5)  # completed requests over the level's wall time
    assert level.output_throughput == pytest.approx(11 / 2.5)
    assert level.total_token_throughput == pytest.approx(41 / 2.5)
    # TTFT 100, 300, 200 ms; p99 interpolates between the two largest: 200 + 0.98 x 100.
    assert (level.ttft_ms.mean, level.ttft_ms.median, level.ttft_ms.p99) == pytest.approx((200, 200, 298))
    # TPOT excludes the first token, (e2e - ttft) / (tokens - 1): 1.0 / 4 and 2.0 / 4; a 1-token reply has none.
    assert (level.tpot_ms.mean, level.tpot_ms.median, level.tpot_ms.p99) == pytest.approx((375, 375, 497.5))
    # ITL pools every gap of every request (not a mean per request): median of .2 .2 .3 .3 .5 .5 .5 .5.
    assert (level.itl_ms.mean, level.itl_ms.median) == pytest.approx((375, 400))
    assert (level.e2el_ms.median, level.e2el_ms.p99) == pytest.approx((1100, 2276))
    set_scaling_efficiency([level])
    assert level.scaling_efficiency is None  # no concurrency-1 level to compare with


def test_percentiles_interpolate_like_numpy() -> None:
    np = pytest.importorskip("numpy")
    values = [0.013, 0.5, 0.021, 0.7, 0.0, 0.33, 0.33, 1.25, 0.041]
    for p in (0, 1, 50, 90, 99, 100):
        assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))
    assert percentile([], 99) == 0.0


async def test_every_concurrency_level_is_measured_and_the_server_runs_at_most_max_num_seqs(
    start_sim: Callable[..., BackgroundSimulator],
) -> None:
    sim = start_sim(profile="h100-fp8", max_num_seqs=4, time_scale=4)
    report = await run_bench(sim.base_url, [1, 2, 4, 8], input_len=64, output_len=40, num_prompts=8)
    assert report.lengths_forced and report.model == sim.model and "sevenfold-sim" in report.server
    # Figures from the simulator say so, in modelled time, wherever they are shown.
    assert report.simulated and report.simulated.label == "simulated: h100-fp8 at scale 4"
    assert str(bench_table(report).title).startswith(f"simulated: h100-fp8 at scale 4 ({sim.model}) at ")
    assert plot_title(report).startswith("simulated: h100-fp8 at scale 4, in modelled time\n")
    assert report.to_json()["time_basis"] == "modelled"
    assert bench_notes(report)[0].startswith("simulated: h100-fp8 at scale 4: the simulator's model")
    levels = {lv.concurrency: lv for lv in report.levels}
    for lv in levels.values():
        assert (lv.completed, lv.failed) == (8, 0)
        assert lv.total_output_tokens == 8 * 40  # ignore_eos + min_tokens: exactly output_len each
        assert lv.total_input_tokens > 8 * 50
        figures = [lv.request_throughput, lv.output_throughput, lv.total_token_throughput]
        for stats in (lv.ttft_ms, lv.tpot_ms, lv.itl_ms, lv.e2el_ms):
            figures += [stats.mean, stats.median, stats.p99]
        assert min(figures) > 0, lv
    # Only 4 sequences ran at once; the rest waited in the server's queue. How throughput and time to first token
    # follow from that depends on the machine's speed: `bench/timing_figures.py concurrency` measures them.
    assert sim.simulator.engine.peak_running == 4
    assert levels[1].scaling_efficiency == 1.0
    assert all(levels[c].scaling_efficiency is not None for c in (2, 4, 8))


@pytest.fixture
async def server_without_vllm_extras() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    """An OpenAI-compatible server that refuses `ignore_eos`/`min_tokens` with 400 and streams three tokens."""
    bodies: list[dict[str, object]] = []

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "other/model"}]})

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": "0.11.0"})  # vLLM's answer: no sevenfold_sim

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        bodies.append(body)
        if "ignore_eos" in body or "min_tokens" in body:
            return web.json_response({"error": {"message": "unknown field ignore_eos", "code": 400}}, status=400)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunks = [{"choices": [{"delta": {"role": "assistant"}}]}]
        chunks += [{"choices": [{"delta": {"content": word}}]} for word in ("a", " b", " c")]
        chunks += [{"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 3}}]
        for chunk in chunks:
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_get("/version", version)
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", bodies
    await runner.cleanup()


async def test_a_server_that_refuses_vllm_extras_is_measured_without_them(
    server_without_vllm_extras: tuple[str, list[dict[str, object]]],
) -> None:
    base_url, bodies = server_without_vllm_extras
    report = await run_bench(base_url, [2], output_len=50, num_prompts=4)
    assert not report.lengths_forced and report.model == "other/model"
    # Not the simulator: wall-clock figures, under the model's name, with no word of simulation.
    assert report.simulated is None and report.server == '{"version": "0.11.0"}'
    assert report.to_json()["time_basis"] == "wall" and report.to_json()["source"] == "other/model"
    assert str(bench_table(report).title).startswith("other/model at ")
    assert plot_title(report) == "other/model, ~512 in / 50 out"
    assert not any("simulated" in note for note in bench_notes(report))
    (level,) = report.levels
    assert level.wall_s == level.duration_s
    assert (level.completed, level.failed, level.total_output_tokens) == (4, 0, 12)
    assert level.scaling_efficiency is None
    assert len(bodies) == 2 + 4  # the test request twice (with, then without the extras), then the level
    assert all("ignore_eos" not in body and body["max_tokens"] == 50 for body in bodies[1:])
