"""The simulated engine: vLLM V1's scheduler loop, without a model.

Each step the scheduler gives the running sequences one decode token each and
fills the rest of the step's token budget with prompt chunks (chunked prefill),
admits waiting sequences while fewer than `max_num_seqs` run and their KV
blocks fit, and preempts the most recently admitted sequence when the KV cache
is full (recompute: it goes back to the front of the queue). The step then
takes as long as the profile says such a batch takes, divided by the time scale.
What each sequence "generates" was decided up front by the policy; the engine
only decides when each token comes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field

from sevenfold.sim.clock import StepClock
from sevenfold.sim.kv_cache import BlockTable, KVCache
from sevenfold.sim.metrics import EngineMetrics
from sevenfold.sim.profiles import Profile


@dataclass(eq=False)
class Sequence:
    """One request inside the engine."""

    request_id: str
    prompt_tokens: int
    prompt_hashes: list[int]
    output_tokens: int
    priority: int = 0
    """vLLM's request priority (lower is served first; used by the priority scheduling policy)."""
    arrival: float = field(default_factory=time.monotonic)
    generated: int = 0
    computed: int = 0
    cached_tokens: int = 0
    preemptions: int = 0
    scheduled_at: float | None = None
    first_token_at: float | None = None
    last_token_at: float | None = None
    finished_at: float | None = None
    table: BlockTable = field(default_factory=BlockTable)
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.generated

    @property
    def to_compute(self) -> int:
        return self.total_tokens - self.computed


class Engine:
    """Schedules sequences step by step; `submit` one and await its `progress` events."""

    def __init__(self, profile: Profile, max_num_seqs: int, time_scale: float, metrics: EngineMetrics) -> None:
        self.profile = profile
        self.max_num_seqs = max_num_seqs
        self.time_scale = time_scale
        self.metrics = metrics
        self.kv = KVCache(profile.kv_cache_tokens, profile.block_size)
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.peak_running = 0
        self.steps = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._clock = StepClock()

    def start(self) -> None:
        """Start the step loop on the running event loop."""
        self._clock.start()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="sim-engine")

    async def stop(self) -> None:
        """Stop the step loop."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._clock.close()

    def submit(self, seq: Sequence) -> None:
        """Queue a sequence; it will be scheduled in arrival order."""
        self.waiting.append(seq)
        self.metrics.waiting.set(len(self.waiting))
        self._wake.set()

    def abort(self, seq: Sequence) -> None:
        """Drop a sequence whose client went away, freeing its blocks."""
        if seq.done:
            return
        seq.done = True
        if seq in self.running:
            self.running.remove(seq)
            self.kv.release(seq.table)
        elif seq in self.waiting:
            self.waiting.remove(seq)
        self._publish_gauges()

    async def _loop(self) -> None:
        deadline = time.monotonic()
        while True:
            if not self.running and not self.waiting:
                self._wake.clear()
                await self._wake.wait()
                deadline = time.monotonic()
            batch = self._schedule()
            step_s = self._step_time(batch) / self.time_scale
            # Sleep to an absolute deadline so per-step scheduling jitter does not accumulate, on a clock
            # finer than asyncio's millisecond (sim/clock.py) so each token leaves when the model says.
            deadline = max(deadline + step_s, time.monotonic() - 0.05)
            await self._clock.sleep_until(deadline)
            self._finish_step(batch)

    def _schedule(self) -> list[tuple[Sequence, int]]:
        budget = self.profile.max_num_batched_tokens
        batch: list[tuple[Sequence, int]] = []
        preempted = False
        index = 0
        while index < len(self.running) and budget > 0:
            seq = self.running[index]
            tokens = min(seq.to_compute, budget)
            while not self.kv.allocate(seq.table, seq.computed + tokens):
                victim = self.running.pop()
                self._preempt(victim)
                preempted = True
                if victim is seq:
                    break
            else:
                batch.append((seq, tokens))
                budget -= tokens
                index += 1
                continue
            break
        while self.waiting and not preempted and len(self.running) < self.max_num_seqs and budget > 0:
            seq = self.waiting[0]
            if seq.computed == 0:
                hit = self.kv.match_prefix(seq.table, seq.prompt_hashes, seq.prompt_tokens)
                seq.computed = hit
                seq.cached_tokens = max(seq.cached_tokens, hit)
                self.metrics.prefix_queries.inc(seq.prompt_tokens)
                self.metrics.prefix_hits.inc(hit)
            tokens = min(seq.to_compute, budget)
            if not self.kv.allocate(seq.table, seq.computed + tokens):
                break
            self.waiting.popleft()
            self.running.append(seq)
            if seq.scheduled_at is None:
                seq.scheduled_at = time.monotonic()
                self.metrics.queue_time.observe(seq.scheduled_at - seq.arrival)
            batch.append((seq, tokens))
            budget -= tokens
        self.peak_running = max(self.peak_running, len(self.running))
        self._publish_gauges()
        return batch

    def _preempt(self, seq: Sequence) -> None:
        self.kv.release(seq.table)
        seq.computed = 0
        seq.preemptions += 1
        self.waiting.appendleft(seq)
        self.metrics.preemptions.inc()

    def _step_time(self, batch: list[tuple[Sequence, int]]) -> float:
        if not batch:
            return 0.0
        p = self.profile
        prefill = sum(tokens for seq, tokens in batch if seq.computed < seq.prompt_tokens)
        decoding = [seq for seq, _ in batch if seq.computed >= seq.prompt_tokens]
        context = sum(seq.total_tokens for seq in decoding)
        return (
            p.step_overhead_s
            + p.decode_per_seq_s * len(decoding)
            + p.prefill_per_token_s * prefill
            + p.attention_per_context_token_s * context
        )

    def _finish_step(self, batch: list[tuple[Sequence, int]]) -> None:
        self.steps += 1
        now = time.monotonic()
        generated = 0
        for seq, tokens in batch:
            if seq.done:  # aborted during the step
                continue
            seq.computed += tokens
            self.kv.register(seq.table, seq.prompt_hashes, seq.computed)
            if seq.computed < seq.total_tokens:
                continue  # prompt still being prefilled in chunks
            seq.generated += 1
            generated += 1
            if seq.first_token_at is None:
                seq.first_token_at = now
                self.metrics.ttft.observe(now - seq.arrival)
                self.metrics.prompt_tokens.inc(seq.prompt_tokens)
            elif seq.last_token_at is not None:
                self.metrics.itl.observe(now - seq.last_token_at)
            seq.last_token_at = now
            if seq.generated >= seq.output_tokens:
                seq.done = True
                seq.finished_at = now
                self.running.remove(seq)
                self.kv.release(seq.table)
                self.metrics.e2e.observe(now - seq.arrival)
            seq.progress.set()
        self.metrics.generation_tokens.inc(generated)
        self._publish_gauges()

    def _publish_gauges(self) -> None:
        self.metrics.running.set(len(self.running))
        self.metrics.waiting.set(len(self.waiting))
        self.metrics.kv_usage.set(self.kv.usage)
