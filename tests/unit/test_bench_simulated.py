"""`sevenfold bench` knows the simulator from its /version, reports it in modelled time, and refuses what it cannot pace."""

from __future__ import annotations

import json

import pytest

from sevenfold.errors import ServerError
from sevenfold.serving.bench_metrics import RequestResult, summarize
from sevenfold.serving.bench_sim import SimulatorInfo, check_pacing

SIM_VERSION = {
    "version": "sevenfold-sim 0.1.0 (models vLLM V1 serving; not a model)",
    "sevenfold_sim": {"profile": "h100-fp8", "time_scale": 10, "token_interval_s": 0.00585, "pacing_floor_s": 0.001},
}


def test_only_a_version_answer_with_sevenfold_sim_is_the_simulator() -> None:
    info = SimulatorInfo.from_version(json.dumps(SIM_VERSION))
    assert info == SimulatorInfo("h100-fp8", 10.0, 0.00585, 0.001)
    assert info is not None and info.label == "simulated: h100-fp8 at scale 10"
    assert SimulatorInfo.from_version('{"version": "0.11.0"}') is None  # what vLLM answers
    assert SimulatorInfo.from_version("not json") is None
    assert SimulatorInfo.from_version('{"version": "x", "sevenfold_sim": {"profile": "p"}}') is None


def test_wall_clock_figures_at_scale_10_become_the_modelled_ones() -> None:
    modelled = [
        RequestResult(ok=True, ttft_s=0.05, e2e_s=0.65, itl_s=[0.006] * 100, prompt_tokens=100, output_tokens=101),
        RequestResult(ok=True, ttft_s=0.07, e2e_s=0.77, itl_s=[0.007] * 100, prompt_tokens=100, output_tokens=101),
    ]
    at_scale_10 = [r.scaled(0.1) for r in modelled]  # what a client sees when the simulator runs 10x faster
    reference = summarize(2, modelled, duration_s=0.8)
    level = summarize(2, at_scale_10, duration_s=0.08, simulated=SimulatorInfo("h100-fp8", 10, 0.00585, 0.001))
    assert level.duration_s == pytest.approx(0.8) and level.wall_s == pytest.approx(0.08)
    for name in ("request_throughput", "output_throughput", "total_token_throughput"):
        assert getattr(level, name) == pytest.approx(getattr(reference, name))
    for name in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"):
        assert vars(getattr(level, name)) == pytest.approx(vars(getattr(reference, name)))
    assert level.itl_ms.median == pytest.approx(6.5)
    assert (level.burst_share, reference.burst_share) == (0.0, None)  # None: not known to be the simulator


def test_token_gaps_the_profile_cannot_produce_are_counted_as_bursts() -> None:
    # A busy machine held three tokens back and let them go at once: three gaps of ~0 after one long one.
    gaps = [0.00585] * 6 + [0.0234, 0.00001, 0.00001, 0.00001]
    burst = RequestResult(ok=True, ttft_s=0.01, e2e_s=0.07, itl_s=[g / 5 for g in gaps], output_tokens=11)
    level = summarize(1, [burst], duration_s=0.016, simulated=SimulatorInfo("h100-fp8", 5, 0.00585, 0.001))
    assert level.burst_share == pytest.approx(0.3)


def test_a_scale_the_simulator_cannot_pace_is_refused_with_the_scale_that_can() -> None:
    check_pacing("http://sim/v1", SimulatorInfo("h100-fp8", 5, 0.00585, 0.001))  # 1.17 ms apart: paced
    with pytest.raises(ServerError) as refused:
        check_pacing("http://sim/v1", SimulatorInfo("h100-fp8", 10, 0.00585, 0.001))
    message = str(refused.value)
    assert "\n" not in message
    assert "(simulated: h100-fp8 at scale 10) would stream a token every 0.58 ms of wall time" in message
    assert "below the 1 ms it paces honestly" in message and "--time-scale 5.8 or less" in message
    with pytest.raises(ServerError, match="profile instant, which models no time between tokens"):
        check_pacing("http://sim/v1", SimulatorInfo("instant", 1, 0.0, 0.001))
