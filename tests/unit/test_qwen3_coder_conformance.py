"""vLLM's qwen3_coder cases and issue 14's, recovered as vLLM does or as a listed deliberate difference; streamed
under random chunkings, each gives the same message as unstreamed."""

from __future__ import annotations

import json
import random

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from sevenfold.llm.recovery import recover_in_message
from sevenfold.llm.stats import CallStats
from sevenfold.llm.stream import StreamCleaner
from tests.unit.qwen3_coder_conformance import CASES, TOOLS, Case, Outcome


def _unstreamed(text: str) -> tuple[AIMessage, dict[str, str]]:
    message = AIMessage(content=text)
    info = {"finish_reason": "stop"}
    recover_in_message(message, TOOLS, CallStats(), info)
    return message, info


def _outcome(message: AIMessage) -> Outcome:
    calls = [(c["name"], c["args"]) for c in message.tool_calls]
    return Outcome(calls, str(message.content), malformed=len(message.invalid_tool_calls))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_case_is_vllms_result_or_a_listed_difference(case: Case) -> None:
    message, info = _unstreamed(case.text)
    expected = case.ours or case.vllm
    assert case.ours is None or case.reason, "a deliberate difference needs its reason"
    assert _outcome(message) == expected
    assert json.loads(json.dumps([c["args"] for c in message.tool_calls], allow_nan=False)) is not None
    assert info["finish_reason"] == ("tool_calls" if expected.calls else "stop")


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_streaming_gives_the_same_message(case: Case, seed: int) -> None:
    rng = random.Random(seed)
    text = case.text
    cuts = sorted(rng.sample(range(1, len(text)), min(rng.randint(1, 12), len(text) - 1)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    cleaner = StreamCleaner(TOOLS, CallStats())
    merged = None
    for index, piece in enumerate(pieces):
        info = {"finish_reason": "stop"} if index == len(pieces) - 1 else None
        chunk = cleaner.clean(ChatGenerationChunk(message=AIMessageChunk(content=piece), generation_info=info))
        merged = chunk if merged is None else merged + chunk
    tail = cleaner.tail()
    assert merged is not None and tail is not None  # the tail carries the finish_reason
    merged = merged + tail
    assert isinstance(merged.message, AIMessageChunk)
    streamed = Outcome(
        [(c["name"], c["args"]) for c in merged.message.tool_calls],
        str(merged.message.content),
        malformed=len(merged.message.invalid_tool_calls),
    )
    unstreamed, info = _unstreamed(text)
    assert streamed == _outcome(unstreamed)
    assert (merged.generation_info or {}).get("finish_reason") == info["finish_reason"]
