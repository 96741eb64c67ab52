"""The Prometheus metrics vLLM exposes at GET /metrics, under the same names.

Each simulator owns its registry, so several can run in one process (tests).
Times are wall-clock seconds as a client sees them; with --time-scale X they
are X times shorter than the modelled hardware's. Two series say so, for
scrapers that would otherwise show them under the model's name:
`sevenfold_sim_info{profile="h100-fp8",time_scale="10"} 1` and
`sevenfold_sim_time_scale 10`. vLLM has neither.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)

# vLLM turns off the `_created` series too; without this every counter doubles in size.
disable_created_metrics()

_LATENCY_BUCKETS = (
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
    40.0,
    80.0,
)
_ITL_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.015,
    0.02,
    0.025,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.2,
    0.4,
    0.8,
    2.0,
)


class EngineMetrics:
    """vLLM's metric families, labelled with the served model name."""

    def __init__(self, model_name: str, time_scale: float, profile: str = "custom") -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        values = (model_name, "0")

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, labels, registry=self.registry)

        def counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, [*labels, *extra], registry=self.registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=self.registry)

        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.").labels(
            *values
        )
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.").labels(*values)
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.").labels(*values)
        self.prefix_queries = counter(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
        ).labels(*values)
        self.prefix_hits = counter(
            "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."
        ).labels(*values)
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.").labels(*values)
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.").labels(
            *values
        )
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemptions from the engine.").labels(
            *values
        )
        self._success = counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            ("finished_reason",),
        )
        self._labels = values
        self.ttft = histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            _LATENCY_BUCKETS,
        ).labels(*values)
        self.itl = histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            _ITL_BUCKETS,
        ).labels(*values)
        self.e2e = histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            _LATENCY_BUCKETS,
        ).labels(*values)
        self.queue_time = histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            _LATENCY_BUCKETS,
        ).labels(*values)
        scale = Gauge(
            "sevenfold_sim_time_scale",
            "Simulator only: modelled seconds per wall second.",
            registry=self.registry,
        )
        scale.set(time_scale)
        Info(
            "sevenfold_sim",
            "Simulator only: the hardware profile it models and its time scale (modelled seconds per wall second).",
            registry=self.registry,
        ).info({"profile": profile, "time_scale": f"{time_scale:g}"})

    def success(self, finished_reason: str) -> None:
        """Count one finished request."""
        self._success.labels(*self._labels, finished_reason).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
