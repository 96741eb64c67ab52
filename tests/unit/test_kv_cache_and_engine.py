"""The simulated engine schedules like vLLM V1: slots, chunked prefill, prefix cache, preemption."""

from __future__ import annotations

from dataclasses import replace

from sevenfold.sim.engine import Engine, Sequence
from sevenfold.sim.kv_cache import BlockTable, KVCache
from sevenfold.sim.metrics import EngineMetrics
from sevenfold.sim.profiles import BUILTIN, load_profile
from sevenfold.sim.tokens import block_hashes, tokenize


def test_kv_bytes_and_capacity_follow_the_corrected_formula() -> None:
    # 2 x 48 layers x 4 KV heads x 128 head_dim x 2 bytes = 96 KiB per token in BF16.
    h100 = BUILTIN["h100-fp8"]
    assert 400_000 < h100.kv_cache_tokens < 430_000  # (80 x 0.92 - 31 - 4) GiB / 96 KiB
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
