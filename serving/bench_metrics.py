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

Against `sevenfold sim` (its `/version` carries a `sevenfold_sim` object) every
figure is in modelled time: the client's wall-clock times multiplied by the
simulator's time scale, rates divided by it, and the report says
"simulated: PROFILE at scale K" wherever it shows them. It also counts the
token gaps shorter than half the profile's shortest interval between tokens:
the model cannot produce them, so they are tokens that arrived in bursts
(a busy machine starved the client or the simulator) and ITL is not the
model's where there are many.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sevenfold.serving.bench_sim import SimulatorInfo


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

    def scaled(self, factor: float) -> RequestResult:
        """This result with every time multiplied by `factor` (wall-clock to modelled time)."""
        return replace(
            self, ttft_s=self.ttft_s * factor, e2e_s=self.e2e_s * factor, itl_s=[g * factor for g in self.itl_s]
        )


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
    """From the first request sent to the last finished (modelled time against the simulator)."""
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
    wall_s: float = 0.0
    """The level's wall-clock time (`duration_s` / the simulator's time scale; the same against a real server)."""
    burst_share: float | None = None
    """Against the simulator: the share of ITL gaps under half its shortest modelled interval (bursts)."""


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
    simulated: SimulatorInfo | None = None
    """Set when the server is `sevenfold sim`: then every figure is in its modelled time."""
    backend: str = "chat"
    """The API driven: "chat" (`/v1/chat/completions`) or "completions" (`/v1/completions`, `vllm bench serve`'s default)."""
    levels: list[LevelResult] = field(default_factory=list)

    @property
    def source(self) -> str:
        """Where the figures come from, for titles: "simulated: PROFILE at scale K (MODEL)" or the model."""
        return f"{self.simulated.label} ({self.model})" if self.simulated else self.model

    def to_json(self) -> dict[str, Any]:
        """Every figure as plain JSON data, with `source` and `time_basis` ("modelled" or "wall") on top."""
        data = asdict(self)
        if self.simulated:
            data["simulated"]["label"] = self.simulated.label
        return {"source": self.source, "time_basis": "modelled" if self.simulated else "wall", **data}


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


def summarize(
    concurrency: int, results: list[RequestResult], duration_s: float, simulated: SimulatorInfo | None = None
) -> LevelResult:
    """A level's figures from its requests and its wall time; in modelled time when the server is `simulated`."""
    wall_s = duration_s
    if simulated:
        results = [r.scaled(simulated.time_scale) for r in results]
        duration_s *= simulated.time_scale
    done = [r for r in results if r.ok]
    gaps = [gap for r in done for gap in r.itl_s]
    burst_share = None
    if simulated and gaps:
        burst_share = sum(gap < simulated.token_interval_s / 2 for gap in gaps) / len(gaps)
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
        itl_ms=latency_stats(gaps),
        e2el_ms=latency_stats([r.e2e_s for r in done]),
        first_error=next((r.error for r in results if not r.ok), ""),
        wall_s=wall_s,
        burst_share=burst_share,
    )


def set_scaling_efficiency(levels: list[LevelResult]) -> None:
    """Fill in each level's scaling efficiency against concurrency 1 (left None if there is no level 1)."""
    base = next((lv for lv in levels if lv.concurrency == 1), None)
    if base is None or base.output_throughput <= 0:
        return
    for lv in levels:
        lv.scaling_efficiency = lv.output_throughput / (lv.concurrency * base.output_throughput)
