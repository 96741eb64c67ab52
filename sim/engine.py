"""The simulated engine: vLLM V1's scheduler loop, without a model.

Each step the scheduler gives the running sequences one decode token each and
fills the rest of the step's token budget with prompt chunks (chunked prefill),
admits waiting sequences while fewer than `max_num_seqs` run and their KV
blocks fit, and preempts a running sequence when the KV cache is full. The step
then takes as long as the profile says such a batch takes, divided by the time
scale. What each sequence "generates" was decided up front by the policy; the
engine only decides when each token comes out.

Scheduling policies follow vLLM's V1 scheduler (`vllm/v1/core/sched/scheduler.py`
at vllm-project/vllm commit 00024d31 and `request_queue.py` at 0097c7ed, both
main in 2026; the choice of victim reads the same in earlier V1 releases, which
did not yet give a victim's tokens back to the step's budget):

- `fcfs` (`--scheduling-policy fcfs`, the default): the waiting queue is first
  come, first served; when a running sequence cannot get the blocks it needs,
  the most recently admitted running sequence is preempted (`running.pop()`).
- `priority`: the waiting queue is ordered by (priority, arrival), lower first;
  the victim is the running sequence with the largest (priority, arrival), i.e.
  the least important and, among equals, the latest to arrive
  (`max(running, key=lambda r: (r.priority, r.arrival_time))`). If the victim
  was already given tokens this step, they go back to the step's budget.
  A waiting sequence never preempts a running one: admission stops at the
  first that does not fit, as in vLLM.

Preemption is recompute: the victim's blocks are freed, its computed tokens
reset to zero, it goes back to the waiting queue (the front under `fcfs`, its
place by priority under `priority`) and is prefilled again when re-admitted,
with prefix-cache hits allowed then as for any request. While any sequence was
preempted in a step, no waiting sequence is admitted in that step. Re-admitted
sequences do not count again in `vllm:prefix_cache_queries`/`_hits` (vLLM keeps
them apart as `preempted_queries`/`preempted_hits`). Two simplifications: the
prefix cache matches prompt blocks only (vLLM also matches a resumed request's
generated tokens), and a sequence waiting holds no blocks at all.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from sevenfold.sim.clock import StepClock
from sevenfold.sim.kv_cache import BlockTable, KVCache
from sevenfold.sim.metrics import EngineMetrics
from sevenfold.sim.profiles import Profile

SchedulingPolicy = Literal["fcfs", "priority"]
"""vLLM's `--scheduling-policy` values the engine models."""


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
    order: int = 0
    """Submission number, set by `Engine.submit`: breaks ties between equal (priority, arrival)."""
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

    @property
    def rank(self) -> tuple[int, float, int]:
        """Scheduling order under the priority policy: smaller is served first and preempted last."""
        return (self.priority, self.arrival, self.order)


class WaitingQueue:
    """The waiting sequences in the order the scheduling policy serves them (vLLM's `RequestQueue`)."""

    def __init__(self, policy: SchedulingPolicy) -> None:
        self.policy = policy
        self._queue: deque[Sequence] = deque()

    def add(self, seq: Sequence) -> None:
        """Queue a newly arrived sequence: at the back (fcfs) or at its place by rank (priority)."""
        if self.policy == "priority":
            self._insert_by_rank(seq)
        else:
            self._queue.append(seq)

    def prepend(self, seq: Sequence) -> None:
        """Put back a preempted sequence: at the front (fcfs) or at its place by rank (priority)."""
        if self.policy == "priority":
            self._insert_by_rank(seq)
        else:
            self._queue.appendleft(seq)

    def _insert_by_rank(self, seq: Sequence) -> None:
        index = bisect.bisect_right([s.rank for s in self._queue], seq.rank)
        self._queue.insert(index, seq)

    def peek(self) -> Sequence:
        return self._queue[0]

    def pop(self) -> Sequence:
        return self._queue.popleft()

    def remove(self, seq: Sequence) -> None:
        self._queue.remove(seq)

    def __contains__(self, seq: object) -> bool:
        return seq in self._queue

    def __len__(self) -> int:
        return len(self._queue)

    def __iter__(self) -> Iterator[Sequence]:
        return iter(self._queue)


