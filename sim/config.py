"""How to run one simulator: the settings `sevenfold sim`'s flags fill in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sevenfold.qwen3_coder import MODEL_NAME
from sevenfold.sim.faults import FaultSpec
from sevenfold.sim.policies import Policy
from sevenfold.sim.profiles import Profile, load_profile


@dataclass
class SimConfig:
    """How to run one simulator."""

    model: str = MODEL_NAME
    profile: Profile = field(default_factory=lambda: load_profile("h100-fp8"))
    max_num_seqs: int | None = None
    """Running-sequence slots; None takes the profile's vLLM default."""
    max_model_len: int | None = None
    time_scale: float = 1.0
    policy: Policy | str = "echo-tools"
    faults: list[FaultSpec] = field(default_factory=list)
    seed: int = 0
    request_log: Path | None = None
    model_kind: Literal["coder", "hybrid"] = "coder"
    """`coder`: no thinking mode (Qwen3-Coder); `hybrid`: honours enable_thinking (Qwen3-30B-A3B)."""
    reasoning_parser: bool = False
    """As vLLM's `--reasoning-parser qwen3`: thinking goes to `reasoning_content`, not `content`."""
    enable_prompt_tokens_details: bool = False
    """As vLLM's `--enable-prompt-tokens-details`: `usage.prompt_tokens_details.cached_tokens` when tokens were cached."""
    scheduling_policy: str = "fcfs"
    """As vLLM's `--scheduling-policy` (fcfs or priority): a non-zero request `priority` is refused under fcfs."""
    gpu_memory_utilization: float = 0.92
    """Only reported (`vllm:cache_config_info`): the built-in profiles' KV capacity already assumes 0.92."""
