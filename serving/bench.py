"""`sevenfold bench`: a serving benchmark with `vllm bench serve`'s definitions, against any OpenAI-compatible server.

For each concurrency level, `num_prompts` streaming chat requests are sent with
at most that many in flight (like `vllm bench serve --max-concurrency`). Prompts
are distinct random words (so the prefix cache does not flatter the numbers), of
about `input_len` tokens. `ignore_eos` and `min_tokens` (vLLM sampling extras)
make every reply `output_len` tokens long; a server that refuses them (HTTP 400)
is asked again without, and the lengths are then the model's own.

Per request: TTFT (first content token), ITL (gaps between content chunks),
TPOT ((end-to-end - TTFT) / (output tokens - 1)) and end-to-end latency. Per
level: request, output-token and total-token throughput over the level's wall
time; mean, median and p99 of each latency; scaling efficiency =
throughput(c) / (c x throughput(1)).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from sevenfold.errors import SevenfoldError

_WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "merge",
    "branch",
    "commit",
    "review",
    "worker",
    "planner",
    "verify",
    "token",
    "slot",
    "cache",
]


@dataclass
class RequestResult:
    ok: bool
    ttft_s: float = 0.0
    e2e_s: float = 0.0
    itl_s: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    output_tokens: int = 0
    error: str = ""


@dataclass
class LevelResult:
    """One concurrency level's figures (latencies in milliseconds)."""

    concurrency: int
    completed: int
    failed: int
    duration_s: float
    request_throughput: float
    output_throughput: float
    total_token_throughput: float
    ttft_ms: dict[str, float]
    tpot_ms: dict[str, float]
    itl_ms: dict[str, float]
    e2el_ms: dict[str, float]
    scaling_efficiency: float | None = None


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "median": 0.0, "p99": 0.0}
    ordered = sorted(v * 1000 for v in values)
    rank = max(0, min(len(ordered) - 1, round(0.99 * (len(ordered) - 1))))
    return {
        "mean": round(statistics.fmean(ordered), 3),
        "median": round(statistics.median(ordered), 3),
        "p99": round(ordered[rank], 3),
    }


def summarize(concurrency: int, results: list[RequestResult], duration_s: float) -> LevelResult:
    """A level's figures from its requests (the definitions of vLLM's benchmarks/serve.py)."""
    done = [r for r in results if r.ok]
    output = sum(r.output_tokens for r in done)
    prompt = sum(r.prompt_tokens for r in done)
    tpot = [(r.e2e_s - r.ttft_s) / (r.output_tokens - 1) for r in done if r.output_tokens > 1]
    return LevelResult(
        concurrency=concurrency,
        completed=len(done),
        failed=len(results) - len(done),
        duration_s=round(duration_s, 3),
        request_throughput=round(len(done) / duration_s, 3) if duration_s else 0.0,
        output_throughput=round(output / duration_s, 2) if duration_s else 0.0,
        total_token_throughput=round((output + prompt) / duration_s, 2) if duration_s else 0.0,
        ttft_ms=_stats([r.ttft_s for r in done]),
        tpot_ms=_stats(tpot),
        itl_ms=_stats([gap for r in done for gap in r.itl_s]),
        e2el_ms=_stats([r.e2e_s for r in done]),
    )


def make_prompts(count: int, input_len: int, seed: int) -> list[str]:
    """Distinct prompts of about `input_len` tokens (a word and its space are about one token)."""
    rng = random.Random(seed)
    return [f"Request {i}: " + " ".join(rng.choice(_WORDS) for _ in range(max(1, input_len - 4))) for i in range(count)]