class Engine:
    """Schedules sequences step by step; `submit` one and await its `progress` events."""

    def __init__(
        self,
        profile: Profile,
        max_num_seqs: int,
        time_scale: float,
        metrics: EngineMetrics,
        scheduling_policy: SchedulingPolicy = "fcfs",
    ) -> None:
        if scheduling_policy not in ("fcfs", "priority"):
            raise ValueError(f"unknown scheduling policy {scheduling_policy!r} (fcfs or priority)")
        self.profile = profile
        self.max_num_seqs = max_num_seqs
        self.time_scale = time_scale
        self.metrics = metrics
        self.scheduling_policy: SchedulingPolicy = scheduling_policy
        self.kv = KVCache(profile.kv_cache_tokens, profile.block_size)
        self.waiting = WaitingQueue(scheduling_policy)
        self.running: list[Sequence] = []
        """Admitted sequences, in the order they were admitted."""
        self.peak_running = 0
        self.steps = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._clock = StepClock()
        self._submitted = itertools.count()

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
        """Queue a sequence; it is scheduled in arrival order (fcfs) or by (priority, arrival) (priority)."""
        seq.order = next(self._submitted)
        self.waiting.add(seq)
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
                victim = self._victim()
                victim_index = self.running.index(victim)
                self.running.pop(victim_index)
                if victim_index < index:  # already given tokens this step: they go back to the budget
                    given = next(i for i, (s, _) in enumerate(batch) if s is victim)
                    budget += batch.pop(given)[1]
                    index -= 1
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
            seq = self.waiting.peek()
            hit = self.kv.match_prefix(seq.table, seq.prompt_hashes, seq.prompt_tokens)
            seq.computed = hit
            tokens = min(seq.to_compute, budget)
            if not self.kv.allocate(seq.table, seq.computed + tokens):
                self.kv.release(seq.table)  # a waiting sequence holds no blocks; it asks again next step
                seq.computed = 0
                break
            self.waiting.pop()
            self.running.append(seq)
            if seq.preemptions == 0:  # vLLM counts a resumed request's lookups apart (preempted_queries)
                seq.cached_tokens = hit
                self.metrics.prefix_queries.inc(seq.prompt_tokens)
                self.metrics.prefix_hits.inc(hit)
            if seq.scheduled_at is None:
                seq.scheduled_at = time.monotonic()
            batch.append((seq, tokens))
            budget -= tokens
        self.peak_running = max(self.peak_running, len(self.running))
        self._publish_gauges()
        return batch

    def _victim(self) -> Sequence:
        """The running sequence to preempt: the latest admitted (fcfs) or the one of largest rank (priority)."""
        if self.scheduling_policy == "priority":
            return max(self.running, key=lambda seq: seq.rank)
        return self.running[-1]

    def _preempt(self, seq: Sequence) -> None:
        self.kv.release(seq.table)
        seq.computed = 0
        seq.preemptions += 1
        self.waiting.prepend(seq)
        self.metrics.preemptions.inc()

    def _step_time(self, batch: list[tuple[Sequence, int]]) -> float:
        if not batch:
            return 0.0
        p = self.profile
        prefill = 0
        decoding: list[Sequence] = []
        for seq, tokens in batch:
            # A chunk of prompt, or of a preempted sequence's tokens being recomputed, costs prefill time.
            if seq.computed < seq.prompt_tokens or seq.to_compute > 1:
                prefill += tokens
            else:
                decoding.append(seq)
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
            seq.progress.set()
        self.metrics.generation_tokens.inc(generated)
        self._publish_gauges()

    def _publish_gauges(self) -> None:
        self.metrics.running.set(len(self.running))
        self.metrics.waiting.set(len(self.waiting))
        self.metrics.kv_usage.set(self.kv.usage)
