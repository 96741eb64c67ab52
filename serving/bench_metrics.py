"""The figures of `sevenfold bench`, with the definitions of vLLM's `vllm bench serve`.

Checked against vLLM's `vllm/benchmarks/serve.py` (`calculate_metrics`) and
`vllm/benchmarks/lib/endpoint_request_func.py`:

- TTFT: from sending the request to the first token chunk.
- ITL: every gap between successive token chunks, pooled over all requests
  (a chunk that carries several tokens is one gap, as in vLLM).
- TPOT: (end-to-end - TTFT) / (output tokens - 1), per request with more than
  one output token; the first token is excluded.
- End-to-end latency: from sending to the last chunk with a choice (the usage
  chunk and `[DONE]` do not count).
- Output tokens: `usage.completion_tokens` of the final chunk.
- Throughputs: completed requests, output tokens, and prompt + output tokens,
  each divided by the level's wall time (first request sent to last finished).
- Mean, median and p99 in milliseconds; percentiles interpolate linearly
  between ranks, as `numpy.percentile` does.

One difference, on purpose: vLLM counts the first chunk with a choice as the
first token. vLLM's server sends its role-only chunk with the first token, but
other servers (and `sevenfold sim`) send it at once, so here only a chunk with
text (content or reasoning) counts as a token chunk.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RequestResult:
    """One streamed request's timings in seconds (see the module docstring for what each means)."""

    ok: bool
    ttft_s: float = 0.0
    e2e_s: float = 0.0
    itl_s: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    output_tokens: int = 0
    error: str = ""


@dataclass
class LatencyStats:
    """Mean, median and 99th percentile of one latency, in milliseconds."""

    mean: float
    median: float
    p99: float


@dataclass
class LevelResult:
    """One concurrency level's figures."""

    concurrency: int
    completed: int
    failed: int
    duration_s: float
    total_input_tokens: int
    total_output_tokens: int
    request_throughput: float
    """Completed requests per second."""
    output_throughput: float
    """Output tokens per second."""
    total_token_throughput: float
    """Prompt plus output tokens per second."""
    ttft_ms: LatencyStats
    tpot_ms: LatencyStats
    itl_ms: LatencyStats
    e2el_ms: LatencyStats
    scaling_efficiency: float | None = None
    """Output throughput here / (concurrency x output throughput at concurrency 1); None without a level 1."""
    first_error: str = ""


@dataclass
class BenchReport:
    """A whole run: what was measured against, and every level's figures."""

    base_url: str
    model: str
    server: str
    """What the server's /version said (vLLM's version, or sevenfold-sim)."""
    input_len: int
    output_len: int
    num_prompts: int
    seed: int
    lengths_forced: bool
    """The server took `ignore_eos`/`min_tokens`, so every reply is `output_len` tokens."""
    levels: list[LevelResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Every figure as plain JSON data."""
        return asdict(self)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile, interpolating linearly between ranks (numpy's default); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_stats(seconds: list[float]) -> LatencyStats:
    """Mean, median and p99 of latencies given in seconds, in milliseconds (zeros for none, as vLLM)."""
    if not seconds:
        return LatencyStats(0.0, 0.0, 0.0)
    return LatencyStats(
        mean=statistics.fmean(seconds) * 1000,
        median=statistics.median(seconds) * 1000,
        p99=percentile(seconds, 99) * 1000,
    )


def summarize(concurrency: int, results: list[RequestResult], duration_s: float) -> LevelResult:
    """A level's figures from its requests and its wall time."""
    done = [r for r in results if r.ok]
    output = sum(r.output_tokens for r in done)
    prompt = sum(r.prompt_tokens for r in done)
    per_s = 1 / duration_s if duration_s > 0 else 0.0
    return LevelResult(
        concurrency=concurrency,
        completed=len(done),
        failed=len(results) - len(done),
        duration_s=duration_s,
        total_input_tokens=prompt,
        total_output_tokens=output,
        request_throughput=len(done) * per_s,
        output_throughput=output * per_s,
        total_token_throughput=(prompt + output) * per_s,
        ttft_ms=latency_stats([r.ttft_s for r in done]),
        tpot_ms=latency_stats([(r.e2e_s - r.ttft_s) / (r.output_tokens - 1) for r in done if r.output_tokens > 1]),
        itl_ms=latency_stats([gap for r in done for gap in r.itl_s]),
        e2el_ms=latency_stats([r.e2e_s for r in done]),
        first_error=next((r.error for r in results if not r.ok), ""),
    )


def set_scaling_efficiency(levels: list[LevelResult]) -> None:
    """Fill in each level's scaling efficiency against concurrency 1 (left None if there is no level 1)."""
    base = next((lv for lv in levels if lv.concurrency == 1), None)
    if base is None or base.output_throughput <= 0:
        return
    for lv in levels:
        lv.scaling_efficiency = lv.output_throughput / (lv.concurrency * base.output_throughput)
