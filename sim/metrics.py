"""The Prometheus metrics vLLM exposes at GET /metrics, under the same names, labels and buckets.

Names, help texts and buckets follow vLLM V1's `vllm/v1/metrics/loggers.py` as of
vLLM 0.11 (docs/tool-calls.md, "Simulator conformance"). Each simulator owns its
registry, so several can run in one process (tests). Times are wall-clock
seconds as a client sees them; with --time-scale X they are X times shorter
than the modelled hardware's. Two series say so, for scrapers that would
otherwise show them under the model's name:
`sevenfold_sim_info{profile="h100-fp8",time_scale="10"} 1` and
`sevenfold_sim_time_scale 10`. vLLM has neither.

The engine reports token counts and TTFT/ITL as its steps happen. Like vLLM,
the per-request figures (e2e, queue, prefill, decode and inference time, token
counts, `request_success_total`) are observed once, when a request ends, by
the server (`observe_finished`), from the sequence's timestamps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)

if TYPE_CHECKING:
    from sevenfold.sim.engine import Sequence
    from sevenfold.sim.profiles import Profile

# vLLM turns off the `_created` series too; without this every counter doubles in size.
disable_created_metrics()

_TTFT_BUCKETS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
)
_TTFT_BUCKETS += (40.0, 80.0, 160.0, 640.0, 2560.0)
_ITL_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
_REQUEST_LATENCY_BUCKETS: tuple[float, ...] = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
)
_REQUEST_LATENCY_BUCKETS += (240.0, 480.0, 960.0, 1920.0, 7680.0)
FINISHED_REASONS = ("stop", "length", "abort", "error")
"""vLLM V1's `FinishReason` values, the `finished_reason` label of `vllm:request_success_total`."""


def build_1_2_5_buckets(max_value: int) -> tuple[int, ...]:
    """vLLM's token-count buckets: 1, 2, 5, 10, 20, 50, ... up to `max_value`."""
    buckets: list[int] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return tuple(buckets)
            buckets.append(value)
        exponent += 1


def cudagraph_buckets(max_num_seqs: int) -> tuple[int, ...]:
    """vLLM's default CUDA-graph capture sizes, the buckets of `vllm:iteration_tokens_total`."""
    largest = min(2 * max_num_seqs, 512)
    return tuple(s for s in (1, 2, 4, *range(8, 256, 8), *range(256, 513, 16)) if s <= max(largest, 8))


def cache_config_labels(profile: Profile, gpu_memory_utilization: float) -> dict[str, str]:
    """vLLM's `CacheConfig` fields as `vllm:cache_config_info` labels (its `metrics_info()`: every field as str)."""
    fields: dict[str, object] = {
        "block_size": profile.block_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "swap_space": 4,
        "cache_dtype": "auto",
        "is_attention_free": False,
        "num_gpu_blocks_override": None,
        "sliding_window": None,
        "enable_prefix_caching": True,
        "prefix_caching_hash_algo": "sha256",
        "cpu_offload_gb": 0,
        "calculate_kv_scales": False,
        "cpu_kvcache_space_bytes": None,
        "mamba_page_size_padded": None,
        "mamba_cache_dtype": "auto",
        "mamba_ssm_cache_dtype": "auto",
        "num_gpu_blocks": profile.kv_cache_tokens // profile.block_size,
        "num_cpu_blocks": 0,
        "kv_sharing_fast_prefill": False,
        "kv_cache_memory_bytes": None,
    }
    return {key: str(value) for key, value in fields.items()}


class _StepTokens:
    """The engine's prompt and generation token counters, which also make one `iteration_tokens_total` sample a step.

    vLLM counts a request's whole prompt in the step that produces its first
    token, plus every token generated in that step; the engine increments
    `prompt_tokens` at each first token and `generation_tokens` once at the end
    of every step, so the step's sample is taken then.
    """

    def __init__(self, prompt: Counter, generation: Counter, iteration: Histogram) -> None:
        self._prompt, self._generation, self._iteration = prompt, generation, iteration
        self._pending_prompt = 0.0

    def inc_prompt(self, amount: float = 1) -> None:
        self._prompt.inc(amount)
        self._pending_prompt += amount

    def inc_generation(self, amount: float = 1) -> None:
        self._generation.inc(amount)
        self._iteration.observe(self._pending_prompt + amount)
        self._pending_prompt = 0.0


class _CounterView:
    """A counter as the engine uses it: `inc(amount)`."""

    def __init__(self, inc: Callable[[float], None]) -> None:
        self.inc = inc


