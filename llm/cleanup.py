"""From what the model wrote to what nodes see: thinking moved out of content, tool-call text turned into calls.

Applied by `SevenfoldChatOpenAI` to every reply, streamed or not, so every role
gets the same treatment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import ToolCallChunk, invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

from sevenfold.llm.recovery import ToolTextFilter, has_tool_call_text, recover_tool_calls
from sevenfold.llm.thinking import ThinkingFilter, split_thinking


@dataclass
class CallStats:
    """What one role's model did, for the run report."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    slot_wait_s: float = 0.0
    tool_calls_recovered: int = 0
    """Tool calls found as text in content and turned into real calls."""
    tool_calls_malformed: int = 0
    """Tool-call text that could not be read; reported to the model as invalid calls."""

    def record_error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1


def recover_in_message(
    message: BaseMessage,
    tools: list[dict[str, Any]] | None,
    stats: CallStats,
    generation_info: dict[str, Any] | None = None,
) -> None:
    """Turn tool-call text left in content into tool calls (and unreadable text into invalid calls).

    Also beside calls the server parsed: a broken call next to a good one stays in content as text, and the model
    must hear that it was not run rather than have it vanish. The content left is stripped of trailing whitespace
    (the streamed path gives the same). A `finish_reason` of "stop" becomes "tool_calls" when calls were recovered,
    in `generation_info` (where langchain-openai keeps it until LangChain copies it into `response_metadata`) and in
    `response_metadata`.
    """
    if not tools or not isinstance(message, AIMessage) or not isinstance(message.content, str):
        return
    if not has_tool_call_text(message.content):
        return
    recovery = recover_tool_calls(message.content, tools)
    message.content = recovery.content.rstrip()
    message.tool_calls = [
        *message.tool_calls,
        *(tool_call(name=c.name, args=c.args, id=c.id) for c in recovery.calls),
    ]
    message.invalid_tool_calls = [
        *message.invalid_tool_calls,
        *(
            invalid_tool_call(name=None, args=m.text[:2000], id=f"malformed-{i}", error=m.reason)
            for i, m in enumerate(recovery.malformed)
        ),
    ]
    message.response_metadata["tool_calls_recovered"] = len(recovery.calls)
    message.response_metadata["tool_calls_malformed"] = len(recovery.malformed)
    stats.tool_calls_recovered += len(recovery.calls)
    stats.tool_calls_malformed += len(recovery.malformed)
    if recovery.calls:
        for where in (message.response_metadata, generation_info):
            if where is not None and where.get("finish_reason") == "stop":
                where["finish_reason"] = "tool_calls"


def move_thinking(message: BaseMessage, server_reasoning: str | None = None) -> None:
    if not isinstance(message, AIMessage) or not isinstance(message.content, str):
        return
    answer, thinking = split_thinking(message.content)
    parts = [p for p in (server_reasoning, thinking) if p]
    message.content = answer
    if parts:
        message.additional_kwargs["reasoning_content"] = "\n".join(parts)


class StreamCleaner:
    """Per stream: thinking out of content, and tool-call text held back and recovered at the end."""

    def __init__(self, tools: list[dict[str, Any]] | None, stats: CallStats, thinking: bool = False) -> None:
        self.tools = tools or []
        self.stats = stats
        self.thinking = ThinkingFilter(opened_in_prompt_possible=thinking)
        self.tool_text = ToolTextFilter() if tools else None
        self.next_index = 0
        """The first tool-call chunk index the server has not used (recovered calls are numbered after its own)."""
        self.finish_reason: str | None = None
        """Taken off the server's last chunk and sent with the tail, where recovery may change it to "tool_calls"."""

    def clean(self, generation: ChatGenerationChunk) -> ChatGenerationChunk:
        message = generation.message
        if not isinstance(message, AIMessageChunk):
            return generation
        for chunk in message.tool_call_chunks:
            self.next_index = max(self.next_index, (chunk.get("index") or 0) + 1)
        if message.additional_kwargs.get("reasoning_content"):
            self.thinking.server_parses()
        if isinstance(message.content, str) and message.content:
            answer, thought = self.thinking.feed(message.content)
            message.content = self.tool_text.feed(answer) if self.tool_text else answer
            if thought:
                message.additional_kwargs["reasoning_content"] = (
                    message.additional_kwargs.get("reasoning_content", "") + thought
                )
        info = generation.generation_info
        if self.tool_text is not None and info and "finish_reason" in info:
            info = dict(info)
            self.finish_reason = info.pop("finish_reason")
        return ChatGenerationChunk(message=message, generation_info=info or None)

    def tail(self) -> ChatGenerationChunk | None:
        """The last chunk: what the filters held back, with recovered tool calls."""
        answer, thought = self.thinking.flush()
        extra: dict[str, Any] = {"reasoning_content": thought} if thought else {}
        chunks: list[ToolCallChunk] = []
        finish_reason = self.finish_reason
        if self.tool_text is not None:
            held = self.tool_text.feed(answer) if answer else ""
            answer, held = held, self.tool_text.finish()
            if held and has_tool_call_text(held):  # also beside calls the server parsed (a broken one next to them)
                recovery = recover_tool_calls(held, self.tools)
                answer = (answer + recovery.content).rstrip()  # as recover_in_message: the same message either way
                if recovery.calls and finish_reason == "stop":
                    finish_reason = "tool_calls"
                for call in recovery.calls:
                    index = self.next_index + len(chunks)
                    chunks.append(tool_call_chunk(name=call.name, args=json.dumps(call.args), id=call.id, index=index))
                for bad in recovery.malformed:  # arguments that are not JSON: LangChain lists these as invalid calls
                    index = self.next_index + len(chunks)
                    chunks.append(
                        tool_call_chunk(
                            name=None,
                            args=f"MALFORMED ({bad.reason}): {bad.text[:2000]}",
                            id=f"malformed-{index}",
                            index=index,
                        )
                    )
                self.stats.tool_calls_recovered += len(recovery.calls)
                self.stats.tool_calls_malformed += len(recovery.malformed)
            else:
                answer += held
        if not (answer or extra or chunks or finish_reason):
            return None
        return ChatGenerationChunk(
            message=AIMessageChunk(content=answer, additional_kwargs=extra, tool_call_chunks=chunks),
            generation_info={"finish_reason": finish_reason} if finish_reason else None,
        )
