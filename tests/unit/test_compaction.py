"""Compaction: the summary request reuses the live prefix, turns stay whole, nothing removed is lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage, SystemMessage, ToolMessage

from sevenfold.errors import ContextTooLongError
from sevenfold.llm.budget import ContextBudget
from sevenfold.nodes.context_window import (
    SUMMARY_PURPOSE,
    ask,
    compact,
    estimate_tokens,
    keep_out_of_transcript,
    needs_compaction,
    split,
    turns,
    with_ids,
)
from sevenfold.settings import ContextSettings
from sevenfold.state.team import add_message_batches


class SummaryModel:
    """Answers every request with a summary and records what it was asked; too long above `limit` tokens."""

    def __init__(self, limit: int | None = None) -> None:
        self.requests: list[tuple[list[AnyMessage], dict[str, Any]]] = []
        self.limit = limit

    async def ainvoke(self, messages: list[AnyMessage], **kwargs: Any) -> AIMessage:
        self.requests.append((list(messages), kwargs))
        if self.limit is not None and estimate_tokens(messages) > self.limit:
            raise ContextTooLongError("too long", self.limit, estimate_tokens(messages))
        return AIMessage("I viewed app.py and fixed parse(); tests/test_app.py::test_parse still fails.")


def transcript(turn_count: int, output: str = "x" * 400) -> list[AnyMessage]:
    messages: list[AnyMessage] = [SystemMessage("You are a worker. " * 50), HumanMessage("Fix the parser.")]
    for n in range(turn_count):
        messages.append(AIMessage("", tool_calls=[{"name": "view_file", "args": {"path": f"f{n}.py"}, "id": f"c{n}"}]))
        messages.append(ToolMessage(f"{n}: {output}", tool_call_id=f"c{n}", name="view_file"))
    return with_ids(messages)


def budget(tokens: int = 8_000) -> ContextBudget:
    return ContextBudget(tokens, int(tokens * 0.85), int(tokens * 0.5), 32_768, None, 4096, "test")


def test_a_tool_call_is_never_separated_from_its_results() -> None:
    messages = transcript(3)
    messages.insert(4, ToolMessage("second result", tool_call_id="c0b", name="grep"))
    groups = turns(messages[2:])
    assert [len(g) for g in groups] == [3, 2, 2]
    for group in groups:
        assert isinstance(group[0], AIMessage) and all(isinstance(m, ToolMessage) for m in group[1:])
    head, older, recent = split(messages, keep_tokens=300)
    assert head == messages[:2]
    assert [m for g in older + recent for m in g] == messages[2:]
    assert len(older) >= 1


def test_the_transcript_is_compacted_at_the_high_water_mark_only() -> None:
    assert not needs_compaction(6_799, budget())
    assert needs_compaction(6_800, budget())


async def test_a_compaction_keeps_system_task_and_recent_turns_and_asks_with_the_live_prefix(tmp_path: Path) -> None:
    messages = transcript(50)
    model = SummaryModel()
    request = {"extra_headers": {"X-Sevenfold-Subtask": "s1"}, "priority": 2}
    context_tokens = estimate_tokens(messages)
    assert needs_compaction(context_tokens, budget())
    done = await compact(
        model,  # type: ignore[arg-type]
        messages,
        budget(),
        context_tokens=context_tokens,
        tools_tokens=0,
        number=1,
        archive=tmp_path / "transcripts" / "s1.jsonl",
        request=request,
    )
    (asked, kwargs), *_ = model.requests
    assert asked[:-1] == messages  # the live transcript, unchanged: the prefix cache serves all of it
    assert isinstance(asked[-1], HumanMessage) and "summary" in str(asked[-1].content)
    assert kwargs["extra_headers"] == {"X-Sevenfold-Subtask": "s1", **SUMMARY_PURPOSE}
    assert kwargs["priority"] == 2 and kwargs["tool_choice"] == "none"

    new = done.transcript
    assert new[:2] == messages[:2]
    assert "fixed parse()" in str(new[2].content) and "compaction 1" in str(new[2].content)
    kept = new[3:]
    assert kept == messages[len(messages) - len(kept) :]  # the most recent turns, verbatim
    assert isinstance(kept[0], AIMessage)
    assert done.tokens <= budget().low_water
    assert done.removed == len(messages) - 2 - len(kept)

    records = [json.loads(line) for line in (tmp_path / "transcripts" / "s1.jsonl").read_text().splitlines()]
    removed_ids = [r["message"]["data"]["id"] for r in records if "message" in r]
    assert removed_ids == [m.id for m in messages[2 : 2 + done.removed]]
    assert records[-1]["summary"].startswith("I viewed app.py")

    rebuilt = add_message_batches(list(messages), [done.update])
    assert rebuilt == new


async def test_a_transcript_the_server_refused_is_summarised_from_the_turns_that_fit(tmp_path: Path) -> None:
    messages = transcript(60)
    model = SummaryModel(limit=budget().tokens)
    done = await compact(
        model,  # type: ignore[arg-type]
        messages,
        budget(),
        context_tokens=estimate_tokens(messages),
        tools_tokens=0,
        number=2,
        archive=tmp_path / "a.jsonl",
        request={},
        overflow=True,
    )
    (asked, _), *_ = model.requests
    assert len(model.requests) == 1
    assert asked[:2] == messages[:2] and estimate_tokens(asked) <= budget().low_water + 200
    assert "fixed parse()" in str(done.transcript[2].content)


async def test_when_no_summary_request_fits_a_digest_of_the_calls_stands_in(tmp_path: Path) -> None:
    messages = transcript(30)
    done = await compact(
        SummaryModel(limit=10),  # type: ignore[arg-type]
        messages,
        budget(),
        context_tokens=estimate_tokens(messages),
        tools_tokens=0,
        number=1,
        archive=tmp_path / "a.jsonl",
        request={},
    )
    assert "view_file" in str(done.transcript[2].content) and "f0.py" in str(done.transcript[2].content)


def test_a_big_tool_output_is_saved_and_previewed_with_a_reference(tmp_path: Path) -> None:
    settings = ContextSettings(offload_chars=8_000, preview_chars=1_000)
    log = "".join(f"line {n}: {'=' * 60}\n" for n in range(2_000))
    message = keep_out_of_transcript(ToolMessage(log, tool_call_id="c1", name="run_tests"), tmp_path, settings)
    text = str(message.content)
    assert len(text) < 2_500
    assert text.startswith("line 0:") and text.rstrip().endswith("line 1999: " + "=" * 60)
    assert "tool-output:run_tests-" in text
    (saved,) = tmp_path.iterdir()
    assert saved.read_text() == log
    small = ToolMessage("ok", tool_call_id="c2", name="run_tests")
    assert keep_out_of_transcript(small, tmp_path, settings).content == "ok"


@pytest.mark.parametrize("snapshot_every", [1, 3])
def test_the_reducer_gives_the_same_transcript_however_writes_are_batched(snapshot_every: int) -> None:
    writes = [[m] for m in transcript(5)]
    one_by_one: list[AnyMessage] = []
    for write in writes:
        one_by_one = add_message_batches(one_by_one, [write])
    batched: list[AnyMessage] = []
    for start in range(0, len(writes), snapshot_every):
        batched = add_message_batches(batched, writes[start : start + snapshot_every])
    assert batched == one_by_one


class WorkingModel(SummaryModel):
    """Summarises summary requests; answers other requests with a tool call; refuses prompts above `limit`."""

    async def ainvoke(self, messages: list[AnyMessage], **kwargs: Any) -> AIMessage:
        reply = await super().ainvoke(messages, **kwargs)
        if kwargs.get("extra_headers", {}).get("X-Sevenfold-Purpose") == "summary":
            return reply
        tokens = estimate_tokens(messages)
        call = {"name": "view_file", "args": {"path": "next.py"}, "id": f"n{len(self.requests)}"}
        return AIMessage("", tool_calls=[call], usage_metadata=_usage(tokens, 20))


def _usage(prompt: int, completion: int) -> Any:
    return {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}


async def test_a_turn_below_the_high_water_mark_only_appends(tmp_path: Path) -> None:
    messages = transcript(3)
    turn = await ask(
        WorkingModel(),  # type: ignore[arg-type]
        messages,
        budget(),
        context_tokens=estimate_tokens(messages),
        compactions=0,
        tools=[],
        archive=tmp_path / "a.jsonl",
        request={},
    )
    assert turn.compactions == 0 and len(turn.messages) == 1 and turn.messages[0] is turn.reply
    assert turn.context_tokens == estimate_tokens(messages) + 20
    assert not (tmp_path / "a.jsonl").exists()


async def test_a_context_length_refusal_leads_to_one_compaction_and_one_retry(tmp_path: Path) -> None:
    messages = transcript(50)
    model = WorkingModel(limit=budget().high_water)
    turn = await ask(
        model,  # type: ignore[arg-type]
        messages,
        budget(),
        context_tokens=100,  # the estimate missed it: only the server's refusal shows the overflow
        compactions=3,
        tools=[],
        archive=tmp_path / "a.jsonl",
        request={"extra_headers": {"X-Sevenfold-Subtask": "s1"}},
    )
    purposes = [kwargs["extra_headers"].get("X-Sevenfold-Purpose") for _, kwargs in model.requests]
    assert purposes == [None, "summary", None]  # refused, summarised, retried
    assert turn.compactions == 4
    assert isinstance(turn.messages[0], RemoveMessage) and turn.messages[-1] is turn.reply
    assert turn.reply.tool_calls
    assert estimate_tokens(model.requests[-1][0]) <= budget().low_water


async def test_a_second_refusal_after_the_compaction_is_raised(tmp_path: Path) -> None:
    with pytest.raises(ContextTooLongError):
        await ask(
            WorkingModel(limit=10),  # type: ignore[arg-type]
            transcript(20),
            budget(),
            context_tokens=100,
            compactions=0,
            tools=[],
            archive=tmp_path / "a.jsonl",
            request={},
        )
