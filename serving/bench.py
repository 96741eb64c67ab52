"""`sevenfold bench`: load at fixed concurrency against an OpenAI-compatible server, measured like `vllm bench serve`.

For each concurrency level, `num_prompts` streaming requests are sent with at
most that many in flight (`vllm bench serve --max-concurrency`): chat
completions (`backend="chat"`, the default) or, as `vllm bench serve`'s default
`openai` backend does, completions (`backend="completions"`: `/v1/completions`
with the prompt as raw text, no chat template). Prompts are
random words from a seeded generator, about `input_len` tokens each, and no two
are alike, not even across levels: each starts with its own serial number, so
the prefix cache cannot serve one request's prompt from another's and make the
figures look better than a real workload's. `max_tokens`, `ignore_eos` and
`min_tokens` (vLLM sampling extras) make every reply `output_len` tokens long.

Before the levels one test request, with a prompt of its own, checks the whole
path (as `vllm bench serve` does). If the server refuses the extras with HTTP
400 the run goes on without them and the report says the lengths were not
forced. The figures and their definitions are in `bench_metrics`.

When `/version` says the server is `sevenfold sim`, figures are reported in its
modelled time (wall-clock times x its time scale, rates / it), and the run is
refused before any load if the simulator cannot stream tokens at their modelled
intervals at that scale: the shortest modelled interval between two tokens,
divided by the time scale, must be at least the simulator's pacing floor
(`sevenfold.sim.clock.PACING_FLOOR_S`, measured by `bench/sim_pacing.py`).
Below it tokens leave in bursts and ITL measures the event loop, not the model.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import aiohttp

from sevenfold.errors import ModelNotServedError, ServerError, ServerUnreachableError, SettingsError
from sevenfold.serving.bench_metrics import BenchReport, LevelResult, RequestResult, set_scaling_efficiency, summarize
from sevenfold.serving.bench_sim import SimulatorInfo, check_pacing

# Short common words: one token each for a BPE tokenizer like Qwen's, and for the simulator's.
_WORD_TEXT = (
    "the of and to in is it that for on with as was at by be this from or have not are but had "
    "which one you were all we can her has there been if more when will would who so no out up "
    "into do than time only new some could these two may then first any like now my such make "
    "over our even most me state after also made many did must before back see thing way where"
)
_WORDS = _WORD_TEXT.split()
_TEMPLATE_TOKENS = 8  # the chat template's own tokens around one user message, about
CONNECT_TIMEOUT_S = 5.0
Backend = Literal["chat", "completions"]
BACKENDS: tuple[Backend, ...] = ("chat", "completions")


def parse_concurrency(text: str) -> list[int]:
    """'1,2,4,8' -> [1, 2, 4, 8] (duplicates dropped); `SettingsError` for anything but positive integers."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise SettingsError(f"--concurrency must be positive integers separated by commas, e.g. 1,2,4,8 (got {text!r})")
    return list(dict.fromkeys(values))


def make_prompts(count: int, input_len: int, rng: random.Random, first_serial: int = 0) -> list[str]:
    """`count` distinct prompts of about `input_len` tokens once the chat template is added."""
    words = max(1, input_len - _TEMPLATE_TOKENS - 2)
    return [f"{first_serial + i}: " + " ".join(rng.choice(_WORDS) for _ in range(words)) for i in range(count)]


class Served(NamedTuple):
    """What the server said about itself before the load."""

    model: str
    """The model to load."""
    version: str
    """What `/version` answered (vLLM's `{"version": ...}`), empty if nothing."""
    simulated: SimulatorInfo | None
    """Set when `/version` carries `sevenfold_sim`: the server is the simulator."""