class EngineMetrics:
    """vLLM's metric families, labelled with the served model name."""

    def __init__(
        self,
        model_name: str,
        time_scale: float,
        profile: str = "custom",
        *,
        max_model_len: int = 262_144,
        max_num_seqs: int = 1024,
        cache_config: dict[str, str] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        values = (model_name, "0")
        self._labels = values

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, labels, registry=self.registry)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, labels, registry=self.registry).labels(*values)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=self.registry).labels(*values)

        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.").labels(
            *values
        )
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.").labels(*values)
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.").labels(*values)
        self.prefix_queries = counter(
            "vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens."
        )
        self.prefix_hits = counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.")
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemptions from the engine.")
        step = _StepTokens(
            counter("vllm:prompt_tokens", "Number of prefill tokens processed."),
            counter("vllm:generation_tokens", "Number of generation tokens processed."),
            histogram(
                "vllm:iteration_tokens_total",
                "Histogram of number of tokens per engine_step.",
                cudagraph_buckets(max_num_seqs),
            ),
        )
        self.prompt_tokens = _CounterView(step.inc_prompt)
        self.generation_tokens = _CounterView(step.inc_generation)
        success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*labels, "finished_reason"],
            registry=self.registry,
        )
        self._success = {reason: success.labels(*values, reason) for reason in FINISHED_REASONS}
        tokens = build_1_2_5_buckets(max_model_len)
        self.request_prompt_tokens = histogram(
            "vllm:request_prompt_tokens", "Number of prefill tokens processed.", tokens
        )
        self.request_generation_tokens = histogram(
            "vllm:request_generation_tokens", "Number of generation tokens processed.", tokens
        )
        self.request_max_generation_tokens = histogram(
            "vllm:request_max_num_generation_tokens",
            "Histogram of maximum number of requested generation tokens.",
            tokens,
        )
        self.params_n = histogram("vllm:request_params_n", "Histogram of the n request parameter.", (1, 2, 5, 10, 20))
        self.params_max_tokens = histogram(
            "vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", tokens
        )
        self.ttft = histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", _TTFT_BUCKETS
        )
        self.itl = histogram(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", _ITL_BUCKETS
        )

        def latency(name: str, doc: str) -> Histogram:
            return histogram(name, doc, _REQUEST_LATENCY_BUCKETS)

        self.request_e2e = latency("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.")
        self.request_queue = latency(
            "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request."
        )
        self.request_inference = latency(
            "vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request."
        )
        self.request_prefill = latency(
            "vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request."
        )
        self.request_decode = latency(
            "vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request."
        )
        if cache_config:
            Gauge(
                "vllm:cache_config_info",
                "Information of the LLMEngine CacheConfig",
                list(cache_config),
                registry=self.registry,
            ).labels(**cache_config).set(1)
        Gauge(
            "sevenfold_sim_time_scale", "Simulator only: modelled seconds per wall second.", registry=self.registry
        ).set(time_scale)
        Info(
            "sevenfold_sim",
            "Simulator only: the hardware profile it models and its time scale (modelled seconds per wall second).",
            registry=self.registry,
        ).info({"profile": profile, "time_scale": f"{time_scale:g}"})

    def observe_finished(self, seq: Sequence, reason: str, max_tokens: int) -> None:
        """Count one ended sequence under `reason` (stop, length, abort, error) and observe its per-request figures.

        As vLLM: queue = first scheduled - arrival; prefill = first token - scheduled; decode = last token - first
        token; inference = last token - scheduled; e2e = end - arrival. A sequence that never ran is only counted.
        """
        self._success[reason].inc()
        end = seq.finished_at or time.monotonic()
        self.request_e2e.observe(end - seq.arrival)
        self.request_prompt_tokens.observe(seq.prompt_tokens)
        self.request_generation_tokens.observe(seq.generated)
        self.params_max_tokens.observe(max_tokens)
        if seq.scheduled_at is None:
            return
        self.request_queue.observe(seq.scheduled_at - seq.arrival)
        first = seq.first_token_at or seq.scheduled_at
        last = seq.last_token_at or first
        self.request_prefill.observe(first - seq.scheduled_at)
        self.request_decode.observe(last - first)
        self.request_inference.observe(last - seq.scheduled_at)

    def observe_request(self, n: int, longest: int) -> None:
        """One ended request of `n` sequences, the longest of which generated `longest` tokens."""
        self.params_n.observe(n)
        self.request_max_generation_tokens.observe(longest)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
