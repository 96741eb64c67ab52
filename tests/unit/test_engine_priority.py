"""vLLM's priority scheduling in the simulated engine: queue order, the victim's budget, recompute with cache hits.

Steps are driven by hand (`_schedule` then `_finish_step`), so nothing here depends on time.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from sevenfold.sim.engine import Engine, SchedulingPolicy, Sequence, WaitingQueue
from sevenfold.sim.metrics import EngineMetrics
from sevenfold.sim.profiles import load_profile
from sevenfold.sim.tokens import block_hashes

LABELS = {"model_name": "m", "engine": "0"}


def _engine(policy: SchedulingPolicy, kv_cache_tokens: int, max_num_seqs: int = 8) -> Engine:
    profile = replace(load_profile("instant"), kv_cache_tokens=kv_cache_tokens)
    return Engine(profile, max_num_seqs, 1.0, EngineMetrics("m", 1.0), scheduling_policy=policy)


def _seq(name: str, prompt: int, output: int, priority: int = 0, arrival: float = 0.0) -> Sequence:
    hashes = block_hashes([f"{name}{i}" for i in range(prompt)], 16)
    return Sequence(name, prompt, hashes, output, priority=priority, arrival=arrival)


def _step(engine: Engine) -> list[tuple[Sequence, int]]:
    batch = engine._schedule()
    engine._finish_step(batch)
    return batch


def _admission_order(engine: Engine, seqs: list[Sequence]) -> list[str]:
    for seq in seqs:
        engine.submit(seq)
    order: list[str] = []
    while engine.running or engine.waiting:
        before = set(engine.running)
        _step(engine)
        order += [seq.request_id for seq in engine.running if seq not in before]  # outputs of 2: none ends at once
    return order


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("priority", ["b", "d", "a", "c"]), ("fcfs", ["a", "b", "c", "d"])],
)
def test_waiting_requests_are_admitted_by_priority_then_arrival_only_under_priority(
    policy: SchedulingPolicy, expected: list[str]
) -> None:
    engine = _engine(policy, kv_cache_tokens=10_000, max_num_seqs=1)
    seqs = [
        _seq("a", 20, 2, priority=2, arrival=0.0),
        _seq("b", 20, 2, priority=0, arrival=1.0),
        _seq("c", 20, 2, priority=3, arrival=2.0),
        _seq("d", 20, 2, priority=0, arrival=3.0),
    ]
    assert _admission_order(engine, seqs) == expected


def test_a_preempted_request_goes_back_to_its_place_by_priority_not_to_the_front() -> None:
    queue = WaitingQueue("priority")
    urgent, late = _seq("urgent", 16, 1, priority=0, arrival=5.0), _seq("late", 16, 1, priority=1, arrival=9.0)
    preempted = _seq("preempted", 16, 1, priority=3, arrival=0.0)
    for seq in (late, urgent):
        queue.add(seq)
    queue.prepend(preempted)
    assert [seq.request_id for seq in queue] == ["urgent", "late", "preempted"]
    fcfs = WaitingQueue("fcfs")
    for seq in (late, urgent):
        fcfs.add(seq)
    fcfs.prepend(preempted)
    assert [seq.request_id for seq in fcfs] == ["preempted", "late", "urgent"]


def test_a_victim_already_scheduled_this_step_gives_its_tokens_back() -> None:
    # 3 blocks. Both requests fill one block each and then need a second: the less important one, admitted
    # first and already given its token for this step, is preempted so that the important one can go on.
    engine = _engine("priority", kv_cache_tokens=48)
    minor, major = _seq("minor", 16, 4, priority=5), _seq("major", 16, 4, priority=0, arrival=1.0)
    engine.submit(minor)
    _step(engine)
    engine.submit(major)
    assert [seq.request_id for seq, _ in _step(engine)] == ["minor", "major"]
    batch = engine._schedule()
    assert [(seq.request_id, tokens) for seq, tokens in batch] == [("major", 1)]
    assert list(engine.waiting) == [minor]
    assert (minor.computed, minor.preemptions, minor.table.blocks) == (0, 1, 0)
    engine._finish_step(batch)
    while not major.done:
        _step(engine)
    while not minor.done:
        _step(engine)
    assert minor.generated == 4 and major.preemptions == 0
    assert engine.metrics.registry.get_sample_value("vllm:num_preemptions_total", LABELS) == 1


def test_a_preempted_request_is_recomputed_from_scratch_with_prefix_cache_hits() -> None:
    # 6 blocks: two 40-token prompts (3 blocks each) fill the cache; the first new token needs a 4th block.
    engine = _engine("priority", kv_cache_tokens=96)
    minor, major = _seq("minor", 40, 12, priority=1), _seq("major", 40, 12, priority=0, arrival=1.0)
    engine.submit(minor)
    engine.submit(major)
    while minor.preemptions == 0:
        _step(engine)
    generated_before = minor.generated
    assert generated_before > 0 and minor.computed == 0
    while minor not in engine.running:
        _step(engine)
    # Re-admitted: its two full prompt blocks were still cached; the rest (prompt tail and generated tokens) is
    # recomputed in the step that re-admits it.
    assert minor.computed == 40 + generated_before
    assert minor.generated == generated_before + 1
    while not (minor.done and major.done):
        _step(engine)
    assert minor.generated == 12
    # The re-admission's lookup is not counted again, as vLLM keeps preempted requests' lookups apart.
    assert engine.metrics.registry.get_sample_value("vllm:prefix_cache_queries_total", LABELS) == 80
    assert engine.kv.used_blocks == 0


def test_an_unknown_scheduling_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="fcfs or priority"):
        _engine("lifo", kv_cache_tokens=64)  # type: ignore[arg-type]
