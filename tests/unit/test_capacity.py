"""The capacity planner against hand calculation, and vLLM command lines consistent with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sevenfold.errors import SevenfoldError
from sevenfold.serving.capacity import OVERHEAD_PER_GPU, QWEN3_CODER_30B_A3B, load_model_config, plan_capacity
from sevenfold.serving.hardware import GIB, KNOWN, Gpu, detect_gpus, find_gpu
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
    assert model.weights_estimated and model.layers == 48 and model.attention_heads == 32
    measured = load_model_config(tmp_path / "config.json", weights_gb={"fp8": 31})
    assert measured.weight_bytes == {"fp8": 31_000_000_000} and not measured.weights_estimated
    assert plan_capacity(H100, model=measured).kv_tokens == plan_capacity(H100).kv_tokens


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


def test_seven_agents_at_the_full_context_on_one_4090_is_refused_with_what_would_fit() -> None:
    with pytest.raises(SevenfoldError, match=r"does not fit as asked.*262,144 tokens.*try --context \d+"):
        build_serve_command(find_gpu("rtx4090"), slots=7, context=262_144)


def test_gpu_names_are_forgiving_and_unknown_ones_list_the_known() -> None:
    for name in ("H100", "h100-80gb", "NVIDIA H100 80GB HBM3", "h100 pcie"):
        assert find_gpu(name).name == "h100-80"
    assert find_gpu("4090").name == "rtx4090-24" and find_gpu("NVIDIA A100 80GB PCIe").name == "a100-80"
    with pytest.raises(SevenfoldError, match=r"unknown GPU 'v100' \(known: a100-40, .*h200-141\)"):
        find_gpu("v100")


def _fake_nvidia_smi(bin_dir: Path, rows: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '{rows}'\n")
    script.chmod(0o755)


def test_detect_gpus_reads_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    _fake_nvidia_smi(tmp_path / "bin", "NVIDIA H100 80GB HBM3, 81559\\nNVIDIA H100 80GB HBM3, 81559\\n")
    gpu, count = detect_gpus()
    assert (gpu.name, gpu.memory_bytes, gpu.fp8, count) == ("h100-80", 81_559 * 1024**2, True, 2)
    _fake_nvidia_smi(tmp_path / "bin", "NVIDIA RTX 6000 Ada Generation, 49140\\n")
    gpu, count = detect_gpus()  # not in the table: keeps its reported memory, architecture from the name
    assert (gpu.memory_bytes, gpu.architecture, count) == (49_140 * 1024**2, "ada", 1)


def test_detect_gpus_without_nvidia_smi_says_to_pass_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SevenfoldError, match=r"nvidia-smi not found.*pass --gpu NAME \[--count N\]"):
        detect_gpus()


def test_tensor_parallelism_splits_weights_and_replicates_kv_heads_past_four() -> None:
    two = plan_capacity(H100, count=2, weights="bf16")
    assert two.weight_bytes_per_gpu == 61_000_000_000 // 2 and two.kv_bytes_per_token == 96 * 1024
    assert plan_capacity(H100, count=8, weights="bf16").kv_bytes_per_token == 2 * 96 * 1024  # 8 GPUs, 4 KV heads
    with pytest.raises(SevenfoldError, match=r"--count 3: .* divides the model's 32 attention heads"):
        plan_capacity(H100, count=3)


def test_weights_default_by_architecture_and_fp8_is_refused_on_ampere() -> None:
    a100 = find_gpu("a100-80")
    assert plan_capacity(a100).weights == "awq" and plan_capacity(H100).weights == "fp8"
    assert plan_capacity(find_gpu("4090")).weights == "awq"  # FP8 weights (~29 GiB) do not fit in 24 GiB
    for ask in ({"weights": "fp8"}, {"kv_dtype": "fp8"}):
        with pytest.raises(SevenfoldError, match="needs an Ada or Hopper GPU; a100-80 is ampere"):
            plan_capacity(a100, **ask)  # type: ignore[arg-type]
