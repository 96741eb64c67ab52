"""The simulator tells clients what it is, where a vLLM client already looks: /version and /metrics."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from sevenfold.llm.factory import check_endpoint
from sevenfold.settings import EndpointSettings
from sevenfold.sim.clock import PACING_FLOOR_S
from sevenfold.sim.runner import BackgroundSimulator


async def test_version_keeps_vllms_shape_and_adds_profile_and_time_scale(
    start_sim: Callable[..., BackgroundSimulator],
) -> None:
    sim = start_sim(profile="h100-fp8", max_num_seqs=7, time_scale=10)
    async with aiohttp.ClientSession() as session, session.get(sim.base_url.removesuffix("/v1") + "/version") as answer:
        body = await answer.json()
    assert isinstance(body["version"], str) and "sevenfold-sim" in body["version"]  # vLLM: {"version": "0.x.y"}
    assert body["sevenfold_sim"] == {
        "profile": "h100-fp8",
        "time_scale": 10,
        "max_num_seqs": 7,
        "max_model_len": sim.simulator.max_model_len,
        "token_interval_s": 0.00585,  # 5.5 ms a step + 0.35 ms for the one sequence in it
        "pacing_floor_s": PACING_FLOOR_S,
    }
    info = await check_endpoint(EndpointSettings(base_url=sim.base_url, model=sim.model))
    assert info.simulator  # the agent's own check still recognises it


async def test_metrics_carry_an_info_gauge_with_profile_and_time_scale(
    start_sim: Callable[..., BackgroundSimulator],
) -> None:
    sim = start_sim(profile="rtx4090-awq", time_scale=2.5)
    async with aiohttp.ClientSession() as session, session.get(sim.base_url.removesuffix("/v1") + "/metrics") as answer:
        text = await answer.text()
    assert 'sevenfold_sim_info{profile="rtx4090-awq",time_scale="2.5"} 1.0' in text.splitlines()
    assert "sevenfold_sim_time_scale 2.5" in text.splitlines()
