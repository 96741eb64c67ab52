"""The context budget: from the server's context length and KV cache, shared by the slots, minus the completion."""

from __future__ import annotations

import pytest

from sevenfold.llm.budget import ServerFacts, parse_kv_cache_tokens, plan_budget
from sevenfold.serving.capacity import plan_capacity
from sevenfold.serving.hardware import find_gpu
from sevenfold.settings import Settings, load_settings

VLLM_METRICS = """\
# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",cache_dtype="auto",calculate_kv_scales="False",enable_prefix_caching="True",gpu_memory_utilization="0.92",num_cpu_blocks="None",num_gpu_blocks="9500",prefix_caching_hash_algo="builtin"} 1.0
vllm:num_requests_running{engine="0",model_name="m"} 0.0
"""


def settings(slots: int = 7, max_tokens: int = 4096, **context: object) -> Settings:
    return load_settings(endpoints={"default": {"slots": slots}}, worker={"max_tokens": max_tokens}, context=context)


def test_the_kv_cache_size_is_read_from_vllms_cache_config_info() -> None:
    assert parse_kv_cache_tokens(VLLM_METRICS) == 9500 * 16
    assert parse_kv_cache_tokens("vllm:num_requests_running 0\n") is None
    assert parse_kv_cache_tokens('vllm:cache_config_info{block_size="16",num_gpu_blocks="None"} 1.0\n') is None


def test_seven_slots_share_the_cache_so_all_requests_in_flight_fit_together() -> None:
    budget = plan_budget(settings(), ServerFacts(max_model_len=32_768, kv_cache_tokens=152_000))
    share = 152_000 // 7
    assert budget.kv_share == share
    assert budget.tokens == share - 4096
    assert 7 * (budget.tokens + budget.reserve) <= 152_000
    assert budget.high_water == int(budget.tokens * 0.85)
    assert budget.low_water == int(budget.tokens * 0.5)
    assert "server" in budget.source and "7 slots" in budget.source


def test_a_cache_roomier_than_the_context_leaves_the_context_length_as_the_limit() -> None:
    budget = plan_budget(settings(max_tokens=2048), ServerFacts(max_model_len=32_768, kv_cache_tokens=1_000_000))
    assert budget.tokens == 32_768 - 2048


def test_without_server_figures_the_capacity_planner_gives_the_cache_for_the_configured_gpu() -> None:
    budget = plan_budget(settings(gpu="h100", max_model_len=65_536), ServerFacts())
    planned = plan_capacity(find_gpu("h100"), 1, slots=7, context=65_536).kv_tokens
    assert budget.kv_share == planned // 7
    assert budget.tokens == min(65_536, planned // 7) - 4096
    assert "capacity planner" in budget.source


def test_a_server_that_says_nothing_falls_back_to_the_settings() -> None:
    budget = plan_budget(settings(max_model_len=16_384), ServerFacts())
    assert budget.tokens == 16_384 - 4096
    assert budget.kv_share is None
    budget = plan_budget(settings(kv_cache_tokens=70_000), ServerFacts(max_model_len=32_768))
    assert budget.tokens == 10_000 - 4096


def test_a_budget_set_in_settings_or_the_run_context_wins() -> None:
    budget = plan_budget(settings(budget=12_000), ServerFacts(max_model_len=32_768, kv_cache_tokens=152_000))
    assert (budget.tokens, budget.high_water, budget.low_water) == (12_000, 10_200, 6_000)
    assert "set in settings" in budget.describe()


def test_a_completion_reserve_as_large_as_the_context_is_squeezed_not_negative() -> None:
    budget = plan_budget(settings(max_tokens=4096), ServerFacts(max_model_len=4096))
    assert budget.tokens >= 1024
    assert "squeezed" in budget.source


def test_marks_must_be_ordered() -> None:
    with pytest.raises(Exception, match="low_water"):
        settings(low_water=0.9, high_water=0.8)
