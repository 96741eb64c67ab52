"""Hardware profiles: the numbers the simulated engine runs on.

Each figure is an estimate for Qwen3-Coder-30B-A3B-Instruct (48 layers, 4 KV
heads, head_dim 128, 3.3B active parameters) on one card, made from the
architecture and from public reports of vLLM throughput for Qwen3-30B-A3B-class
MoE models; none was measured here (there is no GPU here). They set the shape of
the behaviour (how batching, prefill and the KV budget trade off), not a promise
of any real card's speed. Use `sevenfold bench` against a real server to get
real figures, and pass them back with --profile FILE.

KV capacity follows DESIGN section 5: bytes per token = 2 x 48 x 4 x 128 x
(2 bytes BF16 | 1 byte FP8) = 96 KiB | 48 KiB; tokens = (memory x
gpu_memory_utilization - weights - activation/graph overhead) / bytes per token.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from sevenfold.errors import SettingsError
from sevenfold.serving.capacity import QWEN3_CODER_30B_A3B
from sevenfold.serving.hardware import GIB

KV_BYTES_BF16 = QWEN3_CODER_30B_A3B.kv_bytes_per_token()
"""96 KiB a token: one GPU's BF16 KV cache for Qwen3-Coder-30B-A3B (the same spec the capacity planner uses)."""


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


def _kv_tokens(card_gib: float, utilization: float, weights_gib: float, overhead_gib: float, kv_bytes: int) -> int:
    return int((card_gib * utilization - weights_gib - overhead_gib) * GIB / kv_bytes)


BUILTIN: dict[str, Profile] = {
    "h100-fp8": Profile(
        name="h100-fp8",
        description="H100 80 GB, FP8 weights (~31 GB), BF16 KV cache, gpu-memory-utilization 0.92",
        # 80 x 0.92 - 31 weights - 4 overhead = 38.6 GiB / 96 KiB per token
        kv_cache_tokens=_kv_tokens(80, 0.92, 31, 4, KV_BYTES_BF16),
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
        # 24 x 0.92 - 17 weights - 1.5 overhead = 3.58 GiB / 96 KiB per token (~39k tokens)
        kv_cache_tokens=_kv_tokens(24, 0.92, 17, 1.5, KV_BYTES_BF16),
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
