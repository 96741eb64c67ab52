"""A worker's context window: big tool outputs leave the transcript, and a full transcript is compacted.

The transcript is append-only between compactions, so every request's prompt is
the previous one plus new messages and vLLM's prefix cache serves all but the
new part. When the prompt crosses the budget's high-water mark (or the server
answers a context-length 400), one compaction brings it to the low-water mark:

    system prompt + task message + a summary of the earlier turns + the most recent turns, verbatim

The summary is written by the worker's own model, asked with the live
transcript (same system prompt and tools first, so the request hits the prefix
cache) plus one last user message (`worker_summary_request.jinja`), sent with
`X-Sevenfold-Purpose: summary`. An AI message is never separated from the tool
messages answering it. Everything removed is appended to
`<run>/transcripts/<worker key>.jsonl` first, so nothing is lost.

Why not LangChain's `SummarizationMiddleware` (langchain 1.5): it is middleware
for `create_agent`'s loop, and our worker is its own StateGraph (DESIGN section
8); it asks for the summary with a separate prompt holding the old messages as
text, which shares no prefix with the worker's requests, so vLLM recomputes the
whole history for it; and it keeps no system message in state. What is reused
is langchain-core's `count_tokens_approximately`, calibrated by the token count
the server reported for the last request.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    ToolMessage,
    message_to_dict,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from sevenfold.errors import ContextTooLongError
from sevenfold.llm.budget import ContextBudget
from sevenfold.nodes.prompts import render
from sevenfold.settings import ContextSettings
from sevenfold.tools.outputs import offload

SUMMARY_PURPOSE = {"X-Sevenfold-Purpose": "summary"}
"""The header that marks a summary request (the simulator's `realistic` policy answers it with a summary)."""
HEAD = 2
"""Messages kept at the front of every transcript: the system prompt and the task message."""


@dataclass(frozen=True)
class Compaction:
    """The outcome of one compaction."""

    transcript: list[AnyMessage]
    """The new transcript: head, summary, recent turns."""
    update: list[BaseMessage]
    """The state update that replaces the old transcript with the new one."""
    removed: int
    """Messages replaced by the summary."""
    tokens: int
    """Estimated prompt tokens of the new transcript (tools included)."""


def with_ids(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """`messages`, each with an id: a checkpoint replayed on resume must rebuild the same messages, ids included."""
    for message in messages:
        if not message.id:
            message.id = str(uuid.uuid4())
    return list(messages)


def estimate_tokens(messages: Sequence[BaseMessage]) -> int:
    """Approximate prompt tokens of `messages` (about 4 characters a token)."""
    return count_tokens_approximately(messages)


def tool_tokens(tools: Sequence[BaseTool]) -> int:
    """Approximate prompt tokens the tools' schemas take."""
    return count_tokens_approximately([], tools=list(tools))


def needs_compaction(context_tokens: int, budget: ContextBudget) -> bool:
    """Whether the next prompt (as estimated) has crossed the high-water mark."""
    return context_tokens >= budget.high_water


def keep_out_of_transcript(message: ToolMessage, folder: Path, settings: ContextSettings) -> ToolMessage:
    """A tool message whose content, if longer than `offload_chars`, is saved to `folder` and previewed."""
    text = message.content if isinstance(message.content, str) else str(message.content)
    if len(text) <= settings.offload_chars:
        return message
    message.content = offload(text, message.name or "tool", folder, settings.preview_chars)
    message.additional_kwargs["offloaded_chars"] = len(text)
    return message


def turns(messages: Sequence[AnyMessage]) -> list[list[AnyMessage]]:
    """The messages in groups that are kept or removed together: an AI or user message and the tool results after it."""
    groups: list[list[AnyMessage]] = []
    for message in messages:
        if isinstance(message, ToolMessage) and groups:
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def split(
    messages: Sequence[AnyMessage], keep_tokens: int, scale: float = 1.0
) -> tuple[list[AnyMessage], list[list[AnyMessage]], list[list[AnyMessage]]]:
    """(head, older turns, recent turns): the most recent turns that fit in `keep_tokens`, at least one turn older.

    `scale` converts the approximate count into the server's tokens.
    """
    head, groups = list(messages[:HEAD]), turns(messages[HEAD:])
    kept = 0
    used = 0.0
    for group in reversed(groups):
        cost = estimate_tokens(group) * scale
        if used + cost > keep_tokens:
            break
        used += cost
        kept += 1
    kept = min(kept, max(len(groups) - 1, 0))  # always summarise something
    return head, groups[: len(groups) - kept], groups[len(groups) - kept :]


async def compact(
    model: Runnable[LanguageModelInput, AIMessage],
    messages: Sequence[AnyMessage],
    budget: ContextBudget,
    *,
    context_tokens: int,
    tools_tokens: int,
    number: int,
    archive: Path,
    request: dict[str, Any],
    overflow: bool = False,
) -> Compaction:
    """Replace the older turns of `messages` by a summary the model writes, down to the budget's low-water mark.

    `context_tokens` is the prompt's size as last estimated from the server's count (it calibrates the
    approximation); `number` counts this worker's compactions (1 for the first); `request` holds the keyword
    arguments of the worker's model requests (headers, priority). `overflow`: the server refused the transcript
    as too long, so the summary is asked for with as many of the older turns as fit. The model's failures other
    than a context-length 400 are raised.
    """
    approximate = estimate_tokens(messages) + tools_tokens
    scale = max(1.0, context_tokens / approximate) if approximate else 1.0
    summary_tokens = max(256, min(2_000, budget.tokens // 10))
    fixed = (estimate_tokens(messages[:HEAD]) + tools_tokens) * scale + summary_tokens
    head, older, recent = split(messages, int(budget.low_water - fixed), scale)
    removed = [m for group in older for m in group]
    await asyncio.to_thread(_archive, archive, number, removed)
    summary = await _summary(model, messages, head, older, budget, summary_tokens, request, overflow)
    note = HumanMessage(
        render(
            "worker_summary",
            turns=sum(isinstance(m, AIMessage) for m in removed),
            number=number,
            summary=summary,
        )
    )
    transcript = with_ids([*head, note, *(m for group in recent for m in group)])
    await asyncio.to_thread(_archive, archive, number, [], summary)
    return Compaction(
        transcript=transcript,
        update=[RemoveMessage(id=REMOVE_ALL_MESSAGES), *transcript],
        removed=len(removed),
        tokens=int(estimate_tokens(transcript) * scale) + tools_tokens,
    )


@dataclass(frozen=True)
class Turn:
    """One model turn of a worker, with the compaction it took to make room for it, if any."""

    reply: AIMessage
    messages: list[BaseMessage]
    """The state update: the compaction's (if one ran), then the reply."""
    compactions: int
    """The worker's compactions so far, this turn's included."""
    context_tokens: int
    """The next prompt's tokens, estimated: this request's as the server counted them, plus the reply."""


async def ask(
    model: Runnable[LanguageModelInput, AIMessage],
    messages: Sequence[AnyMessage],
    budget: ContextBudget | None,
    *,
    context_tokens: int,
    compactions: int,
    tools: Sequence[BaseTool],
    archive: Path,
    request: dict[str, Any],
) -> Turn:
    """Ask the model for its next turn, compacting first at the high-water mark, and once more (then retrying
    once) if the server still answers that the prompt is too long. Other failures, and a second refusal, raise.

    `budget` None sends the transcript as it is, whatever its length (`context.manage` off).
    `context_tokens` is the prompt's size as the state estimates it; `request` holds the keyword arguments of
    every model request (headers, priority); `archive` is the worker's JSONL file of removed messages.
    """
    update: list[BaseMessage] = []

    async def compaction(tokens: int, overflow: bool) -> Compaction:
        assert budget is not None
        return await compact(
            model,
            messages,
            budget,
            context_tokens=tokens,
            tools_tokens=tool_tokens(tools),
            number=compactions,
            archive=archive,
            request=request,
            overflow=overflow,
        )

    if budget is not None and needs_compaction(context_tokens, budget):
        compactions += 1
        done = await compaction(context_tokens, overflow=False)
        messages, update = done.transcript, done.update
    try:
        reply = await model.ainvoke(messages, **request)
    except ContextTooLongError as refused:
        if budget is None:
            raise
        compactions += 1
        done = await compaction(max(context_tokens, refused.input_tokens or 0), overflow=True)
        messages, update = done.transcript, done.update
        reply = await model.ainvoke(messages, **request)
    usage = reply.usage_metadata
    counted = usage["input_tokens"] + usage["output_tokens"] if usage and usage["input_tokens"] else 0
    return Turn(
        reply=reply,
        messages=[*update, *with_ids([reply])],
        compactions=compactions,
        context_tokens=counted or estimate_tokens([*messages, reply]) + tool_tokens(tools),
    )


async def record_outputs(
    results: Sequence[ToolMessage], folder: Path, settings: ContextSettings
) -> tuple[list[AnyMessage], int, int]:
    """The tool messages as the transcript keeps them (big outputs saved to `folder`), how many were saved, and
    their estimated tokens."""
    big = [m for m in results if settings.manage and len(str(m.content)) > settings.offload_chars]
    if big:
        await asyncio.to_thread(lambda: [keep_out_of_transcript(m, folder, settings) for m in big])
    return with_ids(results), len(big), estimate_tokens(results)


async def _summary(
    model: Runnable[LanguageModelInput, AIMessage],
    messages: Sequence[AnyMessage],
    head: list[AnyMessage],
    older: list[list[AnyMessage]],
    budget: ContextBudget,
    summary_tokens: int,
    request: dict[str, Any],
    overflow: bool,
) -> str:
    """The model's summary of the transcript; if even a shortened request is too long, a plain digest."""
    ask = HumanMessage(render("worker_summary_request", words=int(summary_tokens * 0.6)))
    headers = {**request.get("extra_headers", {}), **SUMMARY_PURPOSE}
    attempts: list[list[AnyMessage]] = [] if overflow else [[*messages, ask]]
    fitting: list[AnyMessage] = []
    for group in reversed(older):  # the newest older turns that fit, for a transcript the server refused
        if estimate_tokens([*head, *fitting, *group]) > budget.low_water:
            break
        fitting[:0] = group
    attempts.append([*head, *fitting, ask])
    for prompt in attempts:
        try:
            reply = await model.ainvoke(prompt, **{**request, "extra_headers": headers, "tool_choice": "none"})
        except ContextTooLongError:
            continue
        text = reply.text.strip() if isinstance(reply.text, str) else ""
        if text:
            return text[: summary_tokens * 6]
    return _digest([m for group in older for m in group])


def _digest(messages: Sequence[AnyMessage]) -> str:
    """A summary made without the model: the tool calls made and the first line of each result."""
    lines = []
    for message in messages:
        if isinstance(message, AIMessage):
            lines += [f"- called {c['name']}({json.dumps(c['args'])[:200]})" for c in message.tool_calls]
        elif isinstance(message, ToolMessage):
            first = str(message.content).strip().splitlines()[:1]
            lines.append(f"  -> {first[0][:200] if first else '(no output)'}")
    return "The model could not write a summary; the calls made were:\n" + "\n".join(lines[-200:])


def _archive(path: Path, number: int, removed: Sequence[BaseMessage], summary: str | None = None) -> None:
    """Append the removed messages (or the summary that replaced them) to the worker's JSONL file.

    A compaction redone after a crash appends its records again; message ids tell the copies apart.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with path.open("a", encoding="utf-8") as file:
        for message in removed:
            file.write(json.dumps({"compaction": number, "time": now, "message": message_to_dict(message)}) + "\n")
        if summary is not None:
            file.write(json.dumps({"compaction": number, "time": now, "summary": summary}) + "\n")
