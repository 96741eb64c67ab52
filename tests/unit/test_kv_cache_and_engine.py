"""The simulated engine schedules like vLLM V1: slots, chunked prefill, prefix cache, preemption."""

from __future__ import annotations

import itertools
from dataclasses import replace

from sevenfold.serving.capacity import plan_capacity
from sevenfold.serving.hardware import find_gpu
from sevenfold.sim.engine import Engine, Sequence
from sevenfold.sim.kv_cache import BlockTable, KVCache
from sevenfold.sim.metrics import EngineMetrics
from sevenfold.sim.profiles import BUILTIN, load_profile
from sevenfold.sim.tokens import block_hashes, tokenize


def test_kv_capacity_is_the_capacity_planners() -> None:
    # 2 x 48 layers x 4 KV heads x 128 head_dim x 2 bytes = 96 KiB per token in BF16; the planner's figure, so
    # `sevenfold sim --profile X` and `sevenfold capacity` agree on what fits.
    for name, gpu, weights in [
        ("h100-fp8", "h100", "fp8"),
        ("h100-bf16", "h100", "bf16"),
        ("rtx4090-awq", "4090", "awq"),
    ]:
        assert BUILTIN[name].kv_cache_tokens == plan_capacity(find_gpu(gpu), weights=weights).kv_tokens
    assert 150_000 < BUILTIN["h100-bf16"].kv_cache_tokens < 155_000  # seven 32k contexts (229k) do not fit
    assert BUILTIN["h100-fp8"].kv_cache_tokens > 7 * 32_768
    assert 35_000 < BUILTIN["rtx4090-awq"].kv_cache_tokens < 42_000


def test_shared_prefix_blocks_are_reused_and_evicted_only_when_unreferenced() -> None:
    cache = KVCache(total_tokens=64, block_size=16)
    prompt = [f"t{i}" for i in range(40)]
    hashes = block_hashes(prompt, 16)
    first = BlockTable()
    assert cache.allocate(first, 40)
    cache.register(first, hashes, 40)
    assert len(first.shared) == 2 and first.private == 1
    second = BlockTable()
    assert cache.match_prefix(second, hashes, 40) == 32
    assert cache.used_blocks == 3
    cache.release(first)
    cache.release(second)
    assert cache.used_blocks == 0
    # The cached blocks stay until space is needed, then go.
    third = BlockTable()
    assert cache.allocate(third, 64)
    assert cache.match_prefix(BlockTable(), hashes, 40) == 0


def test_a_fully_cached_prompt_still_computes_its_last_block() -> None:
    cache = KVCache(total_tokens=1024, block_size=16)
    hashes = block_hashes([str(i) for i in range(32)], 16)
    table = BlockTable()
    cache.allocate(table, 32)
    cache.register(table, hashes, 32)
    assert cache.match_prefix(BlockTable(), hashes, 32) == 16


def _engine(**profile_changes: float | int) -> Engine:
    profile = replace(load_profile("instant"), **profile_changes)
    return Engine(
        profile,
        max_num_seqs=int(profile_changes.get("max_num_seqs", 4)),
        time_scale=1.0,
        metrics=EngineMetrics("m", 1.0),
    )


async def _run(engine: Engine, seqs: list[Sequence]) -> None:
    engine.start()
    for seq in seqs:
        engine.submit(seq)
    for seq in seqs:
        while not seq.done:
            await seq.progress.wait()
            seq.progress.clear()
    await engine.stop()


def _seq(name: str, prompt: int, output: int) -> Sequence:
    tokens = [f"{name}{i}" for i in range(prompt)]
    return Sequence(name, prompt, block_hashes(tokens, 16), output)


async def test_long_prompts_are_prefilled_in_chunks_of_the_step_budget() -> None:
    engine = _engine(max_num_batched_tokens=1000)
    seq = _seq("a", 3500, 2)
    await _run(engine, [seq])
    # 4 prefill steps (1000+1000+1000+500, the last one also yields token 1) + 1 decode step.
    assert engine.steps == 5
    assert seq.generated == 2


async def test_no_more_than_max_num_seqs_run_at_once() -> None:
    engine = _engine(max_num_seqs=3)
    seqs = [_seq(f"s{i}", 50, 20) for i in range(10)]
    await _run(engine, seqs)
    assert engine.peak_running == 3
    assert all(seq.generated == 20 for seq in seqs)


