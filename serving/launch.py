"""A vLLM command line for Qwen3-Coder, tuned for a team of agents, with a reason for every flag.

It never emits a command the capacity planner says does not fit: asking for
more slots x context than the KV cache holds is an error that says what fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sevenfold.errors import SevenfoldError
from sevenfold.qwen3_coder import MODEL_NAME
from sevenfold.serving.capacity import QWEN3_CODER_30B_A3B, CapacityPlan, KvDtype, plan_capacity, slots_text
from sevenfold.serving.hardware import GIB, Gpu

CHECKPOINTS = {
    "bf16": MODEL_NAME,
    "fp8": f"{MODEL_NAME}-FP8",
    # Community-made 4-bit AWQ (Qwen publishes none for this model); swap in the one you trust.
    "awq": "cpatonn/Qwen3-Coder-30B-A3B-Instruct-AWQ-4bit",
}


@dataclass(frozen=True)
class Flag:
    """One `vllm serve` option: its name, its value (None for a switch) and why it is set so."""

    name: str
    value: str | None
    reason: str


@dataclass(frozen=True)
class ServeCommand:
    """The plan a command was built from, and its flags in order."""

    plan: CapacityPlan
    flags: list[Flag]
    checkpoint_reason: str = ""
    """Why these weights (the positional argument of `vllm serve`)."""

    @property
    def checkpoint(self) -> str:
        return CHECKPOINTS[self.plan.weights]

    def argv(self) -> list[str]:
        """`vllm serve CHECKPOINT --flag value ...`, ready for `os.execv` or `shlex.join`."""
        out = ["vllm", "serve", self.checkpoint]
        for flag in self.flags:
            out += [flag.name] if flag.value is None else [flag.name, flag.value]
        return out


def build_serve_command(
    gpu: Gpu,
    count: int = 1,
    slots: int = 7,
    context: int = 32_768,
    weights: str | None = None,
    kv_dtype: KvDtype | None = None,
    gpu_memory_utilization: float = 0.92,
    host: str = "0.0.0.0",
    port: int = 8000,
) -> ServeCommand:
    """The `vllm serve` command for this hardware and goal; `SevenfoldError` if it does not fit.

    Weights, unless given: FP8 on Ada and Hopper, else (or if FP8 leaves too little room) 4-bit AWQ; BF16 only
    when asked for. KV cache in BF16 unless FP8 is needed for the slots to fit (and the GPU has FP8).
    """
    candidates = [weights] if weights else (["fp8", "awq"] if gpu.fp8 else ["awq"])
    for chosen in candidates:
        plan = plan_capacity(gpu, count, chosen, kv_dtype or "auto", slots, context, gpu_memory_utilization)
        if kv_dtype is None and not plan.fits and gpu.fp8 and plan.weights_fit:
            plan = plan_capacity(gpu, count, chosen, "fp8", slots, context, gpu_memory_utilization)  # FP8 KV helps
        if plan.fits:
            break
    if not plan.fits:
        raise SevenfoldError(f"{plan.verdict()}; {_what_would_fit(plan)}")
    model = QWEN3_CODER_30B_A3B
    batched = 8192 if gpu.memory_bytes >= 40 * GIB else 4096
    weights_reason = {
        "fp8": f"{gpu.architecture} runs FP8 natively: half the memory of BF16 for about the same quality",
        "awq": (
            "FP8 weights leave too little KV cache for the slots; 4-bit AWQ frees ~14 GB"
            if gpu.fp8
            else f"{gpu.architecture} has no native FP8; 4-bit AWQ leaves room for the KV cache"
        ),
        "bf16": "BF16 asked for, and the planner says it fits",
    }[plan.weights]
    flags = [
        Flag("--served-model-name", model.name, "clients keep one model name whatever the checkpoint"),
        Flag(
            "--max-model-len",
            str(context),
            f"the context asked for; {plan.kv_bytes / GIB:.1f} GiB of KV cache holds {plan.kv_tokens:,} tokens, "
            f"{slots_text(plan.max_slots_at_context)} at this length",
        ),
        Flag(
            "--max-num-seqs",
            str(slots + 2),
            f"{slots} agents' requests plus 2 spare (a retry whose timed-out request is still being aborted, a "
            "health check or a human) so nobody queues behind the agents; the KV check stays at the slots",
        ),
        Flag("--max-num-batched-tokens", str(batched), "prefill budget per step: agents send long prompts"),
        Flag("--gpu-memory-utilization", str(gpu_memory_utilization), "share of each GPU's memory vLLM may use"),
        Flag("--tensor-parallel-size", str(count), "one shard per GPU (no expert parallelism on one node)"),
        Flag("--enable-prefix-caching", None, "workers share system prompt, tools and repo map: prefill once"),
        Flag(
            "--scheduling-policy",
            "priority",
            "workers send a stable priority (lower first), so if the KV cache fills, preemption always hits the "
            "same worker instead of thrashing all of them; set endpoints.NAME.priority_scheduling = true",
        ),
        Flag("--enable-auto-tool-choice", None, "let the model decide when to call tools"),
        Flag("--tool-call-parser", "qwen3_coder", "Qwen3-Coder's XML tool calls; the wrong parser leaks them as text"),
        Flag("--host", host, "where to listen"),
        Flag("--port", str(port), "sevenfold's default base_url is http://localhost:8000/v1"),
    ]
    if plan.kv_dtype == "fp8":
        flags.insert(2, Flag("--kv-cache-dtype", "fp8", "halves the KV cache per token (48 KiB) so the slots fit"))
    return ServeCommand(plan, flags, weights_reason)


def _what_would_fit(plan: CapacityPlan) -> str:
    context = plan.max_context_per_slot // 1024 * 1024
    tries = [f"--context {context}"] if plan.weights_fit and context >= 1024 else []
    if plan.weights_fit and plan.max_slots_at_context >= 1:
        tries.append(f"--slots {plan.max_slots_at_context}")
    if tries:
        return "try " + " or ".join(tries)
    return "use more or larger GPUs, or smaller weights (--weights awq)"