async def find_model(
    session: aiohttp.ClientSession, base_url: str, model: str | None, headers: dict[str, str]
) -> Served:
    """The model to load (default: the first served) and what /version says.

    Raises `ServerUnreachableError` if nothing answers within the connect
    timeout, `ModelNotServedError` naming the served models if `model` is not
    one of them, `ServerError` if /models is not an OpenAI model list.
    """
    quick = aiohttp.ClientTimeout(total=3 * CONNECT_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    try:
        async with session.get(f"{base_url}/models", headers=headers, timeout=quick) as response:
            if response.status != 200:
                hint = "" if base_url.endswith("/v1") else f"; did you mean {base_url}/v1?"
                raise ServerError(f"{base_url}/models answered HTTP {response.status}{hint}")
            body = await response.json(content_type=None)
        version, simulated = "", None
        async with session.get(f"{base_url.removesuffix('/v1')}/version", timeout=quick) as response:
            if response.status == 200:
                text = await response.text()
                version = text.strip()[:200]
                simulated = SimulatorInfo.from_version(text)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise ServerUnreachableError(
            f"no model server at {base_url} ({type(exc).__name__}); start vLLM or `sevenfold sim`, or fix --base-url"
        ) from None
    except ValueError:
        raise ServerError(f"{base_url}/models did not answer JSON; is this an OpenAI-compatible server?") from None
    cards = body.get("data") if isinstance(body, dict) else None
    served = [str(c.get("id")) for c in cards or [] if isinstance(c, dict)]
    wanted = model or (served[0] if served else "")
    if wanted not in served:
        raise ModelNotServedError(
            f"the server at {base_url} does not serve {wanted!r} (it serves: {', '.join(served) or 'nothing'}); "
            "pass one with --model"
        )
    return Served(wanted, version, simulated)


class LoadGenerator:
    """Streams chat or completion requests to one model and times them."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        model: str,
        headers: dict[str, str],
        output_len: int,
        backend: Backend = "chat",
    ) -> None:
        self.session = session
        self.backend = backend
        self.url = f"{base_url}/chat/completions" if backend == "chat" else f"{base_url}/completions"
        self.model = model
        self.headers = headers
        self.output_len = output_len
        self.force_lengths = True

    def body(self, prompt: str) -> dict[str, Any]:
        """The request for one prompt, with vLLM's length extras while the server takes them."""
        body: dict[str, Any] = {"model": self.model}
        if self.backend == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        body |= {
            "max_tokens": self.output_len,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.force_lengths:
            body |= {"ignore_eos": True, "min_tokens": self.output_len}
        return body

    async def request(self, prompt: str) -> RequestResult:
        """Send one prompt and time its stream; a failure is a result with `ok=False`, never an exception."""
        result = RequestResult(ok=False)
        first = last_token = last_choice = None
        started = time.perf_counter()
        try:
            async with self.session.post(self.url, json=self.body(prompt), headers=self.headers) as response:
                if response.status != 200:
                    result.error = f"HTTP {response.status}: {_error_message(await response.text())}"
                    return result
                async for raw in response.content:
                    line = raw.strip()
                    if not line.startswith(b"data:"):
                        continue  # blank separators and SSE comments
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        break
                    now = time.perf_counter()
                    chunk = json.loads(data)
                    if usage := chunk.get("usage"):
                        result.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                        result.output_tokens = int(usage.get("completion_tokens") or 0)
                    if not chunk.get("choices"):
                        continue
                    last_choice = now
                    if _has_text(chunk["choices"][0]):
                        if first is None:
                            first = now
                        else:
                            result.itl_s.append(now - (last_token or now))
                        last_token = now
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:200]
            return result
        if first is None or last_choice is None:
            result.error = "the stream carried no tokens"
            return result
        result.ok = True
        result.ttft_s = first - started
        result.e2e_s = last_choice - started
        if not result.output_tokens:  # no usage chunk: count chunks, which undercounts if they carry several tokens
            result.output_tokens = len(result.itl_s) + 1
        return result

    async def check(self, prompt: str) -> None:
        """One test request before the levels; drops the length extras if the server refuses them.

        Raises `ServerError` with the server's message if the request fails even without them.
        """
        result = await self.request(prompt)
        if not result.ok and result.error.startswith("HTTP 400"):
            self.force_lengths = False
            result = await self.request(prompt)
        if not result.ok:
            raise ServerError(f"the test request to {self.url} failed: {result.error}")
        if self.force_lengths and result.output_tokens != self.output_len:
            self.force_lengths = False  # the server took the extras but ignored them

    async def level(self, concurrency: int, prompts: list[str], simulated: SimulatorInfo | None = None) -> LevelResult:
        """All prompts with at most `concurrency` in flight; figures over the level's time (modelled if `simulated`)."""
        gate = asyncio.Semaphore(concurrency)

        async def send(prompt: str) -> RequestResult:
            async with gate:
                return await self.request(prompt)

        # The run's garbage collected now rather than inside the level: in a fresh process the first full
        # collection (every object the imports made) took ~90 ms and landed in the second level, adding that to
        # its TTFT (c=4 median 111 ms instead of 22 at scale 1, and x5 at time scale 5).
        gc.collect()
        started = time.perf_counter()
        results = await asyncio.gather(*(send(p) for p in prompts))
        return summarize(concurrency, list(results), time.perf_counter() - started, simulated)


def _has_text(choice: dict[str, Any]) -> bool:
    """Whether a streamed choice carries tokens: chat's delta content or reasoning, or a completion's text."""
    if "text" in choice:
        return bool(choice["text"])
    delta = choice.get("delta") or {}
    return bool(delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning"))


def _error_message(text: str) -> str:
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = text
    return " ".join(str(message).split())[:200]


async def run_bench(
    base_url: str,
    concurrencies: list[int],
    *,
    model: str | None = None,
    api_key: str = "EMPTY",
    input_len: int = 512,
    output_len: int = 128,
    num_prompts: int = 32,
    seed: int = 0,
    on_level: Callable[[LevelResult], None] | None = None,
    refuse_unpaced: bool = True,
    backend: Backend = "chat",
) -> BenchReport:
    """Run every level in order, calling `on_level` as each finishes; `backend` picks the API ("chat" or "completions").

    Against `sevenfold sim` the figures are in its modelled time. Raises
    `ServerUnreachableError`, `ModelNotServedError` or `ServerError` (from
    `find_model`, `check_pacing` unless `refuse_unpaced` is False, and the
    test request) before any level starts.
    """
    base_url = base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"}
    rng = random.Random(seed)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=300)
    connector = aiohttp.TCPConnector(limit=max(concurrencies) + 1)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        served = await find_model(session, base_url, model, headers)
        if served.simulated and refuse_unpaced:
            check_pacing(base_url, served.simulated)
        load = LoadGenerator(session, base_url, served.model, headers, output_len, backend)
        await load.check(make_prompts(1, input_len, rng, first_serial=10**6)[0])
        report = BenchReport(
            base_url,
            served.model,
            served.version,
            input_len,
            output_len,
            num_prompts,
            seed,
            load.force_lengths,
            simulated=served.simulated,
            backend=backend,
        )
        for index, concurrency in enumerate(concurrencies):
            prompts = make_prompts(num_prompts, input_len, rng, first_serial=index * num_prompts)
            report.levels.append(await load.level(concurrency, prompts, served.simulated))
            if on_level:
                on_level(report.levels[-1])
    set_scaling_efficiency(report.levels)
    return report