async def test_a_full_kv_cache_preempts_and_every_request_still_finishes() -> None:
    engine = _engine(kv_cache_tokens=640, max_num_seqs=8)
    seqs = [_seq(f"p{i}", 100, 120) for i in range(5)]
    await _run(engine, seqs)
    assert sum(seq.preemptions for seq in seqs) > 0
    assert all(seq.generated == 120 for seq in seqs)
    assert engine.kv.used_blocks == 0


def test_decode_steps_get_slower_as_the_batch_grows() -> None:
    engine = Engine(BUILTIN["h100-fp8"], 16, 1.0, EngineMetrics("m", 1.0))
    decoding = []
    for i in range(8):
        seq = _seq(f"d{i}", 100, 10)
        seq.computed = 100
        decoding.append((seq, 1))
    one, eight = engine._step_time(decoding[:1]), engine._step_time(decoding)
    assert eight > one
    assert eight < 8 * one  # batching is why slots pay: 8 sequences cost far less than 8 steps


def test_tokenizer_round_trips_text() -> None:
    text = "def f(x):\n    return x  # naïve ünïcode → ok\n\n\tdone"
    assert "".join(tokenize(text)) == text


def _recording_victims(engine: Engine) -> list[tuple[Sequence, list[Sequence]]]:
    """Each preemption as (victim, the sequences still running beside it), in order."""
    victims: list[tuple[Sequence, list[Sequence]]] = []
    preempt = engine._preempt

    def record(seq: Sequence) -> None:
        victims.append((seq, list(engine.running)))
        preempt(seq)

    engine._preempt = record  # type: ignore[method-assign]
    return victims


def _contended(policy: str) -> tuple[Engine, list[Sequence]]:
    """Five sequences that need 70 blocks together in a 40-block cache; the least important (p4) arrives first."""
    engine = Engine(
        replace(load_profile("instant"), kv_cache_tokens=640),
        max_num_seqs=8,
        time_scale=1.0,
        metrics=EngineMetrics("m", 1.0),
        scheduling_policy=policy,  # type: ignore[arg-type]
    )
    seqs = []
    for priority in (4, 3, 2, 1, 0):
        seq = _seq(f"p{priority}", 100, 120)
        seq.priority, seq.arrival = priority, float(10 - priority)
        seqs.append(seq)
    return engine, seqs


def _preemptions(engine: Engine) -> float:
    return engine.metrics.registry.get_sample_value("vllm:num_preemptions_total", {"model_name": "m", "engine": "0"})


async def test_under_priority_preemption_always_hits_the_largest_priority_value() -> None:
    engine, seqs = _contended("priority")
    victims = _recording_victims(engine)
    await _run(engine, seqs)
    assert victims, "the cache was meant to be too small for all five"
    for victim, still_running in victims:
        assert all(victim.rank > other.rank for other in still_running)
    by_name = {seq.request_id: seq for seq in seqs}
    assert by_name["p0"].preemptions == by_name["p1"].preemptions == 0
    assert by_name["p4"].preemptions > 0
    assert _preemptions(engine) == len(victims) == sum(seq.preemptions for seq in seqs)
    assert all(seq.generated == 120 for seq in seqs)
    assert engine.kv.used_blocks == 0


async def test_under_fcfs_preemption_hits_the_latest_admitted_whatever_the_priority() -> None:
    engine, seqs = _contended("fcfs")
    admission: dict[str, int] = {}  # request id -> when it was (last) admitted
    counter = itertools.count()
    schedule = engine._schedule

    def schedule_and_note_admissions() -> list[tuple[Sequence, int]]:
        before = set(engine.running)
        batch = schedule()
        for seq in engine.running:
            if seq not in before:
                admission[seq.request_id] = next(counter)
        return batch

    engine._schedule = schedule_and_note_admissions  # type: ignore[method-assign]
    latest_admitted: list[bool] = []
    preempt = engine._preempt

    def check_and_preempt(victim: Sequence) -> None:
        latest_admitted.append(all(admission[o.request_id] < admission[victim.request_id] for o in engine.running))
        preempt(victim)

    engine._preempt = check_and_preempt  # type: ignore[method-assign]
    await _run(engine, seqs)
    assert latest_admitted and all(latest_admitted)
    by_name = {seq.request_id: seq for seq in seqs}
    assert by_name["p4"].preemptions == 0  # first in, never out, though it is the least important
    assert by_name["p0"].preemptions > 0
    assert _preemptions(engine) == len(latest_admitted)
    assert all(seq.generated == 120 for seq in seqs)
