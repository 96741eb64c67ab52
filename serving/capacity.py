"""What fits on a GPU: weights, KV cache per token, tokens that fit, and what that means for the slots.

KV cache per token = 2 (K and V) x layers x KV heads x head_dim x bytes per
value (DESIGN section 5). For Qwen3-Coder-30B-A3B-Instruct: 2 x 48 x 4 x 128 x 2
= 98,304 bytes (96 KiB) in BF16, 48 KiB in FP8.

Memory for the KV cache = GPUs x memory x gpu_memory_utilization - weights -
an overhead allowance per GPU for what vLLM needs besides weights and KV cache
(activations at the prefill budget, CUDA graphs, the CUDA context, NCCL buffers
with tensor parallelism). The allowance, `OVERHEAD_PER_GPU`, is an estimate:
vLLM measures the real figure at start-up and logs "Available KV cache memory";
trust that over this planner.

With tensor parallelism each GPU holds 1/N of the weights and of the KV heads;
past N = KV heads (4 here) vLLM replicates KV heads, so the KV cache per token
summed over the GPUs grows (twice the formula at N = 8). N must divide the
attention heads, or vLLM refuses to start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sevenfold.errors import SevenfoldError
from sevenfold.qwen3_coder import MODEL_NAME
from sevenfold.serving.hardware import GIB, Gpu

KvDtype = Literal["auto", "fp8"]

OVERHEAD_PER_GPU = int(2.5 * GIB)
"""Besides weights and KV cache, per GPU: the CUDA context and PyTorch allocator slack (~0.5-1 GiB), the
activation peak of an 8,192-token prefill step through the MoE layers (~0.5 GiB), CUDA graphs for the decode
batch sizes (~0.5-1 GiB) and NCCL buffers under tensor parallelism. An estimate, stated in every plan."""
OVERHEAD_WHAT = "per GPU: CUDA context, activations of an 8k-token prefill, CUDA graphs, NCCL"


@dataclass(frozen=True)
class ModelSpec:
    """What the planner needs to know about a model."""

    name: str
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    max_context: int
    weight_bytes: dict[str, int]
    """Bytes of weights by format (bf16, fp8, awq); a format that is missing cannot be planned."""
    weights_estimated: bool = False
    """True when `weight_bytes` comes from the parameter count in a config.json, not from checkpoint sizes."""

    def kv_bytes_per_token(self, kv_dtype: KvDtype = "auto", tensor_parallel: int = 1) -> int:
        """2 (K and V) x layers x KV heads x head_dim x bytes per value (2 for BF16, 1 for FP8), summed over the
        GPUs: beyond `kv_heads` GPUs each one still holds a whole KV head (vLLM replicates them)."""
        heads = max(self.kv_heads, tensor_parallel)
        return 2 * self.layers * heads * self.head_dim * (1 if kv_dtype == "fp8" else 2)


QWEN3_CODER_30B_A3B = ModelSpec(
    name=MODEL_NAME,
    layers=48,
    attention_heads=32,
    kv_heads=4,
    head_dim=128,
    max_context=262_144,
    # 30.5B parameters: BF16 2 bytes each (~61 GB, the size of the official safetensors); the official FP8
    # checkpoint ~31 GB (1 byte each plus block scales, embeddings, LM head and routers kept in BF16); 4-bit AWQ
    # ~17 GB (0.5 bytes each, plus group-128 scales and zeros, and the ~1.2 GB of BF16 embeddings and LM head).
    weight_bytes={"bf16": 61_000_000_000, "fp8": 31_000_000_000, "awq": 17_000_000_000},
)


def load_model_config(path: Path, weights_gb: dict[str, float] | None = None) -> ModelSpec:
    """A model's spec from its Hugging Face `config.json` (offline).

    Weights are estimated from the parameter count when the config does not give
    them: `num_parameters` if present, else from the layer shapes (attention,
    MLP or experts, embeddings), and the spec says so (`weights_estimated`);
    pass `weights_gb` (GB by format) to use measured sizes. A multimodal
    config's `text_config` is used when the top level has no layers.
    """
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        if "num_hidden_layers" not in config and isinstance(config.get("text_config"), dict):
            config = config["text_config"]
        layers = int(config["num_hidden_layers"])
        heads = int(config["num_attention_heads"])
        kv_heads = int(config.get("num_key_value_heads") or heads)
        hidden = int(config["hidden_size"])
        head_dim = int(config.get("head_dim") or hidden // heads)
        max_context = int(config.get("max_position_embeddings", 32_768))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SevenfoldError(f"--model-config {path}: not a readable model config.json ({exc})") from None
    if weights_gb:
        weight_bytes = {k: int(v * 1e9) for k, v in weights_gb.items()}
    else:
        params = int(config.get("num_parameters") or _estimate_parameters(config, layers, heads, kv_heads, head_dim))
        weight_bytes = {"bf16": 2 * params, "fp8": params + params // 30, "awq": params // 2 + params // 16}
    name = str(config.get("_name_or_path") or path.parent.name)
    return ModelSpec(name, layers, heads, kv_heads, head_dim, max_context, weight_bytes, not weights_gb)


def _estimate_parameters(config: dict[str, Any], layers: int, heads: int, kv_heads: int, head_dim: int) -> int:
    hidden = int(config["hidden_size"])
    attention = hidden * head_dim * (heads * 2 + kv_heads * 2)
    experts = int(config.get("num_experts") or config.get("n_routed_experts") or 0)
    if experts:
        mlp = experts * 3 * hidden * int(config.get("moe_intermediate_size") or config["intermediate_size"])
    else:
        mlp = 3 * hidden * int(config["intermediate_size"])
    embeddings = int(config.get("vocab_size", 0)) * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return layers * (attention + mlp) + embeddings


@dataclass(frozen=True)
class CapacityPlan:
    """What fits, for one model on some GPUs, at a number of slots and a context length."""

    model: ModelSpec
    gpu: Gpu
    count: int
    weights: str
    kv_dtype: KvDtype
    slots: int
    context: int
    gpu_memory_utilization: float
    usable_bytes: int
    weight_bytes: int
    overhead_bytes: int
    kv_bytes_per_token: int
    kv_tokens: int
    """Tokens of KV cache that fit (0 when the weights do not)."""

    @property
    def weight_bytes_per_gpu(self) -> int:
        """Each GPU holds 1/count of the weights (tensor parallelism)."""
        return self.weight_bytes // self.count

    @property
    def kv_bytes(self) -> int:
        return max(0, self.usable_bytes - self.weight_bytes - self.overhead_bytes)

    @property
    def needed_tokens(self) -> int:
        return self.slots * self.context

    @property
    def weights_fit(self) -> bool:
        return self.kv_tokens > 0

    @property
    def fits(self) -> bool:
        return self.weights_fit and self.kv_tokens >= self.needed_tokens

    @property
    def max_context_per_slot(self) -> int:
        """The longest context each of `slots` sequences can have at once (capped at the model's maximum)."""
        return min(self.kv_tokens // self.slots, self.model.max_context)

    @property
    def max_slots_at_context(self) -> int:
        """How many sequences of `context` tokens fit at once."""
        return self.kv_tokens // self.context

    def verdict(self) -> str:
        """One plain sentence: fits, or what does."""
        where = f"{self.count}x {self.gpu.name} with {self.weights} weights"
        if not self.weights_fit:
            return (
                f"does not fit: on {where}, the weights ({self.weight_bytes / GIB:.1f} GiB) and the overhead "
                f"allowance leave no room for a KV cache in {self.usable_bytes / GIB:.1f} GiB"
            )
        need = self.needed_tokens * self.kv_bytes_per_token / GIB
        if self.fits:
            return (
                f"fits: {self.slots} slots x {self.context:,} tokens need {need:.1f} GiB of KV cache; "
                f"{self.kv_bytes / GIB:.1f} GiB is free on {where} ({slots_text(self.max_slots_at_context)} at this context)"
            )
        return (
            f"does not fit as asked: {self.slots} slots x {self.context:,} tokens need {need:.1f} GiB of KV cache, "
            f"{self.kv_bytes / GIB:.1f} GiB is free on {where}; at {self.slots} slots the longest context is "
            f"{self.max_context_per_slot:,} tokens, and at {self.context:,} tokens "
            f"{slots_text(self.max_slots_at_context, 'fit')}"
        )


def slots_text(n: int, verb: str = "") -> str:
    """`3 slots`, `1 slot`; with a verb, `3 slots fit`, `1 slot fits`."""
    text = "1 slot" if n == 1 else f"{n} slots"
    return f"{text} {verb}{'s' if n == 1 else ''}" if verb else text


def default_weights(
    gpu: Gpu, count: int = 1, gpu_memory_utilization: float = 0.92, model: ModelSpec | None = None
) -> str:
    """FP8 on GPUs with native FP8 (Ada, Hopper) when FP8 weights fit at all, else 4-bit AWQ."""
    model = model or QWEN3_CODER_30B_A3B
    room = count * (gpu.memory_bytes * gpu_memory_utilization - OVERHEAD_PER_GPU)
    return "fp8" if gpu.fp8 and model.weight_bytes.get("fp8", room) < room else "awq"


def plan_capacity(
    gpu: Gpu,
    count: int = 1,
    weights: str | None = None,
    kv_dtype: KvDtype = "auto",
    slots: int = 7,
    context: int = 32_768,
    gpu_memory_utilization: float = 0.92,
    model: ModelSpec = QWEN3_CODER_30B_A3B,
) -> CapacityPlan:
    """The capacity of `count` GPUs for `model`; `SevenfoldError` for inputs that make no sense.

    `weights` defaults to `default_weights(...)`.
    """
    weights = weights or default_weights(gpu, max(count, 1), gpu_memory_utilization, model)
    if count < 1 or slots < 1 or context < 1:
        raise SevenfoldError("--count, --slots and --context must be at least 1")
    if context > model.max_context:
        raise SevenfoldError(f"--context {context:,} is longer than {model.name}'s maximum of {model.max_context:,}")
    if not 0.1 <= gpu_memory_utilization <= 1.0:
        raise SevenfoldError("--gpu-memory-utilization must be between 0.1 and 1.0")
    if weights not in model.weight_bytes:
        raise SevenfoldError(f"--weights {weights}: known for this model: {', '.join(model.weight_bytes)}")
    if model.attention_heads % count:
        ok = ", ".join(str(n) for n in range(1, 9) if model.attention_heads % n == 0)
        raise SevenfoldError(
            f"--count {count}: tensor parallelism needs a GPU count that divides the model's "
            f"{model.attention_heads} attention heads ({ok}, ...)"
        )
    if weights == "fp8" and not gpu.fp8:
        raise SevenfoldError(f"--weights fp8 needs an Ada or Hopper GPU; {gpu.name} is {gpu.architecture} (use awq)")
    if kv_dtype == "fp8" and not gpu.fp8:
        raise SevenfoldError(f"--kv-cache-dtype fp8 needs an Ada or Hopper GPU; {gpu.name} is {gpu.architecture}")
    usable = int(count * gpu.memory_bytes * gpu_memory_utilization)
    overhead = count * OVERHEAD_PER_GPU
    per_token = model.kv_bytes_per_token(kv_dtype, count)
    weight_bytes = model.weight_bytes[weights]
    tokens = max(0, (usable - weight_bytes - overhead) // per_token)
    return CapacityPlan(
        model, gpu, count, weights, kv_dtype, slots, context, gpu_memory_utilization,
        usable, weight_bytes, overhead, per_token, tokens,
    )  # fmt: skip
