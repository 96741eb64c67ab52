"""Hardware profiles: the numbers the simulated engine runs on.

Each figure is an estimate for Qwen3-Coder-30B-A3B-Instruct (48 layers, 4 KV
heads, head_dim 128, 3.3B active parameters) on one card, made from the
architecture and from public reports of vLLM throughput for Qwen3-30B-A3B-class
MoE models; none was measured here (there is no GPU here). They set the shape of
the behaviour (how batching, prefill and the KV budget trade off), not a promise
of any real card's speed. Use `sevenfold bench` against a real server to get
real figures, and pass them back with --profile FILE.

KV capacity is the capacity planner's (`sevenfold capacity`, serving/capacity.py),
so the simulator and the planner never disagree: bytes per token = 2 x 48 x 4 x
128 x 2 (BF16 KV cache) = 96 KiB; tokens = (card memory x
gpu_memory_utilization 0.92 - weights - the planner's overhead allowance) / bytes
per token. On an H100 80 GB that is about 458k tokens with FP8 weights and about
152k with BF16 weights (`h100-bf16`, the cache the issue-13 long-haul benchmark
is sized for).

Profiles hold hardware only. The scheduling policy (vLLM's
`--scheduling-policy`, fcfs by default on every card) is a server flag, passed
to `Engine(scheduling_policy=...)` by whoever starts the simulator.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from sevenfold.errors import SettingsError
from sevenfold.serving.capacity import plan_capacity
from sevenfold.serving.hardware import find_gpu


@dataclass(frozen=True)
class Profile:
    """How a served model behaves on one kind of hardware."""

    name: str
    description: str
    kv_cache_tokens: int
    """Tokens of KV cache the engine can hold (all sequences together)."""
    max_num_seqs: int
    """vLLM's default for this card; `--max-num-seqs` overrides it."""
    max_num_batched_tokens: int
    """Token budget of one engine step (chunked prefill)."""
    max_model_len: int
    step_overhead_s: float
    """Fixed cost of one engine step: a batch-1 decode step."""
    decode_per_seq_s: float
    """Added step time per sequence decoding in the batch."""
    prefill_per_token_s: float
    """Step time per prompt token prefilled."""
    attention_per_context_token_s: float
    """Step time per token of context read by the decoding sequences."""
    block_size: int = 16

    @property
    def token_interval_s(self) -> float:
        """Modelled time between two tokens of a sequence decoding alone (short context): the shortest there is."""
        return self.step_overhead_s + self.decode_per_seq_s


def planned_kv_tokens(gpu: str, weights: str) -> int:
    """KV-cache tokens the capacity planner gives Qwen3-Coder-30B-A3B on one `gpu` with `weights` (bf16, fp8, awq),
    BF16 KV cache and gpu-memory-utilization 0.92."""
    return plan_capacity(find_gpu(gpu), weights=weights).kv_tokens


BUILTIN: dict[str, Profile] = {
    "h100-fp8": Profile(
        name="h100-fp8",
        description="H100 80 GB, FP8 weights (~31 GB), BF16 KV cache, gpu-memory-utilization 0.92",
        kv_cache_tokens=planned_kv_tokens("h100", "fp8"),  # ~458k
        max_num_seqs=1024,
        max_num_batched_tokens=8192,
        max_model_len=262_144,
        # ~180 tok/s for one stream (3.3B active params, FP8): 5.5 ms a step
        step_overhead_s=0.0055,
        decode_per_seq_s=0.00035,
        # ~25k prompt tok/s when prefill-bound
        prefill_per_token_s=1 / 25_000,
        attention_per_context_token_s=2e-9,
    ),
    "rtx4090-awq": Profile(
        name="rtx4090-awq",
        description="RTX 4090 24 GB, AWQ 4-bit weights (~17 GB), BF16 KV cache, gpu-memory-utilization 0.92",
        kv_cache_tokens=planned_kv_tokens("rtx4090", "awq"),  # ~41k
        max_num_seqs=256,
        max_num_batched_tokens=2048,
        max_model_len=32_768,
        # ~120 tok/s for one stream
        step_overhead_s=0.0083,
        decode_per_seq_s=0.0008,
        prefill_per_token_s=1 / 7_000,
        attention_per_context_token_s=6e-9,
    ),
    "instant": Profile(
        name="instant",
        description="No modelled latency: for tests and for measuring the orchestrator's own overhead",
        kv_cache_tokens=4_000_000,
        max_num_seqs=1024,
        max_num_batched_tokens=1_000_000,
        max_model_len=262_144,
        step_overhead_s=0.0,
        decode_per_seq_s=0.0,
        prefill_per_token_s=0.0,
        attention_per_context_token_s=0.0,
    ),
    "h100-bf16": Profile(
        name="h100-bf16",
        description="H100 80 GB, BF16 weights (~61 GB), BF16 KV cache, gpu-memory-utilization 0.92",
        kv_cache_tokens=planned_kv_tokens("h100", "bf16"),  # ~152k: seven 32k contexts do not fit
        max_num_seqs=1024,
        max_num_batched_tokens=8192,
        max_model_len=262_144,
        # Twice the weight bytes read per decode step as FP8 (3.3B active x 2 bytes): ~140 tok/s for one stream
        step_overhead_s=0.007,
        decode_per_seq_s=0.0004,
        # BF16 GEMMs run at about half FP8's rate on Hopper; MoE prefill is not purely compute-bound
        prefill_per_token_s=1 / 18_000,
        attention_per_context_token_s=2e-9,
    ),
}


def load_profile(name_or_file: str, **overrides: int | float | None) -> Profile:
    """A built-in profile by name, or one read from a TOML file; overrides set on top.

    Raises `SettingsError` naming the known profiles when the name is unknown.
    """
    if name_or_file in BUILTIN:
        profile = BUILTIN[name_or_file]
    elif name_or_file.endswith(".toml") and Path(name_or_file).is_file():
        data = tomllib.loads(Path(name_or_file).read_text(encoding="utf-8"))
        known = {f.name for f in fields(Profile)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"profile file {name_or_file}: unknown keys {', '.join(unknown)}")
        data.setdefault("name", Path(name_or_file).stem)
        data.setdefault("description", f"from {name_or_file}")
        try:
            profile = Profile(**data)
        except TypeError as exc:
            raise SettingsError(f"profile file {name_or_file}: {exc}") from None
    else:
        raise SettingsError(f"unknown profile {name_or_file!r} (known: {', '.join(BUILTIN)}, or a .toml file)")
    changes: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    return replace(profile, **changes)
