"""The capacity planner against hand calculation, and vLLM command lines consistent with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sevenfold.errors import SevenfoldError
from sevenfold.serving.capacity import OVERHEAD_PER_GPU, QWEN3_CODER_30B_A3B, load_model_config, plan_capacity
from sevenfold.serving.hardware import GIB, KNOWN, Gpu, find_gpu
from sevenfold.serving.launch import build_serve_command

H100 = find_gpu("H100")


def test_kv_bytes_per_token_and_the_seven_agent_goal_match_hand_calculation() -> None:
    assert QWEN3_CODER_30B_A3B.kv_bytes_per_token("auto") == 2 * 48 * 4 * 128 * 2 == 96 * 1024
    assert QWEN3_CODER_30B_A3B.kv_bytes_per_token("fp8") == 48 * 1024
    plan = plan_capacity(H100, weights="fp8", slots=7, context=32_768)
    assert plan.needed_tokens == 229_376 and plan.needed_tokens * plan.kv_bytes_per_token == 21 * GIB


def test_h100_with_bf16_weights_cannot_hold_seven_32k_agents_but_fp8_weights_can() -> None:
    bf16 = plan_capacity(H100, weights="bf16")
    expected_tokens = (int(H100.memory_bytes * 0.92) - 61_000_000_000 - OVERHEAD_PER_GPU) // (96 * 1024)
    assert bf16.kv_tokens == expected_tokens and not bf16.fits
    assert bf16.max_context_per_slot == expected_tokens // 7 < 32_768
    assert bf16.verdict().startswith("does not fit as asked") and "4 slots fit" in bf16.verdict()
    fp8 = plan_capacity(H100, weights="fp8")
    assert fp8.fits and fp8.max_slots_at_context >= 7 and fp8.verdict().startswith("fits")


def test_weights_that_do_not_fit_leave_no_kv_cache() -> None:
    plan = plan_capacity(find_gpu("rtx4090"), weights="bf16")
    assert plan.kv_tokens == 0 and not plan.weights_fit and plan.verdict().startswith("does not fit: ")


def test_a_config_json_gives_the_same_numbers_as_the_built_in_model(tmp_path: Path) -> None:
    config = {
        "num_hidden_layers": 48,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "hidden_size": 2048,
        "max_position_embeddings": 262_144,
        "intermediate_size": 6144,
        "moe_intermediate_size": 768,
        "num_experts": 128,
        "vocab_size": 151_936,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = load_model_config(tmp_path / "config.json")
    assert model.kv_bytes_per_token() == QWEN3_CODER_30B_A3B.kv_bytes_per_token()
    assert model.max_context == 262_144
    assert 28e9 < model.weight_bytes["bf16"] / 2 < 33e9  # ~30.5B parameters estimated from the shapes


@pytest.mark.parametrize("gpu", KNOWN, ids=[g.name for g in KNOWN])
def test_serve_commands_agree_with_the_planner(gpu: Gpu) -> None:
    count = 1 if gpu.memory_gib > 30 else 2
    try:
        command = build_serve_command(gpu, count=count, slots=7, context=16_384)
    except SevenfoldError as exc:  # refused: the planner must agree nothing fits
        for weights in ("fp8", "awq") if gpu.fp8 else ("awq",):
            for kv in ("auto", "fp8") if gpu.fp8 else ("auto",):
                assert not plan_capacity(gpu, count, weights, kv, 7, 16_384).fits, exc  # type: ignore[arg-type]
        return
    argv = command.argv()
    value = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
    assert command.plan.fits and int(value["--max-model-len"]) == 16_384 <= command.plan.max_context_per_slot
    assert value["--tensor-parallel-size"] == str(count)
    assert int(value["--max-num-seqs"]) > 7
    assert value["--tool-call-parser"] == "qwen3_coder" and "--enable-auto-tool-choice" in argv
    assert ("FP8" in argv[2]) == (command.plan.weights == "fp8") and (gpu.fp8 or command.plan.weights != "fp8")
    assert (value.get("--kv-cache-dtype") == "fp8") == (command.plan.kv_dtype == "fp8")


def test_serve_never_emits_a_command_the_planner_rejects() -> None:
    with pytest.raises(SevenfoldError, match=r"does not fit.*try --context \d+ or --slots \d+"):
        build_serve_command(find_gpu("4090"), slots=7, context=32_768)
    with pytest.raises(SevenfoldError, match=r"longer than .* maximum of 262,144"):
        plan_capacity(H100, context=300_000)