class Bench:
    """A client for one server and model."""

    def __init__(self, base_url: str, model: str | None, api_key: str = "EMPTY", timeout_s: float = 600) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=5)
        self.force_lengths = True

    async def check(self, session: aiohttp.ClientSession) -> str:
        """The model to use; `SevenfoldError` in one line if the server is unreachable or does not serve it."""
        try:
            async with session.get(f"{self.base_url}/models", headers=self.headers) as response:
                served = [m["id"] for m in (await response.json()).get("data", [])]
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SevenfoldError(f"no model server at {self.base_url} ({type(exc).__name__})") from None
        model = self.model or (served[0] if served else "")
        if model not in served:
            raise SevenfoldError(f"{self.base_url} does not serve {model!r} (it serves: {', '.join(served)})")
        return model

    async def one(self, session: aiohttp.ClientSession, model: str, prompt: str, output_len: int) -> RequestResult:
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": output_len,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.force_lengths:
            body |= {"ignore_eos": True, "min_tokens": output_len}
        started = time.perf_counter()
        result = RequestResult(ok=False)
        last = 0.0
        try:
            async with session.post(f"{self.base_url}/chat/completions", json=body, headers=self.headers) as response:
                if response.status == 400 and self.force_lengths:
                    self.force_lengths = False  # not vLLM: the model's own lengths from now on
                    return await self.one(session, model, prompt, output_len)
                if response.status != 200:
                    return RequestResult(ok=False, error=f"HTTP {response.status}")
                async for raw in response.content:
                    line = raw.decode().strip()
                    if not line.startswith("data:") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[5:])
                    if chunk.get("usage"):
                        result.prompt_tokens = chunk["usage"].get("prompt_tokens", 0)
                        result.output_tokens = chunk["usage"].get("completion_tokens", 0)
                    choices = chunk.get("choices") or [{}]
                    if (choices[0].get("delta") or {}).get("content"):
                        now = time.perf_counter() - started
                        if result.ttft_s == 0.0:
                            result.ttft_s = now
                        else:
                            result.itl_s.append(now - last)
                        last = now
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return RequestResult(ok=False, error=type(exc).__name__)
        result.e2e_s = time.perf_counter() - started
        result.ok = result.ttft_s > 0
        return result

    async def level(
        self, session: aiohttp.ClientSession, model: str, concurrency: int, prompts: list[str], output_len: int
    ) -> LevelResult:
        """All prompts with at most `concurrency` in flight."""
        gate = asyncio.Semaphore(concurrency)

        async def send(prompt: str) -> RequestResult:
            async with gate:
                return await self.one(session, model, prompt, output_len)

        started = time.perf_counter()
        results = await asyncio.gather(*(send(p) for p in prompts))
        return summarize(concurrency, list(results), time.perf_counter() - started)


async def run_bench(
    base_url: str,
    concurrencies: list[int],
    model: str | None = None,
    api_key: str = "EMPTY",
    input_len: int = 512,
    output_len: int = 128,
    num_prompts: int = 32,
    seed: int = 0,
) -> dict[str, Any]:
    """Every level's figures, plus what was measured against (for --json)."""
    bench = Bench(base_url, model, api_key)
    connector = aiohttp.TCPConnector(limit=max(concurrencies) + 4)
    async with aiohttp.ClientSession(connector=connector, timeout=bench.timeout) as session:
        served = await bench.check(session)
        levels = []
        for index, concurrency in enumerate(concurrencies):
            prompts = make_prompts(num_prompts, input_len, seed + index * 7919)
            levels.append(await bench.level(session, served, concurrency, prompts, output_len))
    base = next((lv for lv in levels if lv.concurrency == 1), None)
    for lv in levels:
        if base and base.request_throughput:
            lv.scaling_efficiency = round(lv.request_throughput / (lv.concurrency * base.request_throughput), 3)
    return {
        "base_url": base_url,
        "model": served,
        "input_len": input_len,
        "output_len": output_len,
        "num_prompts": num_prompts,
        "lengths_forced": bench.force_lengths,
        "levels": [asdict(lv) for lv in levels],
    }


def parse_concurrency(text: str) -> list[int]:
    """'1,2,4,8' -> [1, 2, 4, 8]; `SevenfoldError` for anything else."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SevenfoldError(f"--concurrency must be positive integers separated by commas (got {text!r})") from None
    if not values or min(values) < 1:
        raise SevenfoldError(f"--concurrency must be positive integers separated by commas (got {text!r})")
    return values


def plot(report: dict[str, Any], path: str) -> None:
    """A PNG of output throughput and median ITL against concurrency."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SevenfoldError("--plot needs matplotlib: pip install 'sevenfold[bench]'") from None
    levels = report["levels"]
    xs = [lv["concurrency"] for lv in levels]
    figure, left = plt.subplots(figsize=(7, 4))
    left.plot(xs, [lv["output_throughput"] for lv in levels], "o-", color="tab:blue")
    left.set_xlabel("requests in flight")
    left.set_ylabel("output tokens/s", color="tab:blue")
    right = left.twinx()
    right.plot(xs, [lv["itl_ms"]["median"] for lv in levels], "s--", color="tab:red")
    right.set_ylabel("median ITL (ms)", color="tab:red")
    left.set_title(f"{report['model']} at {report['base_url']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
